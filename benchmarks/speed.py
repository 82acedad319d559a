"""Speed and memory of skval's fit against plain skorch and a raw torch loop of the same network.

For each size n and task (classification: ``make_classification``, regression:
``make_regression``; 20 features) this fits

* ``skval``: ``LossValClassifier`` / ``LossValRegressor`` with default parameters
  (``random_state=0``), except ``max_epochs`` when ``--epochs`` says so;
* ``plain``: a skorch ``NeuralNetClassifier`` / ``NeuralNetRegressor`` with the same module
  (``skval._mlp.MLP``, the estimator's default hidden sizes and activation), the same epochs,
  the batch size skval's default gives for n (``--batch-size`` forces one for all), the same
  optimizer (Adam, lr 0.01), ``train_split=None`` and shuffling;
* ``raw``: the floor a user could write in twenty lines: the same module, epochs and batch
  size in a bare torch loop (fused Adam, lr 0.01, where torch has it; ``CrossEntropyLoss`` /
  ``MSELoss``; per epoch a ``torch.randperm(n)`` and batches indexed out of the float32
  tensors, no DataLoader);
* ``ref`` (with ``--compare-src DIR``): skval imported from another source tree, e.g. the code
  before a change;

each fit in a fresh Python process (so that peak RSS is the fit's own), the variants
alternately. torch uses its default number of threads unless ``--threads`` says otherwise.
Time per epoch is skorch's own epoch duration (``history[:, 'dur']``; for ``raw`` the wall
time of its epoch loop); "fit" is the wall time of the whole fit (validation, network and
optimizer build, epochs). s/epoch leaves out the first epoch (warm-up) when at least 3 ran.
Where fewer epochs than the default 30 were run, the 30-epoch fit time is *extrapolated* as
``fit + (30 - epochs run) * s/epoch`` and marked as such. The report leads with skval/raw
(skval's cost over the floor), then skval/plain.

The fits run in ``_timing.py``, the data comes from ``_tasks.py`` and the report from
``_speed_report.py``.

Examples
--------
Full run (1M rows at 1 epoch, extrapolated to 30)::

    python benchmarks/speed.py --sizes 1000,10000,100000,1000000 --epochs 30,30,5,1

Smoke test::

    python benchmarks/speed.py --quick

One thread per fit, classification only, 3 epochs (the first left out of s/epoch)::

    python benchmarks/speed.py --sizes 1000 --epochs 3 --threads 1 --tasks classification

Threads per variant, in the order skval, plain, raw::

    python benchmarks/speed.py --quick --threads 4,4,1

Before/after a change (``ref``: the old code, exported to a directory)::

    mkdir /tmp/skval_ref && git archive HEAD | tar -x -C /tmp/skval_ref
    python benchmarks/speed.py --compare-src /tmp/skval_ref
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

if not __package__:  # run as a script: import benchmarks/ as the package it is, from the
    # repo root (what `python -m benchmarks.speed` does), not its files as top-level modules
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._report import write_json, write_page
from benchmarks._speed_report import speed_page
from benchmarks._tasks import save_speed_data
from benchmarks._timing import DEFAULT_EPOCHS, run_fit, skval_batch_size

HERE = Path(__file__).resolve().parent
VARIANTS = ("skval", "plain", "raw")  # then "ref" with --compare-src


def parse_args(argv):
    """The command line, checked; sizes, epochs, tasks, variants and threads parsed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000,1000000",
                        help="comma-separated numbers of rows")
    parser.add_argument("--epochs", default=str(DEFAULT_EPOCHS),
                        help="epochs per fit: one number, or one per size (comma-separated)")
    parser.add_argument("--tasks", default="classification,regression")
    parser.add_argument("--repeats", type=int, default=1,
                        help="rounds per size, each fitting every variant (alternating "
                             "the order); the fastest fit of each is reported")
    parser.add_argument("--threads", default="0",
                        help="torch threads per fit (0: torch's default): one number for all, "
                             "or one per variant as skval,plain,raw[,ref]")
    parser.add_argument("--quick", action="store_true", help="sizes 1000,10000 at 2 epochs")
    parser.add_argument("--batch-size", type=int, default=0,
                        help="batch size of every fit; 0 (default): skval's default for each n "
                             "(the plain net and the raw loop get the same)")
    parser.add_argument("--out", default=str(HERE / "results" / "speed.md"),
                        help="markdown report (the raw rows go beside it as .json); a "
                             "directory gets speed.md inside it")
    parser.add_argument("--timeout", type=float, default=6 * 3600, help="seconds per fit")
    parser.add_argument("--compare-src", default=None,
                        help="also fit skval imported from this source tree (e.g. an export of "
                             "the code before a change), alternately with the others")
    args = parser.parse_args(argv)

    if args.quick:
        args.sizes, args.epochs = "1000,10000", "2"
    args.sizes = [int(float(s)) for s in args.sizes.split(",")]
    epochs = [int(e) for e in args.epochs.split(",")]
    args.epochs = epochs * len(args.sizes) if len(epochs) == 1 else epochs
    if len(args.epochs) != len(args.sizes):
        parser.error("--epochs needs one number or one per size")
    args.tasks = args.tasks.split(",")
    args.variants = list(VARIANTS) + (["ref"] if args.compare_src else [])
    threads = [int(t) for t in args.threads.split(",")]
    if len(threads) == 1:
        threads *= len(args.variants)
    if len(threads) != len(args.variants):
        parser.error("--threads needs one number or one per variant "
                     f"({','.join(args.variants)})")
    args.threads = dict(zip(args.variants, threads))
    # checked now, not after hours of fits
    args.out = Path(args.out)
    if args.out.is_dir():
        args.out = args.out / "speed.md"
    return args


def time_variants(task, n, epochs, paths, args):
    """Fit every variant ``args.repeats`` times, alternately; the fastest fit of each.

    Parameters
    ----------
    task : {"classification", "regression"}
        The task.
    n : int
        Rows.
    epochs : int
        Epochs per fit.
    paths : tuple of pathlib.Path
        The data files.
    args : argparse.Namespace
        From :func:`parse_args`.

    Returns
    -------
    dict
        One table row: ``task``, ``n``, ``batch_size`` and the best result of each variant.
    """
    bs = args.batch_size or skval_batch_size(task, n)
    best = {}
    for rep in range(args.repeats):
        order = args.variants if rep % 2 == 0 else args.variants[::-1]
        for which in order:
            src = args.compare_src if which == "ref" else None
            skval_default = which in ("skval", "ref") and not args.batch_size
            res = run_fit(which, task, n, epochs, paths, args.threads[which], args.timeout,
                          0 if skval_default else bs, src)
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
    return {"task": task, "n": n, "batch_size": bs, **best}


def main(argv=None):
    args = parse_args(argv)
    command = "python benchmarks/speed.py " + " ".join(argv if argv is not None else sys.argv[1:])
    load_start = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="skval_speed_") as tmp:
        for n, epochs in zip(args.sizes, args.epochs):
            for task in args.tasks:
                paths = save_speed_data(task, n, Path(tmp))
                rows.append(time_variants(task, n, epochs, paths, args))

    text = speed_page(rows, args.variants, command, args.compare_src,
                      (load_start, os.getloadavg()[0]))
    write_page(args.out, text)
    write_json(args.out.with_suffix(".json"), rows)


if __name__ == "__main__":
    main()
