"""The guards of the cut: rows it never removes, whatever their values.

A low value says that a row's loss (or its features' OT cost) stayed high in the
training run. Three kinds of rows have that without being wrong, and the cut
leaves them alone:

- **the rows of a class the cut would more than halve** (the class floor): a class
  keeps at least half of its rows (``size // 2`` removed at most), whatever
  ``max_class_share``. Rare rows get low values for being rare; a cut that takes
  most of a class removes what the model knows of it. (The default cap, a share
  of 0.5 scaled down for classes below average size, stays within the floor.)
- **rows the network confidently agrees with, flagged for their features**
  (classification): the network's most probable class is the given label, with
  at least the probability that rows of that class usually get (the mean over
  the class: confident learning's per-class threshold), and the evidence against
  the row is not on its label side (``evidence_``; see ``skval._issues``). Such
  a row is unusual in its features but labelled as the network reads it: rare
  and informative, not wrong. Where the label side is the source the veto does
  not apply: the network's predictions on its own training rows can reproduce a
  wrong label it has memorised (on 142-row folds of wine with 20 % flips, more
  than half of the flipped rows were predicted confidently), while the label
  side summed the disagreement over the whole run.
- **rows the network sends the right way** (regression): the prediction lies on
  the same side of the median target as the row's target, and the target lies
  further out than the prediction. A model trained with a squared loss shrinks
  its predictions toward the mean, so the largest (and smallest) targets keep a
  large residual even when they are right: that residual is the shrinkage, not
  a wrong target. A swapped target (another row's) has no reason to sit beyond
  its row's prediction on the prediction's side.

Each rule only ever removes rows from the cut, so the guarded cut removes fewer
rows than the plain one, never others.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import is_classifier

from ._selection import evidence_source, rows_to_remove


def class_floor(values, removed, groups):
    """Trim ``removed`` so that every class keeps at least half of its rows.

    Parameters
    ----------
    values : ndarray of shape (n_samples,)
        The rows' values; a class over its floor keeps its lowest-valued removals.
    removed : ndarray of bool, shape (n_samples,)
        Rows the cut would remove.
    groups : ndarray of shape (n_samples,)
        The class of each row (one group for regression).

    Returns
    -------
    removed : ndarray of bool, shape (n_samples,)
        A copy of ``removed``; a class of ``size`` rows loses at most
        ``size // 2``, its lowest-valued first.
    """
    removed = removed.copy()
    for group in np.unique(groups):
        members = groups == group
        limit = int(members.sum()) // 2
        rows = np.flatnonzero(members & removed)
        if len(rows) > limit:
            rows = rows[np.argsort(values[rows], kind="stable")]
            removed[rows[limit:]] = False
    return removed


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
    given = proba[np.arange(len(labels)), labels]
    sums = np.bincount(labels, weights=given, minlength=proba.shape[1])
    counts = np.bincount(labels, minlength=proba.shape[1])
    threshold = sums / np.maximum(counts, 1)
    return (proba.argmax(axis=1) == labels) & (given >= threshold[labels])


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
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    prediction = np.asarray(prediction, dtype=np.float64).reshape(y.shape)
    median = np.median(y, axis=0)
    above = (median <= prediction) & (prediction <= y)
    below = (y <= prediction) & (prediction <= median)
    return (above | below).all(axis=1)


def network_agreement(valuer, X, y, prediction=None):
    """The rows the valuer's own network agrees with (see the module), or None.

    Parameters
    ----------
    valuer : fitted estimator
        A classifier with ``predict_proba`` and ``classes_`` (and ``evidence_``:
        without it every confident row is vetoed), or a regressor with
        ``predict``; any other valuer gets no veto.
    X : array-like of shape (n_samples, n_features)
        The training rows the valuer was fitted on.
    y : array-like of shape (n_samples,) or (n_samples, n_targets)
        Their given targets.
    prediction : ndarray or None, default=None
        The valuer's ``predict_proba(X)`` (classifier) or ``predict(X)``
        (regressor) when the caller already has it; ``None``: computed here.

    Returns
    -------
    agree : ndarray of bool, shape (n_samples,) or None
        ``None`` when the valuer cannot predict.
    """
    if is_classifier(valuer):
        if not (hasattr(valuer, "predict_proba") and hasattr(valuer, "classes_")):
            return None
        y = np.asarray(y)
        labels = np.searchsorted(valuer.classes_, y.reshape(len(y), -1)[:, 0])  # a column y too
        proba = valuer.predict_proba(X) if prediction is None else prediction
        agree = agrees_with_label(np.asarray(proba), labels)
        evidence = getattr(valuer, "evidence_", None)
        return agree if evidence is None else agree & (evidence_source(evidence) != 0)
    if not hasattr(valuer, "predict"):
        return None
    return agrees_with_target(valuer.predict(X) if prediction is None else prediction, y)


def guard(values, removed, groups, agreement):
    """The cut's rows less the vetoed ones, then trimmed to the class floor.

    Parameters
    ----------
    values : ndarray of shape (n_samples,)
        The rows' values.
    removed : ndarray of bool, shape (n_samples,)
        Rows the cut (with its cap per class) would remove.
    groups : ndarray of shape (n_samples,)
        The class of each row (one group for regression).
    agreement : ndarray of bool, shape (n_samples,) or None
        Rows the network agrees with (never removed); ``None``: no veto.

    Returns
    -------
    removed : ndarray of bool, shape (n_samples,)
        The guarded removal.
    """
    if agreement is not None:
        removed = removed & ~agreement
    return class_floor(values, removed, groups)


def guarded_cut(valuer, X, y, values, groups, cut="kmeans", max_class_share=0.5, veto=True,
                prediction=None):
    """The rows the guarded cut removes: the cut, its cap per class, the veto, the floor.

    Parameters
    ----------
    valuer : fitted estimator
        The estimator whose ``values`` these are; its predictions on ``X`` give
        the veto.
    X : array-like of shape (n_samples, n_features)
        The rows it was fitted on.
    y : array-like of shape (n_samples,) or (n_samples, n_targets)
        Their given targets.
    values : ndarray of shape (n_samples,)
        The rows' values.
    groups : ndarray of shape (n_samples,)
        The class of each row (one group for regression).
    cut : "kmeans", float or int, default="kmeans"
        The removal candidates (see ``LossValCleaner``).
    max_class_share : float, default=0.5
        The cap per class (see ``LossValCleaner``).
    veto : bool, default=True
        Whether rows the network agrees with are kept.
    prediction : ndarray or None, default=None
        The valuer's predictions on ``X``, if already made (see
        ``network_agreement``).

    Returns
    -------
    removed : ndarray of bool, shape (n_samples,)
        The rows to remove.
    """
    removed = rows_to_remove(values, groups, cut, max_class_share)
    agreement = network_agreement(valuer, X, y, prediction) if veto else None
    return guard(values, removed, groups, agreement)


def rows_past_cut(valuer, X, y, values, groups, removed, n_more, max_class_share=0.5, veto=True):
    """Up to ``n_more`` rows past a guarded cut, lowest value first, under the same guards.

    The rows a guarded cut of ``removed.sum() + n_more`` rows would add to
    ``removed``, counting only rows the veto allows (a vetoed row is never a
    candidate, so it does not use up the count).

    Parameters
    ----------
    valuer, X, y, values, groups, max_class_share, veto
        As in ``guarded_cut``.
    removed : ndarray of bool, shape (n_samples,)
        The guarded cut's rows.
    n_more : int
        Rows wanted past the cut.

    Returns
    -------
    rows : ndarray of int
        The added rows, lowest value first (fewer than ``n_more`` where the
        guards keep them).
    """
    agreement = network_agreement(valuer, X, y) if veto else None
    allowed = np.ones(len(values), bool) if agreement is None else ~agreement
    candidates = np.where(allowed, values, np.inf)  # vetoed rows sort last and are cut off below
    count = min(len(values), int(removed.sum()) + int(n_more))
    wider = rows_to_remove(candidates, groups, count, max_class_share)
    wider = guard(values, (wider & allowed) | removed, groups, agreement)
    added = np.flatnonzero(wider & ~removed)
    return added[np.argsort(values[added], kind="stable")]
