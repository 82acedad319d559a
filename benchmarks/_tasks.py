"""The benchmarks' data: the quality tasks, their splits, and the speed benchmark's data.

Quality tasks are small bundled datasets (split 70 / 10 / 20 % into train / validation /
test) and generated ones (1000 / 100 / the rest), standardised on the training rows.
:class:`Problem` is what a valuation method sees: one noisy training set and the clean
validation split. The speed benchmark fits synthetic data of 20 features, saved once to
``.npy`` files that each fitting process loads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from sklearn import datasets
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

CLF, REG = "classification", "regression"
NOISE_KINDS = ("label", "feature", "mixed")
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

    Bundled datasets ignore both arguments; generated ones draw ``n_rows`` rows with
    ``seed``.
    """
    name: str
    kind: str
    load: Callable[[int, int], tuple]
    generated: bool


def _bundled(loader):
    return lambda seed, n_rows: loader(return_X_y=True)


def _generated(make):
    return lambda seed, n_rows: make(n_rows, seed)


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
    """
    n_generated: int = 1600
    generated: tuple = (1000, 100)
    small: tuple = (0.7, 0.1)

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


def split_task(task, seed, sizes=SplitSizes()):
    """Train / validation / test split, standardised on the training rows.

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
    if task.generated:
        n_train, n_val = sizes.generated
    else:
        n_train, n_val = (round(n * f) for f in sizes.small)
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
