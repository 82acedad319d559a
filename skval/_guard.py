"""The guards of the cut: rows it never removes, whatever their values.

A low value says that a row's loss (or its features' OT cost) stayed high in the
training run. Rare rows, genuine extremes and unusual but correct rows have that
without being wrong. The guards take them back out of the cut, never add any:

- **the class floor**: a class keeps at least half of its rows (``size // 2``
  removed at most), whatever ``max_class_share``. Rare rows get low values for
  being rare; a cut that takes most of a class removes what the model knows of it.
- **the tail floor** (regression, with the wide veto): each tail of the targets,
  the rows beyond their 5th or 95th percentile, keeps at least 95 % of its rows
  (``tail_floor``; the strict veto removes none of them). Extreme targets are the
  regression's rare rows: genuine ones get low values for being hard to predict,
  and a model that loses them mispredicts every row like them (on a clean table of
  wages with a cluster of very high earners the wide cut held 5-11 % of the top 5 %).
- **the veto**, from the valuer's own network, in one of two widths (``veto``):

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

- **the noise estimate** (not with a classifier's wide veto, whose candidates a
  cross-validation checks): a 2-means cut keeps at most as many rows as the
  valuer says are corrupted, the lowest-valued ones: with canaries, their
  ``noise_shares_`` summed, times the rows; a regressor without them, the share
  of swapped targets its residuals show (``swapped_target_share``). The 2-means
  split of the values does not know how much noise there is; where the run
  cannot tell noise from signal (hard or imbalanced tables) the canaries do not
  stand out and the estimate is small, as on a clean table (a total of at most
  0.11 on the benchmark's clean imbalanced tables). A regressor's wide veto is
  capped too: it keeps only the rows whose targets lie beyond their predictions,
  so its uncapped cut held clean rows of unusual features that a linear model
  needs; a classifier's canaries, on the other hand, underestimate label noise
  on many-class tables (digits: 5-14 % where 20 % is wrong), and twice their
  estimate as a bound on its candidates cost a linear model 0.03 accuracy there
  (BENCHMARKS section 2).

Each rule only ever removes rows from the cut, so the guarded cut removes fewer
rows than the plain one, never others.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import is_classifier

from ._canary import swapped_target_share
from ._selection import evidence_source, robust_z, rows_to_remove

VETOES = ("doubt", "agree")


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
        _keep_lowest(values, removed, members, int(members.sum()) // 2)
    return removed


def _keep_lowest(values, removed, members, limit):
    """In place: of the ``members`` in ``removed``, keep only the ``limit`` lowest-valued."""
    rows = np.flatnonzero(members & removed)
    if len(rows) > limit:
        rows = rows[np.argsort(values[rows], kind="stable")]
        removed[rows[limit:]] = False


def tail_floor(values, removed, y, tail=0.05, kept=0.95):
    """Trim ``removed`` so that each tail of the targets keeps ``kept`` of its rows.

    Parameters
    ----------
    values : ndarray of shape (n_samples,)
        The rows' values; a tail over its floor keeps its lowest-valued removals.
    removed : ndarray of bool, shape (n_samples,)
        Rows the cut would remove.
    y : array-like of shape (n_samples,) or (n_samples, n_targets)
        The given targets.
    tail : float, default=0.05
        Each tail: the rows at or beyond the ``tail`` or ``1 - tail`` quantile of a
        target.
    kept : float, default=0.95
        The share of a tail's rows it keeps at least.

    Returns
    -------
    removed : ndarray of bool, shape (n_samples,)
        A copy of ``removed``; a tail of ``size`` rows loses at most
        ``floor((1 - kept) * size)``, its lowest-valued first.
    """
    removed = removed.copy()
    y = np.asarray(y, dtype=np.float64).reshape(len(values), -1)
    low, high = np.quantile(y, [tail, 1 - tail], axis=0)
    for members in [*(y <= low).T, *(y >= high).T]:
        _keep_lowest(values, removed, members, int(np.floor((1 - kept) * members.sum() + 1e-9)))
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


def doubts_label(proba, labels):
    """Rows whose given label the network finds less likely than usual and than a blind guess.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
        The network's class probabilities for the training rows.
    labels : ndarray of int, shape (n_samples,)
        Each row's given label, as a column of ``proba``.

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
    prediction : ndarray of shape (n_samples,) or (n_samples, n_targets)
        The network's predictions for the training rows.
    y : ndarray of shape (n_samples,) or (n_samples, n_targets)
        The given targets.
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


def spared_rows(valuer, X, y, veto, prediction=None):
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
    return agree | ~doubts_target(prediction, y) if veto == "doubt" else agree


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


