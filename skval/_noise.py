"""Noise injection for the benchmarks of data values (see :mod:`skval.evaluation`).

Private; users import :func:`inject_noise` from ``skval.evaluation``, which
describes the semantics (those of the OpenDataVal benchmark).
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["inject_noise"]

_KINDS = ("label", "feature", "mixed", "permute", "gross", "outlier")
# Gross target errors move a target by this many standard deviations of the targets;
# feature outliers move a cell by as many of its column's.
GROSS_SHIFT = (5.0, 10.0)
# Feature outliers: the share of a row's cells moved (at least one cell per row).
OUTLIER_CELLS = 0.2
_TASKS = ("classification", "regression")


def inject_noise(X, y, *, kind="label", rate=0.2, task="classification", random_state=None):
    """Corrupt a copy of ``(X, y)`` and return it with the mask of corrupted rows.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Features (left untouched by label noise).
    y : array-like of shape (n_samples,)
        Targets.
    kind : {"label", "feature", "mixed", "permute", "gross", "outlier"}, default="label"
        Which noise to inject (see :mod:`skval.evaluation`). ``"permute"``:
        the targets of ``round(n * rate)`` random rows are permuted among
        themselves, which keeps every class's count; only the rows whose target
        changed are marked noisy. ``"gross"`` (regression only): each target of
        ``round(n * rate)`` rows moved by 5 to 10 standard deviations of the
        targets, up or down at random (a wrong unit or a typo). ``"outlier"``:
        in each of ``round(n * rate)`` rows, a random fifth of the cells (at least
        one) moved by 5 to 10 standard deviations of their column, up or down at
        random (a sparse feature corruption, unlike ``"feature"``'s dense noise).
    rate : float in [0, 1], default=0.2
        Fraction of rows to corrupt; ``round(n * rate)`` rows are corrupted.
    task : {"classification", "regression"}, default="classification"
        How label noise is made: another class, or another row's target.
    random_state : int, RandomState instance or None, default=None
        Seeds the choice of rows and the noise.

    Returns
    -------
    X_noisy : ndarray of shape (n_samples, n_features)
        A float copy of ``X``, with feature noise where asked.
    y_noisy : ndarray of shape (n_samples,)
        A copy of ``y``, with label noise where asked (float64 for ``"gross"``).
    noisy : ndarray of bool, shape (n_samples,)
        True for the corrupted rows.

    Examples
    --------
    >>> import numpy as np
    >>> from skval.evaluation import inject_noise
    >>> X, y = np.zeros((10, 2)), np.arange(10) % 2
    >>> _, y_noisy, noisy = inject_noise(X, y, rate=0.3, random_state=0)
    >>> int(noisy.sum()), bool((y_noisy != y)[noisy].all())
    (3, True)
    """
    X_noisy, y_noisy = _checked_copies(X, y, kind, task, rate)
    rng = check_random_state(random_state)
    rows = rng.permutation(len(y_noisy))[:int(round(len(y_noisy) * rate))]
    if kind == "permute":
        return _permute_targets(X_noisy, y_noisy, rows, rng)
    noisy = np.isin(np.arange(len(y_noisy)), rows)
    if kind == "gross":
        return X_noisy, _move_targets(y_noisy, rows, rng), noisy
    if kind == "outlier":
        _move_cells(X_noisy, rows, rng)
        return X_noisy, y_noisy, noisy
    split = {"label": len(rows), "feature": 0}.get(kind, len(rows) // 2)  # mixed: half each
    if split:
        _corrupt_labels(y_noisy, rows[:split], task, rng)
    if split < len(rows):
        _add_feature_noise(X_noisy, rows[split:], rng)
    return X_noisy, y_noisy, noisy


def _checked_copies(X, y, kind, task, rate):
    """Float copies of ``X`` and a copy of ``y``, after checking the arguments."""
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}.")
    if task not in _TASKS:
        raise ValueError(f"task must be one of {_TASKS}, got {task!r}.")
    if kind == "gross" and task != "regression":
        raise ValueError(f"kind='gross' moves numeric targets: it needs task='regression', "
                         f"got task={task!r}.")
    if not 0 <= rate <= 1:
        raise ValueError(f"rate must be in [0, 1], got {rate!r}.")
    X_noisy = np.array(X, dtype=np.float64)  # always a copy
    y_noisy = np.array(y)
    if X_noisy.ndim != 2 or y_noisy.ndim != 1 or len(X_noisy) != len(y_noisy):
        raise ValueError(
            f"X must be 2-D and y 1-D with as many rows, got shapes {X_noisy.shape} and {y_noisy.shape}."
        )
    return X_noisy, y_noisy


def _corrupt_labels(y_noisy, rows, task, rng):
    """In place: another class for each of ``rows``, or another row's target (regression)."""
    if task == "classification":
        classes = np.unique(y_noisy)
        if len(classes) < 2:
            raise ValueError("label noise needs at least 2 classes in y.")
        codes = np.searchsorted(classes, y_noisy[rows])
        shift = rng.randint(1, len(classes), size=len(rows))  # never 0: a different class
        y_noisy[rows] = classes[(codes + shift) % len(classes)]
    else:
        # another row's target: a random row other than the row itself (read before any write)
        others = rng.randint(0, len(y_noisy) - 1, size=len(rows))
        y_noisy[rows] = y_noisy[others + (others >= rows)]


def _column_scale(X):
    """Each column's standard deviation (1 for a constant column)."""
    scale = X.std(axis=0)
    return np.where(scale > 0, scale, 1.0)


def _far_shifts(rng, shape):
    """Shifts of 5 to 10 (``GROSS_SHIFT``), up or down at random, of ``shape``."""
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(*GROSS_SHIFT, shape)


def _add_feature_noise(X_noisy, rows, rng):
    """In place: Gaussian noise of each column's own scale on ``rows``."""
    X_noisy[rows] += rng.normal(size=(len(rows), X_noisy.shape[1])) * _column_scale(X_noisy)


def _permute_targets(X_noisy, y_noisy, rows, rng):
    """Permute the targets of ``rows`` among themselves; the mask of the rows that changed."""
    original = y_noisy.copy()
    y_noisy[rows] = original[rng.permutation(rows)]
    return X_noisy, y_noisy, original != y_noisy


def _move_targets(y_noisy, rows, rng):
    """A float copy of ``y_noisy``, the targets of ``rows`` moved by 5-10 standard deviations."""
    moved = y_noisy.astype(np.float64)
    rows = np.sort(rows)  # the rows in order: the draws below pair with them as a mask would
    moved[rows] += _far_shifts(rng, len(rows)) * moved.std()
    return moved


def _move_cells(X_noisy, rows, rng):
    """In place: a random ``OUTLIER_CELLS`` of each of ``rows``' cells (at least one) moved
    by 5 to 10 standard deviations of its column, up or down at random."""
    scale = _column_scale(X_noisy)
    rows = np.sort(rows)
    moved = rng.uniform(size=(len(rows), X_noisy.shape[1])) < OUTLIER_CELLS
    moved[np.arange(len(rows)), rng.randint(0, X_noisy.shape[1], size=len(rows))] = True
    X_noisy[rows] += np.where(moved, _far_shifts(rng, moved.shape) * scale, 0.0)
