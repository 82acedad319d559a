"""Noisy-row detection quality: skval against common data-valuation baselines.

Every task is split into train / validation / test (1000 / 100 / rest for the
generated sets, 70 / 10 / 20 % for the small ones), standardised with a scaler fitted
on the clean training rows (regression targets too), and the training rows are then
corrupted with :func:`skval.evaluation.inject_noise` (label, feature or mixed noise at
10 % and 20 %). Each method gives one value per training row (low = noisy); the
values are scored with the 2-means F1 (:func:`skval.evaluation.kmeans_f1`) and the
AUROC (:func:`skval.evaluation.auroc`) against the known noisy rows. The test rows are
held out and never seen by any method.

Methods (all written for this script from the papers; "(reimpl.)" marks methods whose
reference package does not install beside numpy 2):

- ``skval``: ``LossValClassifier`` / ``LossValRegressor`` with default parameters.
- ``skval+val``: the same, fitted with the clean validation split as ``X_val, y_val``.
- ``cleanlab``: ``cleanlab.rank.get_label_quality_scores`` on 5-fold out-of-fold
  ``predict_proba`` of a LogisticRegression (classification), or cleanlab's
  regression ``get_label_quality_scores`` on 5-fold out-of-fold predictions of a
  small MLPRegressor (regression). Without cleanlab: the self-confidence score
  (out-of-fold probability of the given label) for classification, n/a for regression.
- ``data_oob``: Data-OOB (Kwon & Zou, 2023), 200 bagged decision trees; a row's value
  is the mean, over the trees it is out-of-bag for, of the tree's correctness on it
  (classification) or negative squared error (regression).
- ``knn_shapley``: exact KNN-Shapley (Jia et al., 2019), K = 10, by the recursion
  over the training rows sorted by distance to each validation row, averaged over
  the validation rows. Classification uses the paper's label-match utility; for
  regression the per-neighbour utility is the negative squared error of the
  neighbour's target (an additive top-K utility, for which the same recursion is
  exact).
- ``mlp_loss``: minus the training loss of each row under a plain sklearn MLP fitted
  on the noisy training rows (log-probability of the given label, or negative
  squared error).
- ``random``: uniform random values.

The peers are in ``_peers.py``, the tasks and splits in ``_tasks.py``, the report in
``_quality_report.py`` (with ``_report.py``); this script runs them.

Torch and the BLAS libraries run on ``--threads`` threads (default 1), so the timings
are per core.

    python benchmarks/quality.py [--quick] [--seeds N] [--methods a,b] [--tasks a,b] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

import skval
from skval import LossValClassifier, LossValRegressor
from skval.evaluation import auroc, inject_noise, kmeans_f1

# this script's own modules (benchmarks/ is on sys.path when the script runs)
from _peers import PEERS, cleanlab
from _quality_report import quality_page
from _report import csv_rows
from _tasks import CLF, NOISE_KINDS, QUICK_TASKS, TASKS, Problem, SplitSizes, split_task

RATES = (0.1, 0.2)
QUICK_EPOCHS = 10
FIELDS = ["task", "kind", "noise", "rate", "seed", "method", "n_train", "n_noisy",
          "f1", "auroc", "seconds"]


# ----------------------------------------------------------------------------- skval

def _lossval(p):
    estimator = LossValClassifier if p.kind == CLF else LossValRegressor
    epochs = {} if p.max_epochs is None else {"max_epochs": p.max_epochs}
    return estimator(random_state=p.seed, **{**epochs, **p.skval_params})


def skval_values(p):
    """skval's data values, fitted on the noisy training rows alone."""
    return _lossval(p).fit(p.X, p.y).data_values_


def skval_val_values(p):
    """skval's data values, fitted with the clean validation rows as the reference."""
    return _lossval(p).fit(p.X, p.y, X_val=p.X_val, y_val=p.y_val).data_values_


METHODS = {"skval": skval_values, "skval+val": skval_val_values, **PEERS}


# ----------------------------------------------------------------------------- running

def run_method(name, problem, noisy):
    """Value the rows with one method; its F1, AUROC and seconds (NaN where it cannot)."""
    start = time.perf_counter()
    values = METHODS[name](problem)
    seconds = time.perf_counter() - start
    if values is None:
        return {"f1": np.nan, "auroc": np.nan, "seconds": np.nan}
    return {"f1": kmeans_f1(values, noisy), "auroc": auroc(values, noisy), "seconds": seconds}


