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

Torch and the BLAS libraries run on ``--threads`` threads (default 1), so the timings
are per core.

    python benchmarks/quality.py [--quick] [--seeds N] [--methods a,b] [--tasks a,b] [--out DIR]
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
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import sklearn
import torch
from sklearn import datasets
from sklearn.ensemble import BaggingClassifier, BaggingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import pairwise_distances
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict, train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from threadpoolctl import threadpool_limits

import skval
from skval import LossValClassifier, LossValRegressor
from skval.evaluation import auroc, inject_noise, kmeans_f1

try:  # optional: the benchmark falls back to a re-implementation without it
    import cleanlab
    from cleanlab.rank import get_label_quality_scores as cleanlab_class_scores
    from cleanlab.regression.rank import get_label_quality_scores as cleanlab_regression_scores
except ImportError:  # pragma: no cover - depends on the environment
    cleanlab = None

CLF, REG = "classification", "regression"
NOISE_KINDS = ("label", "feature", "mixed")
RATES = (0.1, 0.2)
N_GENERATED = 1600
GENERATED_SPLIT = (1000, 100)  # train, validation rows; the rest is test
SMALL_SPLIT = (0.7, 0.1)  # train, validation fractions; the rest is test
QUICK_TASKS = ("breast_cancer", "diabetes", "make_classification")
QUICK_EPOCHS = 10
N_TREES = 200
KNN_K = 10
CV_FOLDS = 5


# ----------------------------------------------------------------------------- tasks

def two_dplanes(n, random_state):
    """Breiman's 2dplanes: 10 features, the first picks which plane gives the target."""
    rng = np.random.RandomState(random_state)
    X = rng.randint(-1, 2, size=(n, 10)).astype(np.float64)
    X[:, 0] = rng.choice([-1.0, 1.0], size=n)
    upper = 3 + 3 * X[:, 1] + 2 * X[:, 2] + X[:, 3]
    lower = -3 + 3 * X[:, 4] + 2 * X[:, 5] + X[:, 6]
    y = np.where(X[:, 0] == 1, upper, lower) + rng.normal(size=n)
    return X, y


def friedman1(n, random_state):
    return datasets.make_friedman1(n, n_features=10, noise=1.0, random_state=random_state)


def above_median(make):
    """A regression generator binarised at the median of its target."""
    def make_binary(n, random_state):
        X, y = make(n, random_state)
        return X, (y > np.median(y)).astype(int)
    return make_binary


def make_classification(n, random_state):
    return datasets.make_classification(n, n_features=20, n_informative=10, n_redundant=5,
                                        flip_y=0.0, random_state=random_state)


@dataclass(frozen=True)
class Task:
    name: str
    kind: str
    load: Callable[[int], tuple]  # seed -> (X, y)
    generated: bool


def _bundled(loader):
    return lambda seed: loader(return_X_y=True)


def _generated(make):
    return lambda seed: make(N_GENERATED, seed)


TASKS = {t.name: t for t in [
    Task("breast_cancer", CLF, _bundled(datasets.load_breast_cancer), False),
    Task("digits", CLF, _bundled(datasets.load_digits), False),
    Task("wine", CLF, _bundled(datasets.load_wine), False),
    Task("make_classification", CLF, _generated(make_classification), True),
    Task("friedman1_clf", CLF, _generated(above_median(friedman1)), True),
    Task("2dplanes_clf", CLF, _generated(above_median(two_dplanes)), True),
    Task("diabetes", REG, _bundled(datasets.load_diabetes), False),
    Task("friedman1", REG, _generated(friedman1), True),
    Task("2dplanes", REG, _generated(two_dplanes), True),
]}


@dataclass
class Split:
    X: np.ndarray
    y: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def split_task(task, seed):
    """Train / validation / test split, standardised on the training rows."""
    X, y = task.load(seed)
    if task.kind == CLF:
        y = np.unique(y, return_inverse=True)[1]  # classes 0..K-1
    n = len(y)
    if task.generated:
        n_train, n_val = GENERATED_SPLIT
    else:
        n_train, n_val = (round(n * f) for f in SMALL_SPLIT)
    strat = task.kind == CLF
    X_tr, X_rest, y_tr, y_rest = train_test_split(
        X, y, train_size=n_train, random_state=seed, stratify=y if strat else None)
    X_va, X_te, y_va, y_te = train_test_split(
        X_rest, y_rest, train_size=n_val, random_state=seed, stratify=y_rest if strat else None)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_va, X_te = (scaler.transform(a) for a in (X_tr, X_va, X_te))
    if task.kind == REG:
        mean, std = y_tr.mean(), y_tr.std()
        y_tr, y_va, y_te = ((a - mean) / std for a in (y_tr, y_va, y_te))
    return Split(X_tr, y_tr, X_va, y_va, X_te, y_te)


