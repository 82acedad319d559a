"""How good are data values? Noise injection and detection metrics (numpy core).

The noise follows the semantics of the OpenDataVal benchmark that the LossVal paper
used, so figures are comparable:

- label noise: ``round(n * rate)`` rows get a different class (classification) or
  the target of another row (regression);
- feature noise: ``N(0, 1)`` is added to every standardised feature of
  ``round(n * rate)`` rows (i.e. noise with each feature's standard deviation);
- mixed: half of the noisy rows get label noise, the other half feature noise,
  on disjoint rows;
- permute: the targets of ``round(n * rate)`` random rows are permuted among
  themselves (label noise that keeps every class's count, so a rare class is not
  swamped); the rows whose target changed are the noisy ones;
- gross (regression): the targets of ``round(n * rate)`` rows are moved by 5 to 10
  standard deviations of the targets, up or down at random (errors of the kind a
  wrong unit or a typo makes);
- outlier: in each of ``round(n * rate)`` rows a random fifth of the cells (at
  least one) is moved by 5 to 10 standard deviations of its column, up or down at
  random (sparse feature corruption: a wrong unit, a sentinel, a typo).

Every metric takes the values and the boolean mask of noisy rows; low values are
expected to mark noisy rows.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.metrics import roc_auc_score
from sklearn.utils import check_random_state

from ._noise import inject_noise
from ._selection import check_values_mask, lowest, two_means_split, value_order

__all__ = [
    "inject_noise",
    "kmeans_f1",
    "auroc",
    "precision_at_k",
    "detection_scores",
    "discovery_curve",
    "removal_curve",
    "addition_curve",
    "selection_curve",
]

def kmeans_f1(values, noisy):
    """F1 of predicting the low cluster of an exact 1-D 2-means as noisy.

    Parameters
    ----------
    values : array-like of shape (n_samples,)
        Data values; low means noisy.
    noisy : array-like of bool, shape (n_samples,)
        True for the rows known to be noisy.

    Returns
    -------
    f1 : float
        F1 score of the predicted noisy rows against ``noisy``.

    Examples
    --------
    >>> from skval.evaluation import kmeans_f1
    >>> kmeans_f1([0.1, 0.2, 0.9, 1.0, 1.1], [True, True, False, False, False])
    1.0
    """
    values, noisy = check_values_mask(values, noisy)
    predicted = values <= two_means_split(values)
    tp = np.sum(predicted & noisy)
    if tp == 0:
        return 0.0
    precision = tp / predicted.sum()
    recall = tp / noisy.sum()
    return float(2 * precision * recall / (precision + recall))


def auroc(values, noisy):
    """Area under the ROC curve of ``-values`` as a score for being noisy.

    Parameters
    ----------
    values : array-like of shape (n_samples,)
        Data values; low means noisy.
    noisy : array-like of bool, shape (n_samples,)
        True for the noisy rows; needs both noisy and clean rows.

    Returns
    -------
    auroc : float
        1.0 when every noisy row has a lower value than every clean row, 0.5 at random.
    """
    values, noisy = check_values_mask(values, noisy)
    if noisy.all() or not noisy.any():
        raise ValueError("auroc needs both noisy and clean rows.")
    return float(roc_auc_score(noisy, -values))


def precision_at_k(values, noisy, k=None):
    """Fraction of noisy rows among the ``k`` lowest values.

    Parameters
    ----------
    values : array-like of shape (n_samples,)
        Data values; low means noisy.
    noisy : array-like of bool, shape (n_samples,)
        True for the noisy rows.
    k : int or None, default=None
        How many rows to inspect; ``None`` uses the number of noisy rows.

    Returns
    -------
    precision : float
        Share of noisy rows among the ``k`` lowest-valued rows.
    """
    values, noisy = check_values_mask(values, noisy)
    k = int(noisy.sum()) if k is None else int(k)
    if not 1 <= k <= len(values):
        raise ValueError(f"k must be in [1, {len(values)}], got {k}.")
    return float(noisy[lowest(values, k)].mean())


def detection_scores(values, noisy):
    """The three detection metrics at once.

    Parameters
    ----------
    values : array-like of shape (n_samples,)
        Data values; low means noisy.
    noisy : array-like of bool, shape (n_samples,)
        True for the noisy rows.

    Returns
    -------
    scores : dict
        ``{"f1": kmeans_f1, "auroc": auroc, "precision_at_k": precision_at_k}``.
    """
    return {
        "f1": kmeans_f1(values, noisy),
        "auroc": auroc(values, noisy),
        "precision_at_k": precision_at_k(values, noisy),
    }


def discovery_curve(values, noisy):
    """Corrupted-sample discovery: noisy rows found while inspecting rows from the lowest value up.

    Parameters
    ----------
    values : array-like of shape (n_samples,)
        Data values; low means noisy.
    noisy : array-like of bool, shape (n_samples,)
        True for the noisy rows.

    Returns
    -------
    inspected : ndarray of shape (n_samples + 1,)
        Fraction of rows inspected, from 0 to 1.
    found : ndarray of shape (n_samples + 1,)
        Fraction of the noisy rows found among them.
    """
    values, noisy = check_values_mask(values, noisy)
    if not noisy.any():
        raise ValueError("discovery_curve needs at least one noisy row.")
    order = value_order(values)
    found = np.concatenate([[0], np.cumsum(noisy[order])]) / noisy.sum()
    inspected = np.arange(len(values) + 1) / len(values)
    return inspected, found


def removal_curve(estimator, X, y, values, X_test, y_test, *, remove="high",
                  fractions=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5), scoring=None):
    """Test score of a model refitted after removing the highest- or lowest-valued rows.

    Removing the most valuable rows should hurt the model fast; removing the least
    valuable should not (it may even help, when those rows are noisy).

    Parameters
    ----------
    estimator : scikit-learn estimator
        Cloned and refitted for every fraction.
    X, y : array-like
        The training data the values belong to.
    values : array-like of shape (n_samples,)
        Data values of the training rows.
    X_test, y_test : array-like
        Data the refitted models are scored on.
    remove : {"high", "low"}, default="high"
        Remove the highest-valued rows first, or the lowest-valued.
    fractions : sequence of float in [0, 1), default=(0.0, 0.1, ..., 0.5)
        Fractions of the training rows to remove.
    scoring : callable or None, default=None
        ``scoring(fitted_estimator, X_test, y_test)``; ``None`` uses ``estimator.score``.

    Returns
    -------
    fractions : ndarray of shape (n_fractions,)
        The fractions of training rows removed.
    scores : ndarray of shape (n_fractions,)
        Test score of the model refitted without them, one per fraction.
    """
    if remove not in ("high", "low"):
        raise ValueError(f"remove must be 'high' or 'low', got {remove!r}.")
    values = _check_curve_inputs(X, y, values)
    fractions = _check_fractions(fractions, "fractions", low_open=False, high_open=True)
    order = value_order(values, remove)
    subsets = [order[int(round(frac * len(values))):] for frac in fractions]
    return fractions, _subset_scores(estimator, X, y, subsets, X_test, y_test, scoring)


def addition_curve(estimator, X, y, values, X_test, y_test, *, add="low",
                   fractions=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0), stratify=None,
                   scoring=None):
    """Test score of a model fitted on only the lowest- (or highest-) valued fraction of the rows.

    Adding the least valuable rows first, the score should stay low for long (they
    are the noisy ones); adding the most valuable first, it should rise fast.

    Parameters
    ----------
    estimator : scikit-learn estimator
        Cloned and refitted for every fraction.
    X, y : array-like
        The training data the values belong to.
    values : array-like of shape (n_samples,)
        Data values of the training rows.
    X_test, y_test : array-like
        Data the refitted models are scored on.
    add : {"low", "high"}, default="low"
        Train on the lowest-valued rows, or on the highest-valued.
    fractions : sequence of float in (0, 1], default=(0.1, 0.2, ..., 1.0)
        Fractions of the training rows to train on.
    stratify : array-like of shape (n_samples,) or None, default=None
        Group labels (e.g. ``y``): each group gives the same fraction of its own
        rows, in order of value. ``None``: one ranking of all rows.
    scoring : callable or None, default=None
        ``scoring(fitted_estimator, X_test, y_test)``; ``None`` uses ``estimator.score``.

    Returns
    -------
    fractions : ndarray of shape (n_fractions,)
        The fractions of training rows trained on.
    scores : ndarray of shape (n_fractions,)
        Test score of the model fitted on them; NaN where a classifier's rows held a
        single class (nothing to fit).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skval.evaluation import addition_curve
    >>> X = np.arange(20.0).reshape(-1, 1)
    >>> y = (np.arange(20) >= 10).astype(int)
    >>> values = np.where(np.arange(20) % 2 == 0, 1.0, 0.0)
    >>> addition_curve(LogisticRegression(), X, y, values, X, y, fractions=[0.5, 1.0])[1]
    array([1., 1.])
    """
    if add not in ("high", "low"):
        raise ValueError(f"add must be 'high' or 'low', got {add!r}.")
    values = _check_curve_inputs(X, y, values)
    fractions = _check_fractions(fractions, "fractions", low_open=True, high_open=False)
    groups = _check_groups(stratify, len(values))
    subsets = [_first_rows(values, frac, add, groups) for frac in fractions]
    return fractions, _subset_scores(estimator, X, y, subsets, X_test, y_test, scoring)


def selection_curve(estimator, X, y, values, X_test, y_test, *,
                    fractions=(0.2, 0.4, 0.6, 0.8, 1.0), stratify=None, n_random=5,
                    random_state=None, scoring=None):
    """Train on the highest-valued fraction of the rows, against random fractions of the same size.

    The use of values for selecting data: with ``values`` computed against a
    reference set from the target population (``fit(X, y, X_val=..., y_val=...)``),
    the rows most like the target come first. The score at fraction 1 is the model
    trained on all rows.

    Parameters
    ----------
    estimator : scikit-learn estimator
        Cloned and refitted for every fraction and draw.
    X, y : array-like
        The pool the values belong to.
    values : array-like of shape (n_samples,)
        Data values of the pool's rows.
    X_test, y_test : array-like
        Test data from the target population.
    fractions : sequence of float in (0, 1], default=(0.2, 0.4, 0.6, 0.8, 1.0)
        Fractions of the pool to train on.
    stratify : array-like of shape (n_samples,) or None, default=None
        Group labels (e.g. ``y`` of a classification): each group gives the same
        fraction of its own rows, its highest-valued or at random, so that a class
        whose rows get lower values is not left out. ``None``: one ranking of all rows.
    n_random : int, default=5
        Random subsets drawn per fraction; their scores are averaged.
    random_state : int, RandomState instance or None, default=None
        Seeds the random subsets.
    scoring : callable or None, default=None
        ``scoring(fitted_estimator, X_test, y_test)``; ``None`` uses ``estimator.score``.

    Returns
    -------
    fractions : ndarray of shape (n_fractions,)
        The fractions of the pool trained on.
    scores_by_value : ndarray of shape (n_fractions,)
        Test score when training on the highest-valued rows.
    scores_random : ndarray of shape (n_fractions,)
        Mean test score over ``n_random`` random subsets of the same size.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skval.evaluation import selection_curve
    >>> X = np.arange(40.0).reshape(-1, 1)
    >>> y = (np.arange(40) % 20 >= 10).astype(int)       # rows 20-39 contradict rows 0-19
    >>> values = np.where(np.arange(40) < 20, 1.0, 0.0)  # ...and get low values
    >>> fractions, by_value, random = selection_curve(
    ...     LogisticRegression(), X, y, values, X[:20], y[:20], fractions=[0.5], random_state=0)
    >>> float(by_value[0]) > float(random[0])
    True
    """
    if not (isinstance(n_random, numbers.Integral) and n_random >= 1):
        raise ValueError(f"n_random must be an int >= 1, got {n_random!r}.")
    fractions, by_value = addition_curve(estimator, X, y, values, X_test, y_test, add="high",
                                         fractions=fractions, stratify=stratify, scoring=scoring)
    groups = _check_groups(stratify, len(values))
    rng = check_random_state(random_state)
    random_scores = []
    for frac in fractions:
        subsets = [_first_rows(rng.rand(len(values)), frac, "low", groups) for _ in range(n_random)]
        random_scores.append(np.nanmean(
            _subset_scores(estimator, X, y, subsets, X_test, y_test, scoring)))
    return fractions, by_value, np.asarray(random_scores)


def _check_curve_inputs(X, y, values):
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) != len(X) or len(X) != len(y):
        raise ValueError("values, X and y must have the same number of rows.")
    return values


def _check_fractions(fractions, name, *, low_open, high_open):
    fractions = np.asarray(fractions, dtype=np.float64)
    too_low = fractions <= 0 if low_open else fractions < 0
    too_high = fractions >= 1 if high_open else fractions > 1
    if fractions.ndim != 1 or np.any(too_low | too_high):
        interval = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"
        raise ValueError(f"{name} must lie in {interval}.")
    return fractions


def _at_least_one(fraction, n):
    return max(1, int(round(fraction * n)))


def _check_groups(stratify, n):
    if stratify is None:
        return np.zeros(n, int)
    groups = np.asarray(stratify)
    if groups.shape != (n,):
        raise ValueError(f"stratify must have shape ({n},), got {groups.shape}.")
    return groups


def _first_rows(values, fraction, first, groups):
    """In each group, its ``fraction`` of rows (at least one) with the lowest or highest values."""
    chosen = []
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        order = members[value_order(values[members], first)]
        chosen.append(order[:_at_least_one(fraction, len(members))])
    return np.concatenate(chosen)


def _take(data, rows):
    return data.iloc[rows] if hasattr(data, "iloc") else np.asarray(data)[rows]


def _subset_scores(estimator, X, y, subsets, X_test, y_test, scoring):
    """Test score of a clone of ``estimator`` fitted on each subset of rows (sorted)."""
    scores = []
    for rows in subsets:
        rows = np.sort(rows)
        y_keep = _take(y, rows)
        if is_classifier(estimator) and len(np.unique(np.asarray(y_keep))) < 2:
            scores.append(np.nan)
            continue
        model = clone(estimator).fit(_take(X, rows), y_keep)
        scores.append(scoring(model, X_test, y_test) if scoring else model.score(X_test, y_test))
    return np.asarray(scores, dtype=np.float64)
