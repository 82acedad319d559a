"""The veto: rows the valuer's own network vouches for, never removed whatever their values.

A low value says that a row's loss (or its features' OT cost) stayed high in the
training run; the veto asks the network trained in that run whether it shares the
doubt. It comes in two widths (``veto``):

``"doubt"`` (strict, for a cut nothing checks): a row is removed only where
the network doubts its label or its target. Classification: the given label
gets less probability than the mean over the rows of that label (confident
learning's per-class threshold) and less than the label's share of the rows
(a blind guess). Regression: the residual lies beyond 3 robust standard
deviations of the residuals and the target within the central 90 % of the
targets, and the row is not one the ``"agree"`` veto keeps. A low value the
network does not share (an unusual row it predicts right) is not removed:
dropping such rows lowered the refitted model where their values alone
decided (BENCHMARKS section 2).

``"agree"`` (wide, for candidates a cross-validation checks): only rows the
network confidently agrees with are kept. Classification: the network's most
probable class is the given label with at least the class's mean probability,
and the evidence against the row is not on its label side (``evidence_``: the
network can reproduce a wrong label it has memorised on small folds, while
the label side summed the disagreement over the whole run). Regression: the
prediction lies on the same side of the median target as the target, and the
target lies further out: a squared loss shrinks predictions toward the mean,
so a genuine extreme keeps a large residual that is shrinkage, not a wrong
target.

The wide veto does not keep a **gross** target (``checked_gross``): beyond 12
robust standard deviations of the targets of the rows the network predicts alike
(a target moved by many standard deviations, a wrong unit), or one of the gross
pairs below. Without this, gross errors, which fill the tails, were kept as genuine
extremes: with 10 % of the targets moved by 5-10 standard deviations,
``CleanedEstimator`` removed 0.6-1.0 % of the rows (BENCHMARKS section 2). The strict
veto, for a cut nothing checks, lets gross targets go **in pairs** (``paired_gross``:
judged against the rows outside the 2-means cut): as many above their predictions as
below. Removing errors of one sign shifts the errors that stay: a linear model's
intercept and slope follow them. On a heavy-tailed table the gross targets are
one-sided (a few genuine companies' market values far above those predicted alike;
swapped-in huge values): removing 9 of them, all swapped errors, cost a linear model
0.15 R^2 on one split, and a single genuine one 0.038. Gross noise, up and down,
comes in pairs: kept by the veto, a default cut under 20 % of such errors lowered
HistGradientBoosting by 0.10 R^2 and a linear model by 0.12 (BENCHMARKS section 2).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import is_classifier

from ._selection import evidence_source, robust_z, two_means_split

VETOES = ("doubt", "agree")
# A gross target (``gross_targets``): beyond this many robust standard deviations of the
# targets of the rows predicted alike, in bins of the predictions (as many as _GROSS_BINS,
# of at least _GROSS_BIN_ROWS rows). A normal target never is; on clean heavy-tailed tables
# 3 of 3,000 wages, 13 of 2,000 companies' market values (8 flagged 13 of the wages, with a
# tenth fewer of the gross errors of benchmarks/cleaning.py's *_gross tasks caught: 24 of
# 44 on diabetes at 12, 36 at 8).
GROSS_Z = 12.0
_GROSS_BINS = 20
_GROSS_BIN_ROWS = 30


def agrees_with_label(proba, labels):
    """Rows whose given label the network predicts, above its class's usual confidence.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
        The network's class probabilities for the training rows.
    labels : ndarray of int, shape (n_samples,)
        Each row's given label, as a column of ``proba``.

    Returns
    -------
    agree : ndarray of bool, shape (n_samples,)
        ``argmax == label`` and ``proba[label] >=`` the mean of ``proba[label]``
        over the rows of that label.
    """
    given, mean, _ = _given_label_stats(proba, labels)
    return (proba.argmax(axis=1) == labels) & (given >= mean[labels])


def agrees_with_target(prediction, y):
    """Rows whose target lies beyond their prediction, on the prediction's side of the median.

    Parameters
    ----------
    prediction : ndarray of shape (n_samples,) or (n_samples, n_targets)
        The network's predictions for the training rows.
    y : ndarray of shape (n_samples,) or (n_samples, n_targets)
        The given targets.

    Returns
    -------
    agree : ndarray of bool, shape (n_samples,)
        ``median <= prediction <= y`` or ``y <= prediction <= median``, for every
        target of the row.
    """
    y, prediction = _as_columns(y, prediction)
    median = np.median(y, axis=0)
    above = (median <= prediction) & (prediction <= y)
    below = (y <= prediction) & (prediction <= median)
    return (above | below).all(axis=1)


def gross_targets(prediction, y, z=GROSS_Z, trusted=None):
    """Rows with a target far outside those of the rows the network predicts alike.

    A genuine extreme lies among rows like it: the rows whose predictions are close
    to its own have targets of its kind (a house price's top 5 %, the top earners of
    a wage table, whatever their skew). A gross error (a target moved by many
    standard deviations, a wrong unit) does not: its target lies far beyond the
    targets of the rows predicted alike. The rows are cut into bins of the
    predictions (20, of at least 30 rows each; with fewer than 60 rows no row is
    gross); a row is gross when its target lies beyond ``z`` robust standard
    deviations (1.4826 MAD) of its bin's targets from their median. Its sign and
    its row's own value do not enter, so the gross rows are not a biased share of
    the errors. The guards of a checked cut (the wide veto, the tail floor) do not
    keep them; the strict veto, for a cut nothing checks, lets them go in pairs
    (``paired_gross``).

    Parameters
    ----------
    prediction, y
        As in ``agrees_with_target``.
    z : float, default=12.0
        Robust standard deviations of the bin's targets.
    trusted : ndarray of bool, shape (n_samples,) or None, default=None
        The rows the bins are made of, whose targets set each bin's median and
        spread; every row is judged against the bin its prediction falls in.
        ``None``: every row. Gross errors the network has partly followed crowd the
        outer bins of its predictions and widen their spread, so that they hide one
        another; the rows outside the cut do not (see ``paired_gross``).

    Returns
    -------
    gross : ndarray of bool, shape (n_samples,)
        For some target of the row.
    """
    y, prediction = _as_columns(y, prediction)
    reference = np.arange(len(y)) if trusted is None else np.flatnonzero(trusted)
    n_bins = min(_GROSS_BINS, len(reference) // _GROSS_BIN_ROWS)
    gross = np.zeros(len(y), bool)
    if n_bins < 2:  # too few rows to tell the rows predicted alike from the rest
        return gross
    for target, predicted in zip(y.T, prediction.T):
        for rows, bin_reference in _prediction_bins(predicted, reference, n_bins, trusted):
            gross[rows] |= np.abs(robust_z(target[rows], target[bin_reference])) > z
    return gross


def _prediction_bins(predicted, reference, n_bins, trusted):
    """``(rows, reference rows)`` of each bin: the reference rows cut into ``n_bins`` of
    as many rows by their predictions; without ``trusted`` they are every row, each bin
    judges its own rows, else every row is judged in the bin its prediction falls in."""
    groups = np.array_split(reference[np.argsort(predicted[reference], kind="stable")], n_bins)
    if trusted is None:
        return [(group, group) for group in groups]
    upper = np.array([predicted[group[-1]] for group in groups[:-1]])
    bin_of = np.searchsorted(upper, predicted, side="left")
    return [(np.flatnonzero(bin_of == i), group) for i, group in enumerate(groups)]


def paired_gross(values, candidates, prediction, y):
    """Of the gross ``candidates``, as many with targets above their predictions as below.

    The lowest-valued of each sign first: ``k`` rows of each, ``k`` the smaller count.
    A row's sign is that of its residual on the target where it lies furthest out
    (in robust standard deviations of that target's residuals). Gross is judged
    against the rows predicted alike that lie outside the 2-means cut of ``values``
    (``gross_targets``' ``trusted``): errors the network partly followed crowd the
    outer bins of its predictions and hide one another there. Under 20 % of gross
    errors the default cut's pairs judged against every row gained
    HistGradientBoosting R^2 +0.51 / +0.79 (dev / confirm), against these rows +0.87
    / +0.85 (BENCHMARKS section 2).

    Parameters
    ----------
    values : ndarray of shape (n_samples,)
        The rows' values.
    candidates : ndarray of bool, shape (n_samples,)
        Rows that may go.
    prediction, y
        As in ``gross_targets``.

    Returns
    -------
    paired : ndarray of bool, shape (n_samples,)
        Gross rows of ``candidates``, as many of each sign.
    """
    y, prediction = _as_columns(y, prediction)
    trusted = values > two_means_split(values)
    rows = candidates & gross_targets(prediction, y, trusted=trusted)
    scaled = np.column_stack([robust_z(column) for column in (y - prediction).T])
    sign = scaled[np.arange(len(y)), np.abs(scaled).argmax(axis=1)] > 0
    above, below = np.flatnonzero(rows & sign), np.flatnonzero(rows & ~sign)
    k = min(len(above), len(below))
    paired = np.zeros(len(y), bool)
    for side in (above, below):
        paired[side[np.argsort(values[side], kind="stable")[:k]]] = True
    return paired


def checked_gross(prediction, y, values=None, pairs=None):
    """The gross targets a checked cut does not keep (the wide veto, the tail floor).

    ``gross_targets`` against every row predicted alike and, given ``values``, the
    pairs (``paired_gross``) of those judged against the rows outside the 2-means
    cut of ``values``: errors the network followed hide one another from the first.

    Parameters
    ----------
    prediction, y
        As in ``gross_targets``.
    values : ndarray of shape (n_samples,) or None, default=None
        The rows' values; ``None``: ``gross_targets`` alone.
    pairs : ndarray of bool, shape (n_samples,) or None, default=None
        ``every_row_pairs(values, prediction, y)``, if already computed.

    Returns
    -------
    gross : ndarray of bool, shape (n_samples,)
    """
    gross = gross_targets(prediction, y)
    if values is None:
        return gross
    return gross | (every_row_pairs(values, prediction, y) if pairs is None else pairs)


def every_row_pairs(values, prediction, y):
    """``paired_gross`` with every row a candidate: the gross pairs of the whole table."""
    return paired_gross(values, np.ones(len(values), bool), prediction, y)


def doubts_label(proba, labels):
    """Rows whose given label the network finds less likely than usual and than a blind guess.

    Parameters
    ----------
    proba, labels
        As in ``agrees_with_label``.

    Returns
    -------
    doubted : ndarray of bool, shape (n_samples,)
        ``proba[label]`` below both the mean of ``proba[label]`` over the rows of
        that label and the label's share of the rows. "Below" means by more than
        a millionth of the bar: a network that gives every row the same output
        (it learned only the class counts) doubts no row, rather than letting
        float rounding decide.
    """
    given, mean, share = _given_label_stats(proba, labels)
    return given < np.minimum(mean, share)[labels] * (1 - 1e-6)


def _given_label_stats(proba, labels):
    """Each row's probability of its label; per label, its mean over the label's rows and
    the label's share of the rows."""
    given = proba[np.arange(len(labels)), labels]
    counts = np.bincount(labels, minlength=proba.shape[1])
    mean = np.bincount(labels, weights=given, minlength=proba.shape[1]) / np.maximum(counts, 1)
    return given, mean, counts / len(labels)


def doubts_target(prediction, y, z=3.0, central=0.9):
    """Rows whose residual is an outlier while their target is not.

    Parameters
    ----------
    prediction, y
        As in ``agrees_with_target``.
    z : float, default=3.0
        How many robust standard deviations (1.4826 MAD) from the median residual
        make an outlier.
    central : float, default=0.9
        The share of the targets, around the median, that counts as not extreme.

    Returns
    -------
    doubted : ndarray of bool, shape (n_samples,)
        For some target of the row: the residual ``y - prediction`` lies more than
        ``z`` robust standard deviations from the median residual and ``y`` within
        the central ``central`` share of that target's values.
    """
    y, prediction = _as_columns(y, prediction)
    residual = y - prediction
    outlier = np.column_stack([np.abs(robust_z(column)) > z for column in residual.T])
    low, high = np.quantile(y, [(1 - central) / 2, (1 + central) / 2], axis=0)
    return (outlier & (y >= low) & (y <= high)).any(axis=1)


def _as_columns(y, prediction):
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    return y, np.asarray(prediction, dtype=np.float64).reshape(y.shape)


def spared_rows(valuer, X, y, veto, prediction=None, gross=None):
    """The rows the veto keeps whatever their values (see the module), or None.

    Parameters
    ----------
    valuer : fitted estimator
        A classifier with ``predict_proba`` and ``classes_`` (``"agree"`` also
        reads its ``evidence_``: without it every confident row is kept), or a
        regressor with ``predict``; any other valuer gets no veto.
    X : array-like of shape (n_samples, n_features)
        The training rows the valuer was fitted on.
    y : array-like of shape (n_samples,) or (n_samples, n_targets)
        Their given targets.
    veto : {"doubt", "agree"} or None
        The veto's width; ``None``: none.
    prediction : ndarray or None, default=None
        The valuer's ``predict_proba(X)`` (classifier) or ``predict(X)``
        (regressor) when the caller already has it; ``None``: computed here.
    gross : ndarray of bool, shape (n_samples,) or None, default=None
        The rows a regressor's wide veto does not keep as gross, when the caller
        already has them (``checked_gross`` with the rows' values); ``None``:
        ``gross_targets``.

    Returns
    -------
    spared : ndarray of bool, shape (n_samples,) or None
        ``None`` without a veto or when the valuer cannot predict.
    """
    if veto is None:
        return None
    if is_classifier(valuer):
        if not (hasattr(valuer, "predict_proba") and hasattr(valuer, "classes_")):
            return None
        y = np.asarray(y)
        labels = np.searchsorted(valuer.classes_, y.reshape(len(y), -1)[:, 0])  # a column y too
        proba = np.asarray(valuer.predict_proba(X) if prediction is None else prediction)
        if veto == "doubt":
            return ~doubts_label(proba, labels)
        agree = agrees_with_label(proba, labels)
        evidence = getattr(valuer, "evidence_", None)
        return agree if evidence is None else agree & (evidence_source(evidence) != 0)
    if not hasattr(valuer, "predict"):
        return None
    prediction = valuer.predict(X) if prediction is None else prediction
    agree = agrees_with_target(prediction, y)
    if veto == "doubt":
        return agree | ~doubts_target(prediction, y)
    gross = gross_targets(prediction, y) if gross is None else gross
    return agree & ~gross  # a checked cut: gross errors go


def doubts_a_label(valuer, X, y, rows):
    """Whether a classifier's network doubts the label of any of ``rows`` (the strict veto).

    Parameters
    ----------
    valuer, X, y
        As in ``spared_rows``.
    rows : ndarray of int
        Positions in ``X``.

    Returns
    -------
    bool
        False for no rows; True for a regressor (a regression's inner folds are
        scored by a correlation, not by a count of hits: its candidates are always
        tried), or a valuer that cannot predict (nothing to go by).
    """
    if len(rows) == 0:
        return False
    if not is_classifier(valuer):
        return True
    spared = spared_rows(valuer, X, np.asarray(y), "doubt")
    return spared is None or not spared[rows].all()


def check_veto(veto):
    """Raise a ValueError unless ``veto`` is one of ``VETOES`` or None."""
    if veto is not None and not (isinstance(veto, str) and veto in VETOES):
        raise ValueError(f"veto must be one of {VETOES} or None, got {veto!r}.")