# ----------------------------------------------------------------------------- methods

@dataclass
class Problem:
    """One noisy training set, with what the methods may use."""
    X: np.ndarray
    y: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    kind: str
    seed: int
    max_epochs: int | None  # None: the estimator's default
    skval_params: dict  # extra parameters of the skval estimators (--skval-params)


def _lossval(p):
    estimator = LossValClassifier if p.kind == CLF else LossValRegressor
    epochs = {} if p.max_epochs is None else {"max_epochs": p.max_epochs}
    return estimator(random_state=p.seed, **{**epochs, **p.skval_params})


def skval_values(p):
    return _lossval(p).fit(p.X, p.y).data_values_


def skval_val_values(p):
    return _lossval(p).fit(p.X, p.y, X_val=p.X_val, y_val=p.y_val).data_values_


def _out_of_fold(model, p, method):
    folds = StratifiedKFold if p.kind == CLF else KFold
    cv = folds(CV_FOLDS, shuffle=True, random_state=p.seed)
    return cross_val_predict(model, p.X, p.y, cv=cv, method=method)


def cleanlab_values(p):
    if p.kind == CLF:
        proba = _out_of_fold(LogisticRegression(max_iter=1000), p, "predict_proba")
        if cleanlab is None:
            return proba[np.arange(len(p.y)), p.y]  # self-confidence
        return cleanlab_class_scores(p.y, proba)
    if cleanlab is None:
        return None
    model = MLPRegressor(hidden_layer_sizes=(64,), max_iter=300, random_state=p.seed)
    return cleanlab_regression_scores(p.y, _out_of_fold(model, p, "predict"))


def data_oob_values(p):
    if p.kind == CLF:
        bag = BaggingClassifier(DecisionTreeClassifier(), n_estimators=N_TREES, random_state=p.seed)
    else:
        bag = BaggingRegressor(DecisionTreeRegressor(), n_estimators=N_TREES, random_state=p.seed)
    bag.fit(p.X, p.y)  # classes are already 0..K-1, so the trees predict them directly
    n = len(p.y)
    total, count = np.zeros(n), np.zeros(n)
    for tree, rows, features in zip(bag.estimators_, bag.estimators_samples_, bag.estimators_features_):
        oob = np.ones(n, bool)
        oob[rows] = False
        pred = tree.predict(p.X[np.ix_(oob, features)])
        total[oob] += (pred == p.y[oob]) if p.kind == CLF else -(pred - p.y[oob]) ** 2
        count[oob] += 1
    values = total / np.maximum(count, 1)
    values[count == 0] = values[count > 0].mean()  # never out-of-bag: no evidence either way
    return values


def knn_shapley(X, y, X_test, y_test, k, utility):
    """Exact KNN-Shapley values averaged over the test rows.

    ``utility(y_neighbours, y_test)`` scores each training row as a neighbour of each
    test row (shape ``(n_test, n)``); the game's value is the mean utility of the K
    nearest rows, whose Shapley values follow the recursion of Jia et al. (2019).
    """
    n = len(y)
    order = np.argsort(pairwise_distances(X_test, X), axis=1, kind="stable")
    u = utility(y[order], y_test[:, None]).astype(np.float64)
    rank = np.arange(1, n)  # 1-based rank of the nearer row of each adjacent pair
    steps = (u[:, :-1] - u[:, 1:]) / k * np.minimum(k, rank) / rank
    shapley = np.empty_like(u)
    shapley[:, -1] = u[:, -1] / n
    shapley[:, :-1] = shapley[:, -1:] + np.cumsum(steps[:, ::-1], axis=1)[:, ::-1]
    values = np.empty_like(shapley)
    np.put_along_axis(values, order, shapley, axis=1)
    return values.mean(axis=0)


def knn_shapley_values(p):
    if p.kind == CLF:
        utility = np.equal
    else:
        def utility(y_row, y_test):
            return -(y_row - y_test) ** 2
    return knn_shapley(p.X, p.y, p.X_val, p.y_val, KNN_K, utility)


def mlp_loss_values(p):
    if p.kind == CLF:
        model = MLPClassifier(hidden_layer_sizes=(100,), random_state=p.seed).fit(p.X, p.y)
        proba = model.predict_proba(p.X)[np.arange(len(p.y)), np.searchsorted(model.classes_, p.y)]
        return np.log(np.clip(proba, 1e-12, None))
    model = MLPRegressor(hidden_layer_sizes=(100,), random_state=p.seed).fit(p.X, p.y)
    return -(model.predict(p.X) - p.y) ** 2


def random_values(p):
    return np.random.RandomState(p.seed).rand(len(p.y))