def run_task(task, config, write):
    """Every seed, noise kind, rate and method on one task; one row per method to ``write``."""
    for seed in config.seeds:
        data = split_task(task, seed, config.sizes)
        for noise in NOISE_KINDS:
            for rate in config.rates:
                start = time.perf_counter()
                X, y, noisy = inject_noise(data.X, data.y, kind=noise, rate=rate,
                                           task=task.kind, random_state=seed)
                problem = Problem(X, y, data.X_val, data.y_val, task.kind, seed,
                                  config.max_epochs, config.skval_params)
                for method in config.methods:
                    scores = run_method(method, problem, noisy)
                    write({"task": task.name, "kind": task.kind, "noise": noise, "rate": rate,
                           "seed": seed, "method": method, "n_train": len(y),
                           "n_noisy": int(noisy.sum()), **scores})
                print(f"  {task.name:20s} seed {seed} {noise:7s} {rate:.1f}: "
                      f"{time.perf_counter() - start:5.1f}s", file=sys.stderr, flush=True)


def run_all(config, csv_path):
    """Run every task; the rows, also written to ``csv_path`` as they come."""
    with csv_rows(csv_path, FIELDS) as write:
        for name in config.tasks:
            run_task(TASKS[name], config, write)
    return write.rows


def versions():
    """The versions of skval and the libraries that the figures depend on, one sentence."""
    return (f"skval {skval.__version__}, torch {torch.__version__}, scikit-learn "
            f"{sklearn.__version__}, numpy {np.__version__}, cleanlab "
            f"{cleanlab.__version__ if cleanlab else 'not installed'}, Python "
            f"{platform.python_version()}")


# ----------------------------------------------------------------------------- CLI

def _choose(names, available, what):
    if names is None:
        return list(available)
    chosen = [s.strip() for s in names.split(",") if s.strip()]
    unknown = [c for c in chosen if c not in available]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)}; "
                         f"choose from {', '.join(available)}")
    return chosen


def parse_args(argv):
    """The command line, with what to run resolved.

    Besides the options, the result has ``command`` (the command line), ``tasks``,
    ``methods``, ``seeds``, ``rates`` and ``max_epochs`` after ``--quick`` and the defaults,
    and ``sizes`` (:class:`_tasks.SplitSizes`, with ``--n-train``).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{len(QUICK_TASKS)} tasks, 1 seed, rate 0.2, {QUICK_EPOCHS} epochs")
    parser.add_argument("--seeds", type=int, default=None,
                        help="number of seeds (default 3, quick 1)")
    parser.add_argument("--methods", default=None, help=f"comma list of {', '.join(METHODS)}")
    parser.add_argument("--tasks", default=None, help=f"comma list of {', '.join(TASKS)}")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--n-train", type=int, default=None,
                        help=f"training rows of the generated tasks (default "
                             f"{SplitSizes().generated[0]}), "
                             "to check the values at the batch sizes of larger data")
    parser.add_argument("--rates", default=None,
                        help=f"comma list of noise rates (default {','.join(map(str, RATES))})")
    parser.add_argument("--threads", type=int, default=1, help="torch / BLAS threads (default 1)")
    parser.add_argument("--skval-params", type=json.loads, default={},
                        help="JSON object of extra skval parameters, to compare variants, "
                             "e.g. '{\"batch_size\": 128}'")
    args = parser.parse_args(argv)
    args.command = " ".join(["python", "benchmarks/quality.py", *map(shlex.quote, argv)])
    args.methods = _choose(args.methods, METHODS, "methods")
    args.tasks = _choose(args.tasks or (",".join(QUICK_TASKS) if args.quick else None), TASKS,
                         "tasks")
    args.seeds = range(args.seeds if args.seeds is not None else (1 if args.quick else 3))
    args.rates = (tuple(float(r) for r in args.rates.split(",")) if args.rates
                  else (0.2,) if args.quick else RATES)
    args.sizes = SplitSizes().with_n_train(args.n_train) if args.n_train else SplitSizes()
    args.max_epochs = QUICK_EPOCHS if args.quick else None
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    start = time.perf_counter()
    with threadpool_limits(args.threads):
        rows = run_all(args, args.out / "quality.csv")
    text = quality_page(rows, args.methods, command=args.command, max_epochs=args.max_epochs,
                        threads=args.threads, wall=time.perf_counter() - start,
                        versions=versions())
    (args.out / "quality.md").write_text(text)
    print(text)
    return rows


if __name__ == "__main__":
    main()
