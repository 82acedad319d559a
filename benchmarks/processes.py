"""One LossVal fit on 1 and on 2 processes (``n_workers``): throughput, communication, quality.

Throughput (the default): the speed benchmark's data (``_tasks.save_speed_data``:
``make_classification`` or ``make_regression``, 20 features, ``--n`` rows) fitted with
default parameters, ``random_state=0`` and ``--epochs`` epochs, once per entry of
``--workers``. Every process runs one torch thread (this script's own included), so
"1 process" is one core and "2 processes" two. Reported per fit:

- training seconds: skorch's epoch durations (``history[:, 'dur']``; with several
  processes rank 0's, which runs in step with the others), and rows per second over them
  (``n * epochs / seconds``), with the speed-up over the first entry of ``--workers``;
- the whole ``fit`` (validation, preparation, starting the processes, assembling);
- what each step all-reduces: the gradient elements counted by the DDP communication hook
  of the fit (per process and step; 0 with one process), as float32 bytes, and per epoch.

Quality (``--quality``): on the quality benchmark's tasks (``_tasks.py``, same splits and
:func:`skval.evaluation.inject_noise` at rate 0.2, label / feature / mixed noise), the
2-means F1 and the AUROC of the values against the noisy rows, from a fit on each
``--workers`` entry, side by side.

The markdown table goes to stdout and to ``--out`` (``processes.md``, or
``processes_quality.md`` with ``--quality``). Examples::

    python benchmarks/processes.py                       # 1,000,000 rows, 1 epoch, 1 and 2 processes
    python benchmarks/processes.py --n 20000 --epochs 2  # a smoke run
    python benchmarks/processes.py --quality --tasks breast_cancer,diabetes --seeds 1 --epochs 10

(Not ``distributed.py``: as a script's name, with the script's folder on ``sys.path``, that
name would shadow dask's ``distributed`` package.)
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

if not __package__:  # run as a script: import benchmarks/ as the package it is, from the
    # repo root (what `python -m benchmarks.processes` does), not its files as top-level modules
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._report import write_page
from benchmarks._tasks import NOISE_KINDS, QUICK_TASKS, TASKS, save_speed_data, split_task

import skval
from skval import LossValClassifier, LossValRegressor
from skval.evaluation import auroc, inject_noise, kmeans_f1

HERE = Path(__file__).resolve().parent
RATE = 0.2


def _estimator(task):
    return LossValClassifier if task == "classification" else LossValRegressor


def fit_once(X, y, task, n_workers, epochs):
    """One timed fit; a table row of its throughput and communication."""
    start = time.perf_counter()
    est = _estimator(task)(max_epochs=epochs, random_state=0, n_workers=n_workers).fit(X, y)
    wall = time.perf_counter() - start
    train_s = float(sum(est.net_.history[:, "dur"]))
    stats = getattr(est, "_distributed_stats", None)
    n_params = sum(p.numel() for p in est.net_.module_.parameters())
    if stats:
        steps = stats["steps"][0]
        elements = stats["allreduced_elements"][0] / steps
        batch = stats["batch_per_process"]
    else:
        batch = est.net_.batch_size
        steps, elements = int(sum(est.net_.history[:, "train_batch_count"])), 0
    return {"workers": n_workers, "n": len(X), "epochs": epochs, "batch": batch,
            "steps_per_epoch": steps / epochs, "train_s": train_s,
            "rows_per_s": len(X) * epochs / train_s, "fit_s": wall, "n_params": n_params,
            "elements_per_step": elements, "bytes_per_step": 4 * elements,
            "bytes_per_epoch": 4 * elements * steps / epochs}


def throughput_page(rows, command, load):
    """The markdown page of the throughput rows."""
    base = rows[0]["rows_per_s"]
    lines = [
        "# One fit on several processes: throughput and communication", "",
        f"Command: `{command}`", "",
        f"Machine: {os.cpu_count()} CPUs, one torch thread per process; load average "
        f"{load[0]:.1f} at the start, {load[1]:.1f} at the end. skval {skval.__version__}, "
        f"torch {torch.__version__}, Python {platform.python_version()}.", "",
        "| processes | rows | epochs | batch per process | steps per epoch and process "
        "| training s | rows/s | speed-up | fit s | network parameters "
        "| all-reduced per step | bytes per step | bytes per epoch and process |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['workers']} | {r['n']:,} | {r['epochs']} | {r['batch']} "
            f"| {r['steps_per_epoch']:,.0f} | {r['train_s']:.1f} | {r['rows_per_s']:,.0f} "
            f"| {r['rows_per_s'] / base:.2f} | {r['fit_s']:.1f} | {r['n_params']:,} "
            f"| {r['elements_per_step']:,.0f} | {r['bytes_per_step']:,.0f} "
            f"| {r['bytes_per_epoch']:,.0f} |")
    lines += ["", "Training s: the epochs' own durations (rank 0's with several processes). "
              "All-reduced per step: gradient elements counted by the DDP communication hook, "
              "per process (0: one process communicates nothing). Bytes: float32."]
    return "\n".join(lines) + "\n"


def run_throughput(args, command):
    load_start = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="skval_processes_") as tmp:
        X_path, y_path = save_speed_data(args.task, args.n, Path(tmp))
        X, y = np.load(X_path), np.load(y_path)
        for k in args.workers:
            row = fit_once(X, y, args.task, k, args.epochs)
            print(f"  {k} process(es): {row['train_s']:.1f} s training, "
                  f"{row['rows_per_s']:,.0f} rows/s, fit {row['fit_s']:.1f} s", flush=True)
            rows.append(row)
    return throughput_page(rows, command, (load_start, os.getloadavg()[0])), "processes.md"


def quality_rows(args):
    """F1 and AUROC of every task, noise and seed, for each entry of ``--workers``."""
    rows = []
    for name in args.tasks:
        task = TASKS[name]
        for seed in range(args.seeds):
            data = split_task(task, seed)
            for noise in NOISE_KINDS:
                X, y, noisy = inject_noise(data.X, data.y, kind=noise, rate=RATE,
                                           task=task.kind, random_state=seed)
                row = {"task": name, "noise": noise, "seed": seed}
                for k in args.workers:
                    values = _estimator(task.kind)(random_state=seed, n_workers=k,
                                                   max_epochs=args.epochs).fit(X, y).data_values_
                    row[k] = (kmeans_f1(values, noisy), auroc(values, noisy))
                print(f"  {name} {noise} seed {seed}: " + ", ".join(
                    f"{k} proc F1 {row[k][0]:.3f} AUROC {row[k][1]:.3f}" for k in args.workers),
                      flush=True)
                rows.append(row)
    return rows


def quality_page(rows, workers, command):
    """The markdown page of the quality rows, with the mean of each column."""
    head = " | ".join(f"F1 {k}p | AUROC {k}p" for k in workers)
    lines = ["# One fit on 1 and on 2 processes: quality", "", f"Command: `{command}`", "",
             f"Noise rate {RATE}; F1: 2-means split of the values; AUROC: values against the "
             "noisy rows.", "", f"| task | noise | seed | {head} |",
             "|---|---|---:|" + "---:|" * (2 * len(workers))]
    for r in rows:
        cells = " | ".join(f"{r[k][0]:.3f} | {r[k][1]:.3f}" for k in workers)
        lines.append(f"| {r['task']} | {r['noise']} | {r['seed']} | {cells} |")
    means = " | ".join(f"{np.mean([r[k][0] for r in rows]):.3f} | "
                       f"{np.mean([r[k][1] for r in rows]):.3f}" for k in workers)
    lines.append(f"| **mean** | | | {means} |")
    return "\n".join(lines) + "\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=lambda s: int(float(s)), default=1_000_000,
                        help="rows of the throughput data (default 1,000,000)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs per fit (default 1; with --quality the estimator's 30)")
    parser.add_argument("--task", choices=["classification", "regression"],
                        default="classification")
    parser.add_argument("--workers", default="1,2", help="process counts (default 1,2)")
    parser.add_argument("--quality", action="store_true",
                        help="compare the values' F1 and AUROC instead of timing")
    parser.add_argument("--tasks", default=",".join(QUICK_TASKS),
                        help=f"quality tasks (default {','.join(QUICK_TASKS)})")
    parser.add_argument("--seeds", type=int, default=3, help="quality seeds (default 3)")
    parser.add_argument("--out", type=Path, default=HERE / "results",
                        help="folder of the markdown page")
    args = parser.parse_args(argv)
    args.workers = [int(k) for k in args.workers.split(",")]
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in args.tasks if t not in TASKS]
    if unknown:
        parser.error(f"unknown tasks: {', '.join(unknown)}")
    if args.epochs is None:
        args.epochs = 30 if args.quality else 1
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    command = " ".join(["python benchmarks/processes.py", *argv])
    torch.set_num_threads(1)  # this process's 1-process fits; the spawned ones take 1 each
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.quality:
        text, name = quality_page(quality_rows(args), args.workers, command), \
            "processes_quality.md"
    else:
        text, name = run_throughput(args, command)
    write_page(args.out / name, text)


if __name__ == "__main__":
    main()