METHODS = {
    "skval": skval_values,
    "skval+val": skval_val_values,
    "cleanlab": cleanlab_values,
    "data_oob": data_oob_values,
    "knn_shapley": knn_shapley_values,
    "mlp_loss": mlp_loss_values,
    "random": random_values,
}
REIMPLEMENTED = {"data_oob", "knn_shapley"} | (set() if cleanlab else {"cleanlab"})


def label(method):
    return f"{method} (reimpl.)" if method in REIMPLEMENTED else method


# ----------------------------------------------------------------------------- running

def run_method(name, problem, noisy):
    start = time.perf_counter()
    values = METHODS[name](problem)
    seconds = time.perf_counter() - start
    if values is None:
        return {"f1": np.nan, "auroc": np.nan, "seconds": np.nan}
    return {"f1": kmeans_f1(values, noisy), "auroc": auroc(values, noisy), "seconds": seconds}


def run_task(task, seeds, rates, methods, max_epochs, skval_params, write):
    for seed in seeds:
        data = split_task(task, seed)
        for noise in NOISE_KINDS:
            for rate in rates:
                start = time.perf_counter()
                X, y, noisy = inject_noise(data.X, data.y, kind=noise, rate=rate,
                                           task=task.kind, random_state=seed)
                problem = Problem(X, y, data.X_val, data.y_val, task.kind, seed, max_epochs,
                                  skval_params)
                for method in methods:
                    scores = run_method(method, problem, noisy)
                    write({"task": task.name, "kind": task.kind, "noise": noise, "rate": rate,
                           "seed": seed, "method": method, "n_train": len(y),
                           "n_noisy": int(noisy.sum()), **scores})
                print(f"  {task.name:20s} seed {seed} {noise:7s} {rate:.1f}: "
                      f"{time.perf_counter() - start:5.1f}s", file=sys.stderr, flush=True)


FIELDS = ["task", "kind", "noise", "rate", "seed", "method", "n_train", "n_noisy",
          "f1", "auroc", "seconds"]


