"""Wall time of one fit: ``CleanedEstimator`` against cleanlab's ``CleanLearning``, same table.

Issue 23's target: ``CleanedEstimator(HistGradientBoosting)`` at most twice the wall time of
``CleanLearning(HistGradientBoosting)`` on the same 3,000-row table. Each fit runs in a fresh
Python process (one torch thread, ``OMP_NUM_THREADS=1``), the two alternating, ``--repeats``
times each; both children import skval, torch and cleanlab before the clock starts, so that
neither pays the other's imports, and each fits on every row of a task of
``benchmarks/cleaning.py`` (its noisy labels; seed 0) with the defaults of the cleaning
benchmark: ``CleanedEstimator(base, random_state=0)`` (its default valuer, an inner CV) and
``CleanLearning(base, seed=0)``; ``base`` is the task's HistGradientBoosting model (behind its
preprocessing on a real table). Prints and writes (``--out``) the fastest and median seconds
and the ratio of the fastest.

    OMP_NUM_THREADS=1 python benchmarks/cleaning_speed.py --tasks rare_generated,default_flips \\
        --repeats 3 --out benchmarks/results/cleaning_speed
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("skval", "cleanlab")

_CHILD = """
import json, sys, time, warnings
sys.path.insert(0, {root!r})
warnings.filterwarnings("ignore")
import torch
torch.set_num_threads(1)
import cleanlab.classification, cleanlab.regression.learn  # both children import both
from sklearn.base import clone
from benchmarks import cleaning
from skval import CleanedEstimator
task = cleaning.TASKS[{task!r}]
X, y, _, _ = cleaning.task_data(task, 0)
base = cleaning.base_models(task, X)["hgb"]
if {variant!r} == "skval":
    model = CleanedEstimator(clone(base), random_state=0)
else:
    model = cleaning.cleanlab_version(base, task, X)
start = time.perf_counter()
model.fit(X, y)
print(json.dumps({{"seconds": time.perf_counter() - start,
                  "removed": int(getattr(model, "n_removed_", -1))}}))
"""


def time_fit(task, variant):
    """Seconds of one fit of ``variant`` on ``task``, in a fresh process."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    code = _CHILD.format(root=str(ROOT), task=task, variant=variant)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["seconds"]


def measure(tasks, repeats):
    """Per task and variant: every fit's seconds, the variants alternating."""
    times = {(task, v): [] for task in tasks for v in VARIANTS}
    for task in tasks:
        for _ in range(repeats):
            for variant in VARIANTS:
                times[task, variant].append(time_fit(task, variant))
    return times


def page(times, command):
    """A markdown table: fastest and median seconds per variant, the ratio of the fastest."""
    lines = [f"Command: `{command}`", "",
             "| task | CleanedEstimator s (fastest / median) | CleanLearning s (fastest / median) "
             "| ratio (fastest) |", "|---|---|---|---|"]
    for task in dict.fromkeys(t for t, _ in times):
        ours, theirs = times[task, "skval"], times[task, "cleanlab"]
        lines.append(f"| {task} | {min(ours):.2f} / {np.median(ours):.2f} | "
                     f"{min(theirs):.2f} / {np.median(theirs):.2f} | "
                     f"**{min(ours) / min(theirs):.2f}x** |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="rare_generated", help="cleaning.py task names")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None, help="write <out>.md and <out>.json")
    args = parser.parse_args(argv)
    times = measure(args.tasks.split(","), args.repeats)
    command = "OMP_NUM_THREADS=1 python benchmarks/cleaning_speed.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    text = page(times, command)
    print(text)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".md").write_text(text)
        out.with_suffix(".json").write_text(json.dumps(
            {f"{task}/{variant}": seconds for (task, variant), seconds in times.items()},
            indent=1))
    return times


if __name__ == "__main__":
    main()
