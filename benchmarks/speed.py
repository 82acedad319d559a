"""Speed and memory of skval's fit against plain skorch training of the same network.

For each size n and task (classification: ``make_classification``, regression:
``make_regression``; 20 features) this fits

* ``skval``: ``LossValClassifier`` / ``LossValRegressor`` with default parameters
  (``random_state=0``), except ``max_epochs`` when ``--epochs`` says so;
* ``plain``: a skorch ``NeuralNetClassifier`` / ``NeuralNetRegressor`` with the same module
  (``skval._mlp.MLP``, the estimator's default hidden sizes and activation), the same epochs,
  the batch size skval's default gives for n (``--batch-size`` forces one for all), the same
  optimizer (Adam, lr 0.01), ``train_split=None`` and shuffling,
* ``ref`` (with ``--compare-src DIR``): skval imported from another source tree, e.g. the code
  before a change,

each fit in a fresh Python process (so that peak RSS is the fit's own), the variants
alternately. torch uses its default number of threads unless ``--threads`` says otherwise. Time per epoch is skorch's own epoch duration (``history[:, 'dur']``); "fit" is the
wall time of the whole ``fit`` call (validation, network build, epochs). s/epoch leaves out
the first epoch (warm-up) when at least 3 ran. Where fewer epochs than the default 30 were run,
the 30-epoch fit time is *extrapolated* as ``fit + (30 - epochs run) * s/epoch`` and marked as
such.

Examples
--------
Full run (1M rows at 1 epoch, extrapolated to 30)::

    python benchmarks/speed.py --sizes 1000,10000,100000,1000000 --epochs 30,30,5,1

Smoke test::

    python benchmarks/speed.py --quick

Before/after a change (``ref``: the old code, exported to a directory)::

    mkdir /tmp/skval_ref && git archive HEAD | tar -x -C /tmp/skval_ref
    python benchmarks/speed.py --compare-src /tmp/skval_ref
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_EPOCHS = 30
N_FEATURES = 20
# The estimators' defaults, copied so that the plain skorch net trains the same network.
DEFAULTS = {
    "classification": dict(hidden=(100,) * 5, activation="relu"),
    "regression": dict(hidden=(90,) * 3, activation="tanh"),
}


def _skval_batch_size(task, n, src=None):
    """The batch size skval's default ``batch_size`` gives for ``n`` rows (no X_val)."""
    code = ("import sys, skval; "
            f"est = skval.{'LossValClassifier' if task == 'classification' else 'LossValRegressor'}(); "
            f"bs = est.batch_size; "
            f"print(est._batch_size({n}, True) if hasattr(est, '_batch_size') else bs)")
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src)] + [p for p in [env.get("PYTHONPATH")] if p])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    return int(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- child side
def _rss_mib(field):
    """``VmRSS`` (current) or ``VmHWM`` (peak) of this process, in MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _child(args):
    """Fit once and print one JSON line: times and memory."""
    import resource

    import torch
    from skorch import NeuralNetClassifier, NeuralNetRegressor
    from skorch.callbacks import Callback

    class EpochCPUTime(Callback):
        """Records the process CPU time (all threads) of each epoch as ``history[:, 'cpu']``."""

        def on_epoch_begin(self, net, **kwargs):
            self.t0_ = time.process_time()

        def on_epoch_end(self, net, **kwargs):
            net.history.record("cpu", time.process_time() - self.t0_)

    import skval
    from skval import LossValClassifier, LossValRegressor
    from skval._mlp import MLP

    if args.threads:
        torch.set_num_threads(args.threads)
    base_rss = _rss_mib("VmRSS")  # python + numpy + torch + skorch + POT + skval imported
    X = np.load(args.data_X)
    y = np.load(args.data_y)
    spec = DEFAULTS[args.task]
    t0 = time.perf_counter()
    if args.which == "skval":
        cls = LossValClassifier if args.task == "classification" else LossValRegressor
        kwargs = {} if args.batch_size == 0 else {"batch_size": args.batch_size}
        est = cls(max_epochs=args.epochs, random_state=0,
                  callbacks=[("cpu_time", EpochCPUTime())], **kwargs).fit(X, y)
        history = est.net_.history
        batch_size = est.net_.batch_size
    else:
        torch.manual_seed(0)
        common = dict(
            module=MLP,
            module__n_features=X.shape[1],
            module__hidden_layer_sizes=spec["hidden"],
            module__activation=spec["activation"],
            optimizer=torch.optim.Adam,
            lr=0.01,
            batch_size=args.batch_size,
            max_epochs=args.epochs,
            train_split=None,
            iterator_train__shuffle=True,
            callbacks=[("cpu_time", EpochCPUTime())],
            verbose=0,
        )
        if args.task == "classification":
            net = NeuralNetClassifier(criterion=torch.nn.CrossEntropyLoss,
                                      module__n_outputs=int(y.max()) + 1, **common)
            net.fit(X, y)
        else:
            net = NeuralNetRegressor(module__n_outputs=1, **common)
            net.fit(X, y.reshape(-1, 1))
        history = net.history
        batch_size = net.batch_size
    fit_s = time.perf_counter() - t0
    durs = [float(d) for d in history[:, "dur"]]
    cpus = [float(d) for d in history[:, "cpu"]]
    peak = _rss_mib("VmHWM")
    ru_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "fit_s": fit_s, "epoch_durs": durs, "epoch_cpus": cpus, "base_rss_mib": base_rss,
        "peak_rss_mib": max(peak, ru_peak), "threads": torch.get_num_threads(),
        "batch_size": batch_size,
        "skval_file": skval.__file__,
    }))


# --------------------------------------------------------------------------- parent side
def _make_data(task, n, directory):
    from sklearn.datasets import make_classification, make_regression

    px, py = directory / f"{task}_{n}_X.npy", directory / f"{task}_{n}_y.npy"
    if not px.exists():
        if task == "classification":
            X, y = make_classification(n_samples=n, n_features=N_FEATURES, random_state=0)
            y = y.astype(np.int64)
        else:
            X, y = make_regression(n_samples=n, n_features=N_FEATURES, noise=10.0, random_state=0)
            y = ((y - y.mean()) / y.std()).astype(np.float32)
        np.save(px, X.astype(np.float32))
        np.save(py, y)
    return px, py


def _run_child(which, task, n, epochs, paths, threads, timeout, batch_size, src=None):
    """Run one fit in a fresh interpreter; ``src``: a source tree to import skval from.

    ``batch_size`` 0: skval's default (skval variants only).
    """
    cmd = [sys.executable, __file__, "--child", "plain" if which == "plain" else "skval",
           "--task", task, "--epochs", str(epochs), "--data-X", str(paths[0]),
           "--data-y", str(paths[1]), "--threads", str(threads), "--batch-size", str(batch_size)]
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src)] + [p for p in [env.get("PYTHONPATH")] if p])
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{which} {task} n={n} failed:\n{out.stderr[-4000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if src is not None and not Path(res["skval_file"]).resolve().is_relative_to(Path(src).resolve()):
        raise RuntimeError(f"{which} imported skval from {res['skval_file']}, not from {src}")
    durs, cpus = res["epoch_durs"], res["epoch_cpus"]
    # the first epoch carries one-off warm-up costs: leave it out of the mean when it can
    res["s_per_epoch"] = float(np.mean(durs[1:] if len(durs) >= 3 else durs))
    res["cpu_per_epoch"] = float(np.mean(cpus[1:] if len(cpus) >= 3 else cpus))
    res["fit30_s"] = res["fit_s"] + (DEFAULT_EPOCHS - len(durs)) * res["s_per_epoch"]
    res["extrapolated"] = epochs < DEFAULT_EPOCHS
    res["epochs"] = epochs
    return res


def _slope(ns, ts):
    """Least-squares slope of log(t) against log(n)."""
    if len(ns) < 2:
        return float("nan")
    return float(np.polyfit(np.log(ns), np.log(ts), 1)[0])


def _fmt_s(s):
    if s >= 3600:
        return f"{s / 3600:.2f} h"
    if s >= 60:
        return f"{s / 60:.1f} min"
    return f"{s:.2f} s"


def _report(rows, variants, command, ref_src, loads):
    names = {"skval": "skval", "plain": "plain", "ref": "skval(ref)"}
    threads = ", ".join(f"{names[v]} {rows[0][v]['threads']}" for v in variants)
    lines = ["# skval fit speed and memory", "",
             f"Command: `{command}`", "",
             f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
             f"Python {platform.python_version()}, torch threads per fit: {threads}. "
             "Each fit ran in a fresh process, the variants alternately "
             f"({', '.join(names[v] for v in variants)}). Other jobs may have shared the CPUs: "
             "compare the variants of one row rather than absolute times. 1-minute load average "
             f"at the start and end of the run: {loads[0]:.2f}, {loads[1]:.2f}.", ""]
    if ref_src:
        lines += [f"`skval(ref)`: skval imported from `{ref_src}` (the code before a change).", ""]
    lines += ["`s/epoch`: mean skorch epoch duration, wall clock (without the first epoch when >= 3 "
              "ran); `cpu/ep`: CPU seconds of the process per epoch, all threads. "
              "`ratio`: skval s/epoch / plain s/epoch. `ms/step`: s/epoch / steps per epoch. "
              "`fit@30`: wall time of a 30-epoch fit; **(extrapolated) where fewer epochs ran**: "
              "fit + (30 - epochs run) x s/epoch. `mem`: peak RSS of the fitting process minus "
              "the RSS after importing python+numpy+torch+skorch+POT+skval (so it includes the "
              "loaded float32 X), in MiB; target 3 x X(float32) + 500 MiB.", ""]
    for task in ("classification", "regression"):
        head = ["n", "batch", "epochs run", "steps/epoch"]
        for v in variants:
            head += [f"{names[v]} s/epoch", f"{names[v]} cpu/ep"]
        head += ["ratio"] + (["ref/new"] if "ref" in variants else [])
        head += [f"{names[v]} ms/step" for v in variants]
        head += [f"{names[v]} fit@30" for v in variants]
        head += [f"{names[v]} mem" for v in variants] + ["mem target"]
        lines += [f"## {task}", "", "| " + " | ".join(head) + " |",
                  "|" + "---|" * len(head)]
        task_rows = [r for r in rows if r["task"] == task]
        for r in task_rows:
            bs = r["batch_size"]
            steps = math.ceil(r["n"] / bs)
            xmib = r["n"] * N_FEATURES * 4 / 2**20
            ext = " (extrapolated)" if r["skval"]["extrapolated"] else ""
            batch = str(bs)
            if "ref" in r and r["ref"]["batch_size"] != bs:
                batch += f" (ref {r['ref']['batch_size']})"
            cells = [f"{r['n']:,}", batch, str(r["skval"]["epochs"]), str(steps)]
            for v in variants:
                cells += [f"{r[v]['s_per_epoch']:.3f}", f"{r[v]['cpu_per_epoch']:.3f}"]
            cells.append(f"{r['skval']['s_per_epoch'] / r['plain']['s_per_epoch']:.2f}")
            if "ref" in variants:
                cells.append(f"{r['ref']['s_per_epoch'] / r['skval']['s_per_epoch']:.2f}")
            cells += [f"{1e3 * r[v]['s_per_epoch'] / steps:.2f}" for v in variants]
            cells += [_fmt_s(r[v]["fit30_s"]) + ext for v in variants]
            cells += [f"{r[v]['peak_rss_mib'] - r[v]['base_rss_mib']:.0f}" for v in variants]
            cells.append(f"{3 * xmib + 500:.0f}")
            lines.append("| " + " | ".join(cells) + " |")
        big = [r for r in task_rows if r["n"] >= 10_000]
        if len(big) >= 2:
            ns = [r["n"] for r in big]
            slopes = ", ".join(
                f"{names[v]} {_slope(ns, [r[v]['s_per_epoch'] for r in big]):.2f} "
                f"(cpu {_slope(ns, [r[v]['cpu_per_epoch'] for r in big]):.2f})" for v in variants)
            lines += ["", f"Log-log slope of s/epoch in n (n >= 10k; 1 = linear time): {slopes}."]
        lines.append("")
    lines += ["Raw per-fit numbers are in the `.json` file next to this one.", ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000,1000000",
                        help="comma-separated numbers of rows")
    parser.add_argument("--epochs", default=str(DEFAULT_EPOCHS),
                        help="epochs per fit: one number, or one per size (comma-separated)")
    parser.add_argument("--tasks", default="classification,regression")
    parser.add_argument("--repeats", type=int, default=1,
                        help="alternating skval/plain pairs per size; the fastest is reported")
    parser.add_argument("--threads", default="0",
                        help="torch threads per fit (0: torch's default): one number for all, "
                             "or one per variant as skval,plain[,ref]")
    parser.add_argument("--quick", action="store_true", help="sizes 1000,10000 at 2 epochs")
    parser.add_argument("--batch-size", type=int, default=0,
                        help="batch size of every fit; 0 (default): skval's default for each n "
                             "(the plain net gets the same)")
    parser.add_argument("--out", default=str(HERE / "results" / "speed.md"))
    parser.add_argument("--timeout", type=float, default=6 * 3600, help="seconds per fit")
    parser.add_argument("--compare-src", default=None,
                        help="also fit skval imported from this source tree (e.g. an export of "
                             "the code before a change), alternately with the others")
    # internal: one fit in a child process
    parser.add_argument("--child", choices=("skval", "plain"), help=argparse.SUPPRESS)
    parser.add_argument("--task", help=argparse.SUPPRESS)
    parser.add_argument("--data-X", help=argparse.SUPPRESS)
    parser.add_argument("--data-y", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        args.which = args.child
        args.epochs = int(args.epochs)
        args.threads = int(args.threads)
        _child(args)
        return

    if args.quick:
        args.sizes, args.epochs = "1000,10000", "2"
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    epochs = [int(e) for e in args.epochs.split(",")]
    if len(epochs) == 1:
        epochs *= len(sizes)
    if len(epochs) != len(sizes):
        parser.error("--epochs needs one number or one per size")
    tasks = args.tasks.split(",")
    command = "python benchmarks/speed.py " + " ".join(argv if argv is not None else sys.argv[1:])

    variants = ["skval", "plain"] + (["ref"] if args.compare_src else [])
    threads = [int(t) for t in args.threads.split(",")]
    threads = dict(zip(variants, threads * len(variants) if len(threads) == 1 else threads))
    if set(threads) != set(variants):
        parser.error("--threads needs one number or one per variant (skval,plain[,ref])")
    load_start = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="skval_speed_") as tmp:
        for n, ep in zip(sizes, epochs):
            for task in tasks:
                paths = _make_data(task, n, Path(tmp))
                bs = args.batch_size or _skval_batch_size(task, n)
                best = {}
                for rep in range(args.repeats):
                    order = variants if rep % 2 == 0 else variants[::-1]
                    for which in order:
                        src = args.compare_src if which == "ref" else None
                        res = _run_child(which, task, n, ep, paths, threads[which], args.timeout,
                                         0 if which != "plain" and not args.batch_size else bs, src)
                        if res["batch_size"] != bs and which != "ref":
                            raise RuntimeError(f"{which} trained with batch {res['batch_size']}, "
                                               f"expected {bs}")
                        print(f"  {task:14s} n={n:>9,} {which:5s} rep {rep}: "
                              f"{res['s_per_epoch']:.3f} s/epoch ({res['cpu_per_epoch']:.3f} cpu), "
                              f"fit {res['fit_s']:.1f} s, "
                              f"mem {res['peak_rss_mib'] - res['base_rss_mib']:.0f} MiB",
                              flush=True)
                        if which not in best or res["s_per_epoch"] < best[which]["s_per_epoch"]:
                            best[which] = res
                rows.append({"task": task, "n": n, "batch_size": bs, **best})

    text = _report(rows, variants, command, args.compare_src, (load_start, os.getloadavg()[0]))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    print()
    print(text)


if __name__ == "__main__":
    main()
