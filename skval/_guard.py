"""The guards of the cut: rows it never removes, whatever their values.

A low value says that a row's loss (or its features' OT cost) stayed high in the
training run. Rare rows, genuine extremes and unusual but correct rows have that
without being wrong. The guards take them back out of the cut, never add any:

- **the class floor**: a class keeps at least half of its rows (``size // 2``
  removed at most), whatever ``max_class_share``. Rare rows get low values for
  being rare; a cut that takes most of a class removes what the model knows of it.
- **the tail floor** (regression, with the wide veto): each tail of the targets,
  the rows beyond their 5th or 95th percentile, keeps at least 95 % of its rows
  (``tail_floor``; the strict veto removes none of them but gross pairs). Extreme
  targets are the regression's rare rows: genuine ones get low values for being hard to predict,
  and a model that loses them mispredicts every row like them (on a clean table of
  wages with a cluster of very high earners the wide cut held 5-11 % of the top 5 %).
  A tail holding more gross targets (``skval._veto.gross_targets``) than the floor
  lets go is errors, not extremes: they go, and the floor keeps the tail of the
  other rows.
- **the veto**, from the valuer's own network, in one of two widths (``veto``,
  ``skval._veto``): ``"doubt"`` (strict, for a cut nothing checks) removes a row
  only where the network doubts its label or target, or its target is gross, as
  many above their predictions as below (``paired_gross``); ``"agree"`` (wide, for
  candidates a cross-validation checks) keeps only the rows the network
  confidently agrees with.
- **the noise estimate** (not with a classifier's wide veto, whose candidates a
  cross-validation checks): a 2-means cut keeps at most as many rows as the
  valuer says are corrupted, the lowest-valued ones: with canaries, their
  ``noise_shares_`` summed, times the rows; a regressor without them, the share
  of swapped targets its residuals show (``swapped_target_share``); a regressor's
  estimate also counts its gross targets that come in pairs. The 2-means
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

Past a regressor's wide cut (the candidates beyond it that a cross-validation
checks, ``rows_past_cut``) the wide veto and the tail floor are lifted where the
valuer finds gross targets on both sides of its predictions (at least
``GROSS_PAIRS_TABLE`` rows of ``paired_gross``): that marks a table with gross
errors, and the errors the network partly followed are then spared by the veto
(it moved towards them) and kept by the floor (they fill the tails). A genuinely
skewed target is one-sided: on ten clean real tables (two subsamples each) 18 of
20 fits had no pair, 2 had one.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import is_classifier

from ._canary import swapped_target_share
from ._selection import rows_to_remove
from ._veto import checked_gross, every_row_pairs, paired_gross, spared_rows

# Rows of gross pairs (``paired_gross`` over every row) from which a table is taken to
# hold gross errors: past a regressor's wide cut the veto and the tail floor are lifted.
GROSS_PAIRS_TABLE = 4


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


def tail_floor(values, removed, y, tail=0.05, kept=0.95, exempt=None):
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
    exempt : ndarray of bool, shape (n_samples,) or None, default=None
        Rows the floor neither counts nor keeps in a tail that holds more of them
        than the floor lets go (gross targets: ``skval._veto.gross_targets``): a
        few far-off targets are what a genuine tail looks like, a tail full of
        them is errors, and the floor then keeps the tail of the other rows'
        targets. None: none.

    Returns
    -------
    removed : ndarray of bool, shape (n_samples,)
        A copy of ``removed``; a tail of ``size`` rows (not exempt) loses at most
        ``floor((1 - kept) * size)`` of them, its lowest-valued first.
    """
    removed = removed.copy()
    y = np.asarray(y, dtype=np.float64).reshape(len(values), -1)
    exempt = np.zeros(len(values), bool) if exempt is None else exempt
    for target in y.T:
        for side in (-1, 1):
            members = _tail(target, side, tail)
            limit = _tail_allowance(members.sum(), kept)
            if (members & exempt).sum() > limit:  # the tail of the other rows instead
                members = _tail(target, side, tail, ~exempt)
                limit = _tail_allowance(members.sum(), kept)
            _keep_lowest(values, removed, members, limit)
    return removed


def _tail(target, side, tail, among=None):
    """The rows ``among`` (all: None) at or beyond the ``tail`` quantile of their targets,
    on the low (``side`` -1) or high (+1) side."""
    among = np.ones(len(target), bool) if among is None else among
    if not among.any():
        return among
    if side < 0:
        return among & (target <= np.quantile(target[among], tail))
    return among & (target >= np.quantile(target[among], 1 - tail))


def _tail_allowance(size, kept):
    """How many of a tail's ``size`` rows the floor lets go: ``floor((1 - kept) * size)``."""
    return int(np.floor((1 - kept) * size + 1e-9))


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
    # a classifier's wide cut is for candidates a cross-validation checks, a share or a
    # count is the user's: neither is capped
    capped = isinstance(cut, str) and cut == "kmeans" and (veto != "agree"
                                                            or _predicts_targets(valuer))
    # a regressor's gross pairs, once for the cap and the wide veto
    pairs = _regression_pairs(valuer, prediction, y, values) if capped or veto == "agree" else None
    if capped:
        share = noise_estimate(valuer, y, prediction, values, pairs=pairs)
        removed = within_noise_estimate(values, removed, share)
    gross = _wide_gross(valuer, veto, prediction, y, values, pairs)
    spared = _strict_pairs_go(valuer, veto, spared_rows(valuer, X, y, veto, prediction, gross),
                              removed, values, prediction, y)
    removed = guard(values, removed, groups, spared)
    return _wide_tail_floor(values, removed, y, gross)


