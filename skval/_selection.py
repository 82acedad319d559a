"""Which rows the values point at: the selection rules that evaluation, the cleaner,
``CleanedEstimator`` and the command line share.

A leaf module: it imports nothing from the rest of skval, so every module may use it.
Ties between equal values always go to the earlier row (stable sorts), so a selection
does not depend on the sorting algorithm.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils.multiclass import type_of_target

__all__ = [
    "SOURCES",
    "cap_per_group",
    "check_cut",
    "check_share",
    "check_values_mask",
    "class_groups",
    "evidence_source",
    "lowest",
    "lowest_mask",
    "removal_candidates",
    "robust_z",
    "rows_to_remove",
    "size_factors",
    "targets_are_classes",
    "two_means_split",
    "value_order",
]


# ----------------------------------------------------------------------------- checks

def check_values_mask(values, noisy):
    """Check values and a mask of noisy rows, one of each per row.

    Parameters
    ----------
    values : array-like of shape (n_samples,)
        Data values; must be finite.
    noisy : array-like of bool, shape (n_samples,)
        True for the noisy rows.

    Returns
    -------
    values : ndarray of float64, shape (n_samples,)
        The values as an array.
    noisy : ndarray of bool, shape (n_samples,)
        The mask as an array.
    """
    values = np.asarray(values, dtype=np.float64)
    noisy = np.asarray(noisy)
    if values.ndim != 1 or noisy.shape != values.shape:
        raise ValueError(
            f"values and noisy must be 1-D of the same length, got shapes {values.shape} and {noisy.shape}."
        )
    if noisy.dtype != bool:
        raise TypeError(f"noisy must be a boolean mask, got dtype {noisy.dtype}.")
    if not np.isfinite(values).all():
        raise ValueError("values contain NaN or infinity.")
    return values, noisy


def check_cut(cut, n_samples):
    """Raise unless ``cut`` is "kmeans", a float in (0, 1) or an int in [0, n_samples).

    Parameters
    ----------
    cut : object
        The cut to check.
    n_samples : int
        Number of rows the cut applies to.
    """
    if isinstance(cut, str):
        if cut != "kmeans":
            raise ValueError(f"cut must be 'kmeans', a float in (0, 1) or an int >= 0, got {cut!r}.")
        return
    if isinstance(cut, (bool, np.bool_)) or not isinstance(cut, numbers.Real):
        raise TypeError(f"cut must be 'kmeans', a float in (0, 1) or an int >= 0, got {cut!r}.")
    if isinstance(cut, numbers.Integral):
        if not 0 <= cut < n_samples:
            raise ValueError(f"cut as a count of rows must be in [0, {n_samples}), got {cut}.")
    elif not 0 < cut < 1:
        raise ValueError(f"cut as a fraction of rows must be in (0, 1), got {cut!r}.")


def check_share(max_class_share):
    """Raise unless ``max_class_share`` is a real number in [0, 1).

    Parameters
    ----------
    max_class_share : object
        The share to check.
    """
    if isinstance(max_class_share, (bool, np.bool_)) or not isinstance(max_class_share, numbers.Real):
        raise TypeError(f"max_class_share must be a float in [0, 1), got {max_class_share!r}.")
    if not 0 <= max_class_share < 1:
        raise ValueError(f"max_class_share must be in [0, 1), got {max_class_share!r}.")


# ----------------------------------------------------------------------------- orders

def value_order(values, first="low"):
    """Row numbers sorted by value, lowest first (``first="low"``) or highest first.

    Parameters
    ----------
    values : ndarray of shape (n_samples,)
        Data values.
    first : {"low", "high"}, default="low"
        Which end comes first.

    Returns
    -------
    order : ndarray of int, shape (n_samples,)
        Row numbers; equal values keep their row order (reversed, highest first).
    """
    order = np.argsort(values, kind="stable")
    return order[::-1] if first == "high" else order


def lowest(values, k):
    """Row numbers of the ``k`` lowest values, lowest first (ties: earlier rows first).

    Parameters
    ----------
    values : ndarray of shape (n_samples,)
        Data values.
    k : int
        How many rows; all of them when ``k >= n_samples``.

    Returns
    -------
    rows : ndarray of int, shape (min(k, n_samples),)
        Their row numbers.
    """
    return value_order(values, "low")[:k]


def lowest_mask(values, k):
    """Mask of the ``k`` rows with the lowest values (ties: earlier rows first).

    Parameters
    ----------
    values : ndarray of shape (n_samples,)
        Data values.
    k : int
        How many rows to mark.

    Returns
    -------
    mask : ndarray of bool, shape (n_samples,)
        True for those rows.
    """
    mask = np.zeros(len(values), bool)
    mask[lowest(values, k)] = True
    return mask


def two_means_split(values):
    """Threshold of the exact 1-D 2-means clustering: values <= it form the low cluster.

    Parameters
    ----------
    values : ndarray of shape (n_samples,)
        Data values.

    Returns
    -------
    threshold : float
        The largest value of the low cluster; the largest value overall when
        there is one cluster only (fewer than 2 rows, or all values equal).
    """
    v = np.sort(values)
    n = len(v)
    if n < 2 or v[0] == v[-1]:
        return v[-1]
    # the sum of squared errors of every split point at once, from running sums
    csum = np.cumsum(v)
    csum2 = np.cumsum(v * v)
    k = np.arange(1, n)  # size of the low cluster
    low_sse = csum2[:-1] - csum[:-1] ** 2 / k
    high_sum = csum[-1] - csum[:-1]
    high_sse = (csum2[-1] - csum2[:-1]) - high_sum**2 / (n - k)
    sse = low_sse + high_sse
    # splits are only allowed between distinct values
    sse[v[1:] == v[:-1]] = np.inf
    return v[np.argmin(sse)]


# ----------------------------------------------------------------------------- groups and caps

def targets_are_classes(y):
    """Whether ``y`` holds class labels: binary, or multiclass and not floats.

    Parameters
    ----------
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets.

    Returns
    -------
    classes : bool
        True for class labels.
    """
    kind = type_of_target(y, input_name="y")
    if kind == "binary":
        return True
    return kind == "multiclass" and not np.issubdtype(np.asarray(y).dtype, np.floating)


def class_groups(y, by_class):
    """The groups of the cap per class: the classes of ``y``, or one group of all rows.

    Parameters
    ----------
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets; with several outputs, the first one gives the classes.
    by_class : bool
        Whether the rows are grouped by class (a classification) or all in one.

    Returns
    -------
    groups : ndarray of shape (n_samples,)
        A group label per row.
    """
    y = np.asarray(y)
    return y.reshape(len(y), -1)[:, 0] if by_class else np.zeros(len(y), int)


def size_factors(groups):
    """Per group: the square of its size over the average group size, at most 1.

    Parameters
    ----------
    groups : ndarray of shape (n_samples,)
        A group label per row.

    Returns
    -------
    factors : dict
        ``{group label: factor in (0, 1]}``.
    """
    labels, sizes = np.unique(groups, return_counts=True)
    # a rare class gets low values for being rare, not for being wrong: it is spared
    return dict(zip(labels, np.minimum(1.0, sizes / sizes.mean()) ** 2))


def cap_per_group(values, candidates, groups, max_share):
    """Keep, in each group, only its lowest-valued candidates, at most
    ``floor(max_share * size_factor * size)`` of them.

    Parameters
    ----------
    values : ndarray of shape (n_samples,)
        Data values.
    candidates : ndarray of bool, shape (n_samples,)
        The rows that may be removed.
    groups : ndarray of shape (n_samples,)
        A group label per row.
    max_share : float in [0, 1)
        Most of a group of at least average size that is removed.

    Returns
    -------
    removed : ndarray of bool, shape (n_samples,)
        The candidates left after the cap.
    """
    removed = np.zeros(len(values), bool)
    for group, factor in size_factors(groups).items():
        members = groups == group
        limit = int(np.floor(max_share * factor * members.sum()))
        rows = np.flatnonzero(members & candidates)
        removed[rows[lowest(values[rows], limit)]] = True
    return removed


def removal_candidates(values, cut):
    """Mask of the rows that ``cut`` marks as harmful, before the cap per class.

    Parameters
    ----------
    values : ndarray of shape (n_samples,)
        Data values.
    cut : "kmeans", float in (0, 1) or int >= 0
        The low cluster of a 2-means split, the lowest fraction, or the lowest count.

    Returns
    -------
    candidates : ndarray of bool, shape (n_samples,)
        True for the candidates.
    """
    if isinstance(cut, str):  # "kmeans"
        threshold = two_means_split(values)
        if threshold >= values.max():  # one cluster only: all values equal
            return np.zeros(len(values), bool)
        return values <= threshold
    if isinstance(cut, numbers.Integral):
        return lowest_mask(values, int(cut))
    return lowest_mask(values, int(round(cut * len(values))))


def rows_to_remove(values, groups, cut="kmeans", max_class_share=0.5):
    """Mask of the rows to remove: the candidates of ``cut``, capped per group.

    Parameters
    ----------
    values : ndarray of shape (n_samples,)
        Data values.
    groups : ndarray of shape (n_samples,)
        A group label per row (see :func:`class_groups`).
    cut : "kmeans", float in (0, 1) or int >= 0, default="kmeans"
        Which rows are candidates (see :func:`removal_candidates`).
    max_class_share : float in [0, 1), default=0.5
        The cap (see :func:`cap_per_group`).

    Returns
    -------
    removed : ndarray of bool, shape (n_samples,)
        True for the rows to remove.
    """
    return cap_per_group(values, removal_candidates(values, cut), groups, max_class_share)


SOURCES = ("label", "feature", "none")


def robust_z(column, reference=None):
    """``(x - median) / (1.4826 * MAD)`` (the standard deviation when the MAD is 0, else 1).

    The median and the MAD are those of ``reference`` (default: ``column`` itself).
    """
    reference = column if reference is None else reference
    center = np.median(reference)
    scale = 1.4826 * np.median(np.abs(reference - center))
    if not scale > 0:
        scale = reference.std() if reference.std() > 0 else 1.0
    return (column - center) / scale


def evidence_source(evidence):
    """Per row, the side the evidence against it comes from, as an index into ``SOURCES``.

    ``"label"`` or ``"feature"``: the side on which the row lies further above
    that side's median, in robust standard deviations; ``"none"`` when it lies at
    or below the median on both sides.
    """
    z = np.column_stack([robust_z(evidence[:, 0]), robust_z(evidence[:, 1])])
    side = np.where(z[:, 0] >= z[:, 1], 0, 1)
    none = z.max(axis=1) <= 0
    return np.where(none, 2, side)