def run_all(tasks, seeds, rates, methods, max_epochs, skval_params, csv_path):
    rows = []
    tmp = csv_path.with_name(csv_path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()

        def write(row):
            rows.append(row)
            writer.writerow(row)
            f.flush()

        for task in tasks:
            run_task(task, seeds, rates, methods, max_epochs, skval_params, write)
    tmp.replace(csv_path)
    return rows


# ----------------------------------------------------------------------------- report

def mean_by(rows, keys, metric):
    """Mean of ``metric`` over the rows grouped by ``keys`` (NaNs ignored)."""
    groups = defaultdict(list)
    for row in rows:
        groups[tuple(row[k] for k in keys)].append(row[metric])
    return {key: float(np.nanmean(v)) if not np.isnan(v).all() else np.nan
            for key, v in ((key, np.asarray(v, dtype=np.float64)) for key, v in groups.items())}


def _fmt(value, best):
    if np.isnan(value):
        return "n/a"
    text = f"{value:.3f}"
    return f"**{text}**" if best is not None and np.isclose(value, best) else text


def _best(values):
    finite = [v for v in values if not np.isnan(v)]
    return max(finite) if finite else None


def _table(header, lines):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return "\n".join(out)


def _present(rows, key, order):
    seen = {row[key] for row in rows}
    return [x for x in order if x in seen]


def aggregate_table(rows, metric, methods):
    """Methods x (task kind, noise kind): mean of ``metric``, best per column in bold."""
    means = mean_by(rows, ["method", "kind", "noise"], metric)
    columns = [(k, n) for k in _present(rows, "kind", (CLF, REG))
               for n in _present(rows, "noise", NOISE_KINDS)]
    columns = [c for c in columns if any((m, *c) in means for m in methods)]
    best = {c: _best([means.get((m, *c), np.nan) for m in methods]) for c in columns}
    header = ["method"] + [f"{'clf' if k == CLF else 'reg'} {n}" for k, n in columns]
    lines = [[label(m)] + [_fmt(means.get((m, *c), np.nan), best[c]) for c in columns]
             for m in methods]
    return _table(header, lines)


def detail_table(rows, methods):
    """(task, noise kind) x methods: mean F1 / mean AUROC, best of each in bold."""
    f1 = mean_by(rows, ["task", "noise", "method"], "f1")
    auc = mean_by(rows, ["task", "noise", "method"], "auroc")
    lines = []
    for task in _present(rows, "task", TASKS):
        for noise in _present(rows, "noise", NOISE_KINDS):
            cells = [(f1.get((task, noise, m), np.nan), auc.get((task, noise, m), np.nan))
                     for m in methods]
            if all(np.isnan(c[0]) for c in cells):
                continue
            best_f1, best_auc = _best([c[0] for c in cells]), _best([c[1] for c in cells])
            lines.append([task, noise] + [
                "n/a" if np.isnan(a) else f"{_fmt(f, best_f1)} / {_fmt(a, best_auc)}"
                for f, a in cells])
    return _table(["task", "noise"] + [label(m) for m in methods], lines)


def seconds_table(rows, methods):
    secs = mean_by(rows, ["method", "kind"], "seconds")
    kinds = _present(rows, "kind", (CLF, REG))
    lines = [[label(m)] + [_fmt(secs.get((m, k), np.nan), None) for k in kinds] for m in methods]
    return _table(["method"] + [f"{k} (s)" for k in kinds], lines)


def report(rows, args, methods, wall):
    tasks = _present(rows, "task", TASKS)
    rates = sorted({row["rate"] for row in rows})
    seeds = sorted({row["seed"] for row in rows})
    versions = (f"skval {skval.__version__}, torch {torch.__version__}, scikit-learn "
                f"{sklearn.__version__}, numpy {np.__version__}, cleanlab "
                f"{cleanlab.__version__ if cleanlab else 'not installed'}, Python "
                f"{platform.python_version()}")
    parts = [
        "# Noisy-row detection quality",
        f"Command: `{args.command}`",
        f"Tasks: {', '.join(tasks)}. Noise: {', '.join(_present(rows, 'noise', NOISE_KINDS))} "
        f"at rates {', '.join(map(str, rates))}; seeds {', '.join(map(str, seeds))}. "
        f"skval max_epochs={args.max_epochs or 'default (30)'}. Values are averaged over "
        "tasks, rates and seeds; the best method per column is in bold. Higher is better "
        "for both metrics; "
        "random is 0.5 AUROC.",
        f"Total run time: {wall / 60:.1f} min on {args.threads} thread(s) "
        f"({platform.processor() or platform.machine()}). {versions}.",
        "## Mean 2-means F1", aggregate_table(rows, "f1", methods),
        "## Mean AUROC", aggregate_table(rows, "auroc", methods),
        "## Per task (F1 / AUROC, mean over rates and seeds)", detail_table(rows, methods),
        "## Mean seconds per fit", seconds_table(rows, methods),
        "Methods: see the docstring of `benchmarks/quality.py`. \"(reimpl.)\" marks methods "
        "implemented in the script from their paper.",
    ]
    return "\n\n".join(parts) + "\n"


# ----------------------------------------------------------------------------- CLI

def _choose(names, available, what):
    if names is None:
        return list(available)
    chosen = [s.strip() for s in names.split(",") if s.strip()]
    unknown = [c for c in chosen if c not in available]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)}; choose from {', '.join(available)}")
    return chosen


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{len(QUICK_TASKS)} tasks, 1 seed, rate 0.2, {QUICK_EPOCHS} epochs")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default 3, quick 1)")
    parser.add_argument("--methods", default=None, help=f"comma list of {', '.join(METHODS)}")
    parser.add_argument("--tasks", default=None, help=f"comma list of {', '.join(TASKS)}")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--n-train", type=int, default=None,
                        help=f"training rows of the generated tasks (default {GENERATED_SPLIT[0]}), "
                             "to check the values at the batch sizes of larger data")
    parser.add_argument("--rates", default=None,
                        help=f"comma list of noise rates (default {','.join(map(str, RATES))})")
    parser.add_argument("--threads", type=int, default=1, help="torch / BLAS threads (default 1)")
    parser.add_argument("--skval-params", type=json.loads, default={},
                        help="JSON object of extra skval parameters, to compare variants, "
                             "e.g. '{\"batch_size\": 128}'")
    args = parser.parse_args(argv)
    args.command = " ".join(["python", "benchmarks/quality.py", *map(shlex.quote, argv)])
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    methods = _choose(args.methods, METHODS, "methods")
    tasks = _choose(args.tasks or (",".join(QUICK_TASKS) if args.quick else None), TASKS, "tasks")
    seeds = range(args.seeds if args.seeds is not None else (1 if args.quick else 3))
    rates = (0.2,) if args.quick else RATES
    if args.rates:
        rates = tuple(float(r) for r in args.rates.split(","))
    if args.n_train:
        global N_GENERATED, GENERATED_SPLIT
        GENERATED_SPLIT = (args.n_train, GENERATED_SPLIT[1])
        N_GENERATED = max(N_GENERATED, sum(GENERATED_SPLIT) + 1000)
    args.max_epochs = QUICK_EPOCHS if args.quick else None
    args.out.mkdir(parents=True, exist_ok=True)

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    start = time.perf_counter()
    with threadpool_limits(args.threads):
        rows = run_all([TASKS[t] for t in tasks], seeds, rates, methods, args.max_epochs,
                       args.skval_params, args.out / "quality.csv")
    text = report(rows, args, methods, time.perf_counter() - start)
    (args.out / "quality.md").write_text(text)
    print(text)
    return rows


if __name__ == "__main__":
    main()
