"""Canary rows: known-corrupted copies trained beside the rows, to read the run's evidence.

A fit with ``canaries > 0`` appends ``2 * m`` rows to the training rows (``m`` =
``canaries`` times the rows, at least ``MIN_CANARIES``: see ``canary_count``):
``m`` *label canaries*, copies of random rows (features jittered by a twentieth
of each feature's scale) given another class, or another row's target in
regression; and ``m`` *feature canaries*, copies of random rows with Gaussian noise
of each feature's own scale added, their targets kept. They train like any row, in
the same run; afterwards their evidence is known to come from one kind of corruption,
which calibrates the two sides of ``evidence_`` (column 0 the label side, 1 the
feature side):

* **How much of each corruption the rows hold** (``noise_shares``; a regressor
  replaces the label share by its residuals' ``swapped_target_share``): on each side,
  the share of the rows beyond a threshold (the label canaries' median; on the
  feature side ``FEATURE_TAIL_Z`` robust standard deviations of the rows where the
  feature canaries reach it), against what each kind of canary reaches there (a row
  with corrupted features also looks mislabelled), solved for the two shares. Rough (see ``noise_shares``): where a
  fifth of the rows are corrupted, the network fits them more than the few
  canaries, whose evidence is then more extreme, and clean rows that reach a
  threshold count as corrupted.
* **How strongly a row's evidence on a side says "corrupted"**: a logistic fit of
  that side's canaries against the rows, on the side's squashed robust z (the
  log-odds of a density ratio; a side whose canaries do not stand out gets only a
  tie-break's slope); on the feature side the z is capped at the share's threshold, so that a
  row beyond it counts as the canaries do however far it lies.

The value is minus the log of ``share_label * odds_label + share_feature *
odds_feature``: on pure label noise the label side ranks the rows, on pure feature
noise the feature side, on a mix both; on a clean table both shares are small.
A share is floored at one row, so a side the canaries find empty still orders the
rows it is sure about.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import nnls
from sklearn.linear_model import LogisticRegression

MIN_CANARIES = 10
# Most of the rows corrupted one way cannot be told from the canaries: a larger estimate
# means that side's canaries blend in with the rows (LossVal, too, needs most rows clean).
MAX_SHARE = 0.5
# The feature side's threshold of the shares: this many robust standard deviations of the
# rows (on the benchmark's clean classification tables 0.6 % of the rows reach it, and
# 48-58 % of the rows with dense or sparse feature noise), lower where fewer than
# _MIN_REACHED feature canaries reach it, never below the canaries' median.
FEATURE_TAIL_Z = 6.0
_MIN_REACHED = 5
_JITTER = 0.05
LABEL, FEATURE = 0, 1
# The least slope of a side's log-odds in its squashed z: a tie-break.
_MIN_SLOPE = 1e-3


def canary_count(n_rows, share):
    """Canaries of each kind: ``round(share * n_rows)``, at least ``MIN_CANARIES``.

    0 when ``share`` is 0, or when the floor of ``MIN_CANARIES`` would make the
    canaries of both kinds more than a tenth of the rows (under 200 rows: the
    network trains on them too, and so many corrupted rows change what it learns).
    """
    count = int(round(share * n_rows))
    if share == 0 or count >= MIN_CANARIES:
        return count
    return MIN_CANARIES if 20 * MIN_CANARIES <= n_rows else 0


def make_canaries(X, target, n_classes, count, rng):
    """``count`` label canaries, then ``count`` feature canaries: their features and targets.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        The training rows' numeric features (not modified).
    target : ndarray of shape (n_rows,) or (n_rows, n_targets)
        Their encoded targets: class codes, or regression targets as the network sees them.
    n_classes : int or None
        Classes of a classification (codes in ``[0, n_classes)``); None: regression.
    count : int
        Canaries of each kind.
    rng : numpy.random.RandomState

    Returns
    -------
    X_canary : ndarray of shape (2 * count, n_features)
    target_canary : ndarray of shape (2 * count,) + target.shape[1:]
    """
    n_rows = len(X)
    scale = column_std(X)
    scale = np.where(scale > 0, scale, 1.0)
    label_rows = rng.choice(n_rows, count, replace=False)
    feature_rows = rng.choice(n_rows, count, replace=False)
    X_label = X[label_rows] + rng.normal(size=(count, X.shape[1])) * scale * _JITTER
    if n_classes is None:  # another row's target (it may be close: the row's own is excluded)
        others = rng.randint(0, n_rows - 1, size=count)
        target_label = target[others + (others >= label_rows)]
    else:
        target_label = (target[label_rows] + rng.randint(1, n_classes, size=count)) % n_classes
    X_feature = X[feature_rows] + rng.normal(size=(count, X.shape[1])) * scale
    X_canary = np.vstack([X_label, X_feature]).astype(X.dtype, copy=False)
    return X_canary, np.concatenate([target_label, target[feature_rows]]).astype(target.dtype)


def column_std(X, chunk=65_536):
    """Each column's standard deviation in float64, a chunk of rows at a time.

    ``X.std(axis=0, dtype=np.float64)`` would hold a float64 copy of ``X``.
    """
    total = np.zeros(X.shape[1])
    for start in range(0, len(X), chunk):
        total += X[start:start + chunk].sum(axis=0, dtype=np.float64)
    mean = total / len(X)
    squares = np.zeros(X.shape[1])
    for start in range(0, len(X), chunk):
        squares += ((X[start:start + chunk] - mean) ** 2).sum(axis=0)
    return np.sqrt(squares / len(X))


def _robust_z(evidence, n_rows):
    """Each side in robust z of the rows (not the canaries): minus their median, over
    their scaled median absolute deviation (their standard deviation where that is 0)."""
    rows = evidence[:n_rows]
    center = np.median(rows, axis=0)
    scale = 1.4826 * np.median(np.abs(rows - center), axis=0)
    fallback = rows.std(axis=0)
    scale = np.where(scale > 0, scale, np.where(fallback > 0, fallback, 1.0))
    return (evidence - center) / scale


def _squash(z):
    """sign(z) log(1 + |z|)."""
    return np.sign(z) * np.log1p(np.abs(z))


def _beyond(column, threshold):
    return float(np.mean(column > threshold))


def noise_shares(evidence, n_rows, count, feature_tail=True):
    """Estimated shares of the rows corrupted in their labels and in their features.

    On each side, a threshold. On the label side the median of the label
    canaries: a wrong label is the same corruption whatever the noise, and a label
    canary is one. On the feature side, with ``feature_tail``, ``FEATURE_TAIL_Z``
    robust standard deviations of the rows' own feature evidence (lower where fewer
    than ``_MIN_REACHED`` feature canaries reach it; never below their median):
    feature corruption has no one form, and sparse far-off cells sat well short of
    the dense-noise canaries, whose median then lay beyond nearly every corrupted
    row, while below it clean rows with unusual features reached it under pure
    label noise. Without ``feature_tail`` the feature canaries' median. The share
    of the rows beyond a threshold is modelled as
    ``share_label * r_label + share_feature * r_feature``, where ``r`` is each kind
    of canary's own share beyond it (about 1/2 for the label side's own kind; what
    the other kind reaches there, for example a row with corrupted features looking
    mislabelled; at the feature tail 0 for the label kind: there a mislabelled row
    reaches no further than a clean one, 0.5 % of either under label noise on the
    benchmark, while the label canaries' jitter moved binary cells off their two
    values, and on tables of one-hot columns they all reached it); the two sides'
    equations are solved for the shares, non-negative. Clean rows beyond a
    threshold count as corrupted (on the benchmark's clean imbalanced
    classification tables a total of at most 0.055), while corrupted rows that the
    network partly fitted, where there are many, fall short of it (on tables with a
    fifth of the rows corrupted one way the estimate of that kind averages
    0.10-0.18, a single run's total 0.00-0.47).

    Parameters
    ----------
    evidence : ndarray of shape (n_rows + 2 * count, 2)
        The run's evidence: the rows, then the label canaries, then the feature
        canaries.
    n_rows : int
        The rows (the first ``n_rows`` of ``evidence``).
    count : int
        Canaries of each kind.
    feature_tail : bool, default=True
        The feature threshold as above; False: the feature canaries' median (a
        regressor whose residuals show target noise: its clean rows' feature
        evidence then has a tail beyond ``FEATURE_TAIL_Z``).

    Returns
    -------
    shares : ndarray of shape (2,)
        Label side, feature side; each in [0, 1].
    """
    z = _robust_z(np.asarray(evidence, dtype=np.float64), n_rows)
    rows = z[:n_rows]
    kinds = (z[n_rows:n_rows + count], z[n_rows + count:n_rows + 2 * count])
    thresholds = [np.median(kinds[side][:, side]) for side in (LABEL, FEATURE)]
    if feature_tail:
        thresholds[FEATURE] = _feature_threshold(kinds[FEATURE][:, FEATURE])
    reached = np.array([[_beyond(canaries[:, side], thresholds[side]) for canaries in kinds]
                        for side in (LABEL, FEATURE)])
    if feature_tail:  # a mislabelled row reaches that far no more than a clean one
        reached[FEATURE, LABEL] = 0.0
    observed = np.array([_beyond(rows[:, side], thresholds[side]) for side in (LABEL, FEATURE)])
    shares, _ = nnls(reached, observed)
    return np.clip(shares, 0.0, 1.0)


def _feature_threshold(canaries):
    """The lower of ``FEATURE_TAIL_Z`` and the point that ``_MIN_REACHED`` of the
    feature ``canaries`` (robust z), and at least half of them, still reach: their
    reach there is then read from enough of them."""
    quantile = max(0.5, 1 - _MIN_REACHED / len(canaries))
    return min(FEATURE_TAIL_Z, np.quantile(canaries, quantile))


def plausible_shares(shares):
    """``shares`` with 0 for a side above ``MAX_SHARE``.

    There the side's canaries do not stand out from the rows (a clean table's
    ordinary rows reach as far as the corrupted copies), so the share says nothing.
    """
    return np.where(shares > MAX_SHARE, 0.0, shares)


def _side_log_odds(squashed, n_rows, canaries):
    """Log-odds that a row is like ``canaries`` (indices) on one side: a + max(b, eps) * x.

    A side whose canaries do not stand out (a slope of 0 or less) keeps its rows' order
    only as a tie-break (``_MIN_SLOPE``): where neither side's canaries stood out (a
    regressor's few label canaries on a noisy target can fall among the rows) the
    values would otherwise all tie.
    """
    x = np.concatenate([squashed[:n_rows], squashed[canaries]])[:, None]
    is_canary = np.r_[np.zeros(n_rows), np.ones(len(canaries))]
    fit = LogisticRegression(class_weight="balanced").fit(x, is_canary)
    return fit.intercept_[0] + max(fit.coef_[0, 0], _MIN_SLOPE) * squashed[:n_rows]


def calibrated_values(evidence, n_rows, count, shares, feature_tail=True):
    """The rows' values: minus the log of the shares times each side's odds, summed.

    Each side's odds are a logistic fit of its canaries against the rows on the
    side's squashed robust z; with ``feature_tail`` the feature side's z is capped
    at the feature share's threshold.

    Parameters
    ----------
    evidence : ndarray of shape (n_rows + 2 * count, 2)
        As in :func:`noise_shares`.
    n_rows, count : int
        As in :func:`noise_shares`.
    shares : ndarray of shape (2,)
        :func:`noise_shares`' estimate.
    feature_tail : bool, default=True
        As in :func:`noise_shares`: cap the feature side's z at its threshold.

    Returns
    -------
    values : ndarray of shape (n_rows,)
        Low = likely corrupted.
    """
    z = _robust_z(np.asarray(evidence, dtype=np.float64), n_rows)
    label_rows = np.arange(n_rows, n_rows + count)
    feature_rows = np.arange(n_rows + count, n_rows + 2 * count)
    # beyond the share's threshold a row counts as the feature canaries do: how much
    # further it lies tells the corruption's form (dense or sparse), not whether it is one
    if feature_tail:
        z[:, FEATURE] = np.minimum(z[:, FEATURE], _feature_threshold(z[feature_rows, FEATURE]))
    squashed = _squash(z)
    odds = [_side_log_odds(squashed[:, LABEL], n_rows, label_rows),
            _side_log_odds(squashed[:, FEATURE], n_rows, feature_rows)]
    log_shares = np.log(np.maximum(shares, 1.0 / n_rows))
    return -np.logaddexp(log_shares[LABEL] + odds[LABEL], log_shares[FEATURE] + odds[FEATURE])


# random pairs of a row's prediction and another row's target: at most this many
_SWAP_PAIRS = 200_000
# the thresholds stop where this share of the random pairs' residuals lies beyond them
_SWAP_TAIL = 0.05


def swapped_target_share(prediction, y):
    """The largest share of swapped targets (another row's) the residuals allow.

    A swapped target says nothing of its row's features: its residual is that of
    the row's prediction against a random row's target. So at any threshold ``t``,
    the share of the rows whose absolute residual exceeds ``t`` is at least
    ``share`` times the share of random (prediction, target) pairs that do, and
    ``share`` is at most their ratio; the smallest ratio over thresholds up to the
    pairs' 95th percentile is the estimate (an upper bound in the spirit of
    mixture proportion estimation). Clean rows the network fits seldom reach
    where random targets do, so on a table without swapped targets it is small;
    rows with corrupted features, whose predictions go astray, count as swapped.
    Residuals are taken on the targets' ranks (targets and predictions through
    the targets' empirical distribution), so a skewed target's few extreme rows
    do not set the thresholds.

    Parameters
    ----------
    prediction : ndarray of shape (n_samples,) or (n_samples, n_targets)
        A regressor's predictions for its training rows.
    y : array-like of shape (n_samples,) or (n_samples, n_targets)
        Their given targets.

    Returns
    -------
    share : float
        In [0, 1]; with several targets, the largest of their estimates.
    """
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    prediction = np.asarray(prediction, dtype=np.float64).reshape(y.shape)
    n_rows = len(y)
    repeats = max(1, min(10, _SWAP_PAIRS // max(n_rows, 1)))
    shares = [0.0]
    for target, predicted in zip(y.T, prediction.T):
        target, predicted = _ranks_among(target, target), _ranks_among(predicted, target)
        own = np.sort(np.abs(target - predicted))
        rng = np.random.RandomState(0)  # the same pairs for every target
        pairs = np.sort(np.concatenate([np.abs(target[rng.permutation(n_rows)] - predicted)
                                        for _ in range(repeats)]))
        thresholds = np.quantile(pairs, np.linspace(0.0, 1.0 - _SWAP_TAIL, 60))
        rows_beyond = 1.0 - np.searchsorted(own, thresholds, side="right") / n_rows
        pairs_beyond = 1.0 - np.searchsorted(pairs, thresholds, side="right") / len(pairs)
        usable = pairs_beyond > 0
        if usable.any():
            shares.append(float(np.min(rows_beyond[usable] / pairs_beyond[usable])))
    return float(np.clip(max(shares), 0.0, 1.0))


def _ranks_among(values, reference):
    """Each value's mid-rank share among ``reference`` (its empirical distribution), in [0, 1]."""
    ordered = np.sort(reference)
    below = np.searchsorted(ordered, values, side="left")
    return (below + np.searchsorted(ordered, values, side="right")) / (2.0 * len(ordered))
