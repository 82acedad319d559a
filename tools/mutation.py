"""Mutation testing of skval's core on a seeded random sample of cosmic-ray's mutants.

    pip install "cosmic-ray==8.7.0"
    OMP_NUM_THREADS=1 python tools/mutation.py --seed 0 --per-module 25 --out mutation.csv

cosmic-ray (its operators and its mutation visitor) makes the mutants; this script chooses
which to run and how: every mutant of each core module is enumerated, ``--per-module`` of
them are drawn with ``--seed`` (all of them where a module has fewer), and each is applied to
a scratch copy of the package and run against the fast tests that cover its module (``TESTS``
below, ``pytest -x``). A mutant is *killed* when those tests fail (or the mutated package no
longer imports), *survived* when they pass, *timeout* when they run past ``--timeout-factor``
times the unmutated run (plus 20 s). One mutant at a time: the parent process imports the
heavy libraries once (torch, scikit-learn, skorch, pandas, pytest; never skval) and forks a
child per mutant, so a mutant costs its tests, not an interpreter start.

The CSV has one line per mutant: module, operator, occurrence, line, the original and the
mutated line, outcome, seconds. ``--only ROW,ROW`` reruns some lines of an earlier sample
(same seed and size) after tests were added.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# module -> the tests that cover it and run in seconds (pytest arguments, relative to the root)
TESTS = {
    "skval/_base.py": ["tests/test_wiring.py", "tests/test_validation.py", "tests/test_scaling.py"],
    "skval/_loss.py": ["tests/test_loss.py", "tests/test_wiring.py", "-k", "not large_batches"],
    "skval/_ot.py": ["tests/test_loss.py", "-k", "not large_batches"],
    "skval/_weights.py": ["tests/test_weights.py", "tests/test_wiring.py", "-k",
                          "weights or lazy"],
    "skval/_net.py": ["tests/test_wiring.py", "tests/test_weights.py"],
    "skval/_cleaning.py": ["tests/test_cleaning.py", "tests/test_cli_wiring.py", "-k",
                           "not rare_class_of_real and not imblearn_pipeline_with_the_default "
                           "and not removes_mostly_flipped and not distributed"],
    "skval/_cleaned_estimator.py": ["tests/test_cleaned_estimator.py", "-k",
                                    "not cleaning_beats"],
    "skval/_cli.py": ["tests/test_cli_wiring.py", "tests/test_cli.py", "-k",
                      "not distributed and not module_help and not categorical "
                      "and not kept_rows_are"],
    "skval/distributed.py": ["tests/test_cli_wiring.py", "tests/test_distributed.py", "-k",
                             "(distributed_entry and not True) or cli_refuses_to_overwrite"],
}
PRELOAD = ["numpy", "scipy", "sklearn", "torch", "torch.distributed", "skorch", "pandas", "ot",
           "matplotlib", "matplotlib.pyplot", "hypothesis", "pytest", "joblib"]


def enumerate_mutants(path):
    """Every (operator name, occurrence, start line) cosmic-ray makes of the file ``path``."""
    import cosmic_ray.plugins
    from cosmic_ray.ast import ast_nodes, get_ast_from_path

    tree = get_ast_from_path(Path(path))
    nodes = list(ast_nodes(tree))
    mutants = []
    for name in sorted(cosmic_ray.plugins.operator_names()):
        operator_class = cosmic_ray.plugins.get_operator(name)
        if operator_class.arguments():  # parametrised operators need a config: skipped
            continue
        operator = operator_class()
        occurrence = 0
        for node in nodes:
            for start, _end in operator.mutation_positions(node):
                mutants.append((name, occurrence, start[0]))
                occurrence += 1
    return mutants


def mutate(source, operator_name, occurrence):
    import cosmic_ray.plugins
    from cosmic_ray.mutating import mutate_code

    return mutate_code(source, cosmic_ray.plugins.get_operator(operator_name)(), occurrence)


def changed_line(original, mutated, line):
    """The first line that differs (from ``line`` on), before and after."""
    a, b = original.splitlines(), mutated.splitlines()
    for i in range(max(0, line - 1), min(len(a), len(b))):
        if a[i] != b[i]:
            return a[i].strip(), b[i].strip()
    return a[line - 1].strip() if line - 1 < len(a) else "", "(lines removed or added)"


def run_tests(scratch, args, timeout, log):
    """Fork, run pytest on ``args`` in ``scratch``; returns (outcome, seconds).

    ``args`` may hold ``"--extra-tests-follow"``: the arguments after it are a second pytest
    run, made only when the first passes."""
    if "--extra-tests-follow" in args:
        i = args.index("--extra-tests-follow")
        outcome, first = run_tests(scratch, args[:i], timeout, log)
        if outcome != "survived":
            return outcome, first
        outcome, second = run_tests(scratch, args[i + 1:], timeout, log)
        return outcome, first + second
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: a fresh skval from the scratch copy
        try:
            os.setpgrp()
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            import pytest

            code = pytest.main(["-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                                "--rootdir", str(scratch), *args])
        except BaseException:  # noqa: BLE001 - a child never returns into the parent's loop
            code = 3
        os._exit(int(code))
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.perf_counter() - start > timeout:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout", time.perf_counter() - start
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    # 0 passed; 1 tests failed; 2 interrupted (a collection error: the mutant does not
    # import); 3 internal error; 4 usage; 5 nothing collected; < 0 killed by a signal
    if code == 0:
        return "survived", seconds
    if code in (1, 2) or code < 0:
        return "killed", seconds
    return f"error{code}", seconds


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--per-module", type=int, default=25)
    p.add_argument("--modules", nargs="*", default=list(TESTS))
    p.add_argument("--out", default="mutation.csv")
    p.add_argument("--timeout-factor", type=float, default=3.0)
    p.add_argument("--only", default=None, help="comma-separated sample rows (0-based) to run")
    p.add_argument("--extra", nargs="*", default=[],
                   help="test files run after each module's own (e.g. new tests for survivors)")
    p.add_argument("--list", action="store_true", help="print the mutant counts and the sample")
    args = p.parse_args(argv)

    sample = []
    for module in args.modules:
        mutants = enumerate_mutants(ROOT / module)
        chosen = random.Random(f"{args.seed}:{module}").sample(
            mutants, min(args.per_module, len(mutants)))
        sample += [(module, *m) for m in sorted(chosen, key=lambda m: (m[2], m[0], m[1]))]
        print(f"{module}: {len(mutants)} mutants, {len(chosen)} drawn", flush=True)
    rows = range(len(sample)) if args.only is None else [int(r) for r in args.only.split(",")]
    if args.list:
        for r in rows:
            print(r, *sample[r])
        return 0

    scratch = Path(tempfile.mkdtemp(prefix="skval-mutation-"))
    for name in ("skval", "tests", "pyproject.toml", "setup.cfg"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, scratch / name)
    os.chdir(scratch)
    os.environ["PYTHONPATH"] = str(scratch)  # subprocesses and spawned workers: the copy
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ["MPLBACKEND"] = "Agg"
    sys.path.insert(0, str(scratch))
    for name in PRELOAD:
        __import__(name)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "skval", "tests"],
                           capture_output=True, text=True).stdout.strip()
    print(f"commit {commit}{' (with uncommitted changes)' if dirty else ''}; scratch {scratch}",
          flush=True)

    if args.extra:  # the module's own tests (its -k selection applies to them only), then these
        for module, tests in TESTS.items():
            TESTS[module] = [*tests, "--extra-tests-follow", *args.extra]
    baseline = {}
    for module in sorted({sample[r][0] for r in rows}):
        outcome, seconds = run_tests(scratch, TESTS[module], 1800, scratch / "baseline.log")
        if outcome != "survived":
            print(open(scratch / "baseline.log").read()[-3000:])
            raise SystemExit(f"the unmutated tests of {module} do not pass ({outcome})")
        baseline[module] = seconds
        print(f"baseline {module}: {seconds:.1f} s", flush=True)

    fields = ["row", "module", "operator", "occurrence", "line", "original", "mutated",
              "outcome", "seconds"]
    new_file = not Path(args.out).exists() if args.only else True
    out_path = Path(args.out) if Path(args.out).is_absolute() else ROOT / args.out
    with open(out_path, "a" if args.only else "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        if new_file:
            writer.writeheader()
        counts = {}
        start = time.perf_counter()
        for r in rows:
            module, operator, occurrence, line = sample[r]
            path = scratch / module
            original = path.read_text()
            mutated = mutate(original, operator, occurrence)
            if mutated is None:
                outcome, seconds, before, after = "no-mutation", 0.0, "", ""
            else:
                before, after = changed_line(original, mutated, line)
                path.write_text(mutated)
                try:
                    outcome, seconds = run_tests(
                        scratch, TESTS[module], args.timeout_factor * baseline[module] + 20,
                        scratch / "mutant.log")
                finally:
                    path.write_text(original)
                    shutil.rmtree(path.parent / "__pycache__", ignore_errors=True)
            counts[outcome] = counts.get(outcome, 0) + 1
            writer.writerow(dict(row=r, module=module, operator=operator, occurrence=occurrence,
                                 line=line, original=before, mutated=after, outcome=outcome,
                                 seconds=round(seconds, 1)))
            f.flush()
            print(f"[{r}] {module}:{line} {operator}#{occurrence}: {outcome} ({seconds:.1f} s) "
                  f"{after}", flush=True)
        total = time.perf_counter() - start
    killed = counts.get("killed", 0) + counts.get("timeout", 0)
    ran = sum(v for k, v in counts.items() if k != "no-mutation")
    print(f"{ran} mutants in {total / 60:.1f} min: {counts}; killed {killed}/{ran} "
          f"({100 * killed / max(ran, 1):.1f}%)", flush=True)
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