def guard(values, removed, groups, spared):
    """The cut's rows less the spared ones, then trimmed to the class floor.

    Parameters
    ----------
    values : ndarray of shape (n_samples,)
        The rows' values.
    removed : ndarray of bool, shape (n_samples,)
        Rows the cut (with its cap per class) would remove.
    groups : ndarray of shape (n_samples,)
        The class of each row (one group for regression).
    spared : ndarray of bool, shape (n_samples,) or None
        Rows the veto keeps (never removed); ``None``: no veto.

    Returns
    -------
    removed : ndarray of bool, shape (n_samples,)
        The guarded removal.
    """
    if spared is not None:
        removed = removed & ~spared
    return class_floor(values, removed, groups)


def guarded_cut(valuer, X, y, values, groups, cut="kmeans", max_class_share=0.5, veto="doubt",
                prediction=None):
    """The rows the guarded cut removes: the cut and its caps, the veto, the floor.

    The caps: per class (``max_class_share``) and, for a 2-means cut, the
    valuer's noise estimate (``noise_estimate``), except for a classifier's wide
    cut (``veto="agree"``), which gives a cross-validation its candidates.

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
    veto : {"doubt", "agree"} or None, default="doubt"
        The veto's width (see the module); ``None``: the class floor alone.
    prediction : ndarray or None, default=None
        The valuer's predictions on ``X``, if already made (see ``spared_rows``).

    Returns
    -------
    removed : ndarray of bool, shape (n_samples,)
        The rows to remove.
    """
    removed = rows_to_remove(values, groups, cut, max_class_share)
    if prediction is None and _predicts_targets(valuer):  # one pass for the cap and the veto
        prediction = valuer.predict(X)
    if isinstance(cut, str) and cut == "kmeans" and (veto != "agree"
                                                      or _predicts_targets(valuer)):
        # a classifier's wide cut is for candidates a cross-validation checks, a share or
        # a count is the user's: neither is capped
        removed = within_noise_estimate(values, removed, noise_estimate(valuer, y, prediction))
    removed = guard(values, removed, groups, spared_rows(valuer, X, y, veto, prediction))
    return _wide_tail_floor(valuer, veto, values, removed, y)


def _wide_tail_floor(valuer, veto, values, removed, y):
    """``tail_floor`` for a regressor's wide cut (the strict veto spares the tails)."""
    if veto == "agree" and _predicts_targets(valuer):
        return tail_floor(values, removed, y)
    return removed


def _predicts_targets(valuer):
    return not is_classifier(valuer) and hasattr(valuer, "predict")


def noise_estimate(valuer, y, prediction=None):
    """The share of the rows the valuer estimates corrupted, or None (no estimate).

    Parameters
    ----------
    valuer : fitted estimator
        With canaries (``noise_shares_`` not None): their shares summed. Otherwise
        a regressor: ``swapped_target_share`` of its ``prediction``. Otherwise None.
    y : array-like of shape (n_samples,) or (n_samples, n_targets)
        The given targets of the rows it was fitted on.
    prediction : ndarray or None, default=None
        The regressor's predictions for those rows (needed for a regressor).

    Returns
    -------
    share : float or None
    """
    shares = getattr(valuer, "noise_shares_", None)
    if shares is not None:
        return float(np.sum(shares))
    if prediction is None or not _predicts_targets(valuer):
        return None
    return swapped_target_share(prediction, y)


def within_noise_estimate(values, removed, share):
    """The rows of ``removed`` among the ``round(n * share)`` lowest values.

    Unchanged when ``share`` is None (no estimate).
    """
    if share is None:
        return removed
    count = int(round(len(values) * share))
    lowest = np.zeros(len(values), bool)
    lowest[np.argsort(values, kind="stable")[:count]] = True
    return removed & lowest


def rows_past_cut(valuer, X, y, values, groups, removed, n_more, max_class_share=0.5,
                  veto="doubt"):
    """Up to ``n_more`` rows past a guarded cut, lowest value first, under the same guards.

    The rows a guarded cut of ``removed.sum() + n_more`` rows would add to
    ``removed``, counting only rows the veto allows (a spared row is never a
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
    spared = spared_rows(valuer, X, y, veto)
    allowed = np.ones(len(values), bool) if spared is None else ~spared
    candidates = np.where(allowed, values, np.inf)  # spared rows sort last and are cut off below
    count = min(len(values), int(removed.sum()) + int(n_more))
    wider = rows_to_remove(candidates, groups, count, max_class_share)
    wider = guard(values, (wider & allowed) | removed, groups, spared)
    # the cut's own rows count first against the floor: only the rest is trimmed
    wider = _wide_tail_floor(valuer, veto, np.where(removed, -np.inf, values), wider, y)
    added = np.flatnonzero(wider & ~removed)
    return added[np.argsort(values[added], kind="stable")]