def _strict_pairs_go(valuer, veto, spared, candidates, values, prediction, y):
    """The strict veto's ``spared`` rows less a regressor's gross pairs among ``candidates``
    (``paired_gross``): the strict veto lets gross targets go in pairs only; unchanged for
    any other veto or valuer."""
    if veto != "doubt" or spared is None or not _predicts_targets(valuer):
        return spared
    return spared & ~paired_gross(values, candidates & spared, prediction, y)


def _wide_gross(valuer, veto, prediction, y, values, pairs):
    """The gross rows a regressor's wide veto and its tail floor let go (``checked_gross``,
    given the table's gross ``pairs``), computed once for both; None for any other cut."""
    if veto == "agree" and _predicts_targets(valuer):
        return checked_gross(prediction, y, values, pairs=pairs)
    return None


def _regression_pairs(valuer, prediction, y, values):
    """A regressor's gross pairs over every row (``every_row_pairs``); None otherwise."""
    return every_row_pairs(values, prediction, y) if _predicts_targets(valuer) else None


def _wide_tail_floor(values, removed, y, gross, order=None):
    """``tail_floor`` for a regressor's wide cut (``gross`` not None), gross targets exempt
    (the strict veto spares the tails but for gross pairs); ``order``: the values the floor
    keeps by, if not ``values``."""
    if gross is None:
        return removed
    return tail_floor(values if order is None else order, removed, y, exempt=gross)


def _holds_gross_errors(veto, pairs):
    """Whether a regressor's wide cut sees gross targets on both sides of its predictions
    (at least ``GROSS_PAIRS_TABLE`` rows of its gross ``pairs`` over every row)."""
    return veto == "agree" and pairs is not None and int(pairs.sum()) >= GROSS_PAIRS_TABLE


def _predicts_targets(valuer):
    return not is_classifier(valuer) and hasattr(valuer, "predict")


def noise_estimate(valuer, y, prediction=None, values=None, pairs=None):
    """The share of the rows the valuer estimates corrupted, or None (no estimate).

    Parameters
    ----------
    valuer : fitted estimator
        With canaries (``noise_shares_`` not None): their shares summed. Otherwise
        a regressor: ``swapped_target_share`` of its ``prediction``. Otherwise None.
        A regressor's estimate also counts its gross targets that come in pairs
        (``skval._veto.paired_gross`` over every row, given ``values``): on the
        targets' ranks, which the swapped share reads, a gross error is an extreme
        rank, as a genuine extreme is (under 20 % of gross errors the share came out
        at 0.07-0.36; with the pairs counted too, the default cut's linear gain under
        those errors is +0.002 / +0.108 R^2, dev / confirm, where it was -0.124 /
        -0.125 before the pairs; BENCHMARKS section 2).
    y : array-like of shape (n_samples,) or (n_samples, n_targets)
        The given targets of the rows it was fitted on.
    prediction : ndarray or None, default=None
        The regressor's predictions for those rows (needed for a regressor).
    values : ndarray of shape (n_samples,) or None, default=None
        The rows' values (a regressor's gross pairs).
    pairs : ndarray of bool, shape (n_samples,) or None, default=None
        Those pairs (``skval._veto.every_row_pairs``), if already computed.

    Returns
    -------
    share : float or None
    """
    shares = getattr(valuer, "noise_shares_", None)
    if shares is not None:
        share = float(np.sum(shares))
    elif prediction is None or not _predicts_targets(valuer):
        return None
    else:
        share = swapped_target_share(prediction, y)
    if values is not None and prediction is not None and _predicts_targets(valuer):
        share += float((every_row_pairs(values, prediction, y) if pairs is None else pairs).mean())
    return share


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
    candidate, so it does not use up the count). Past a regressor's wide cut on a
    table with gross errors (gross targets on both sides of the predictions: see
    the module) the wide veto and the tail floor do not apply.

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
    prediction = valuer.predict(X) if _predicts_targets(valuer) else None
    count = min(len(values), int(removed.sum()) + int(n_more))
    pairs = _regression_pairs(valuer, prediction, y, values) if veto == "agree" else None
    if _holds_gross_errors(veto, pairs):
        gross, spared = None, None  # neither the wide veto nor the tail floor: see the module
    else:
        gross = _wide_gross(valuer, veto, prediction, y, values, pairs)
        # the strict veto's gross pairs among the rows a cut of ``count`` rows would reach
        reach = removed | rows_to_remove(values, groups, count, max_class_share)
        spared = _strict_pairs_go(valuer, veto,
                                  spared_rows(valuer, X, y, veto, prediction, gross),
                                  reach, values, prediction, y)
    allowed = np.ones(len(values), bool) if spared is None else ~spared
    candidates = np.where(allowed, values, np.inf)  # spared rows sort last and are cut off below
    wider = rows_to_remove(candidates, groups, count, max_class_share)
    wider = guard(values, (wider & allowed) | removed, groups, spared)
    # the cut's own rows count first against the floor: only the rest is trimmed
    wider = _wide_tail_floor(values, wider, y, gross, order=np.where(removed, -np.inf, values))
    added = np.flatnonzero(wider & ~removed)
    return added[np.argsort(values[added], kind="stable")]
