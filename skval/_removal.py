"""How much of the cut to remove: an inner cross-validation of the wrapped model alone.

The rows are valued once, on the whole training set; the cut orders its rows by
value. For each candidate amount (a share of the cut's rows, the lowest-valued
first, always including none; a share above 1 takes the next lowest-valued rows
past the cut that its guards allow), the wrapped model is cross-validated: in each
inner fold it is fitted on the training part less the candidate's rows and scored
on **all** the rows of the held-out part. The held-out part is never cleaned: every
candidate is scored on the same rows, and the rows the cut would remove (the
hard, rare and extreme ones among them) count against a candidate that loses
them. Its labels are the given ones, noise included, so the score must rank the
candidates as clean labels would:

* a classifier's own ``score`` (accuracy): symmetric label noise lowers every
  candidate's accuracy by the same affine map, so it does not change their order;
* a regressor's default is the correlation of prediction and target, not R^2. A
  wrong target (another row's, or an outlier) carries no information about its
  features, so on noisy held-out targets the best R^2 goes to the model shrunk
  towards the mean, the one trained on the noise: R^2 there ranks cleaning last.
  The correlation is unchanged by an affine map of the prediction (the
  shrinkage), and the wrong rows add the same zero-information part to every
  candidate's; it still falls when a candidate loses rows its model needs.
  (Measured: with R^2 the inner CV removed 2-3 % of the rows of 20 %-swapped
  regression tasks where the cut removed 7-8 %.)

The choice: among removing nothing and the candidates that score strictly above
it in most inner folds (more than half), the best mean score, the smaller amount
on a tie. A removal must help consistently, not on average alone: one fold's
gain can carry the mean while the others tie or lose (on a clean table with 3 %
positives, removing 1-17 rows won on average and lost ROC AUC on the outer
folds; BENCHMARKS section 2). A regressor's candidate must also gain at least one
standard error of its fold gains (``MIN_GAIN_SE``, a paired t-statistic of 1 over
the inner folds): on a heavy-tailed target most folds can gain a little while one
loses a lot (a clean table whose target's skew is 6: 14 rows removed won 3 folds
by 0.003-0.015 and lost the linear model 0.08 R^2 on the outer test). A
classifier's accuracy moves in steps of one held-out row, so on small tables its
fold gains are too coarse for this test (wine, 28 rows a fold: 0.946 -> 0.935),
and it is left to the majority. Cost: at most ``len(candidates) * n_splits`` fits
of the wrapped model (none when the cut is empty; a candidate stops once it can
no longer win most folds, which leaves the choice unchanged), then the final
fit; the valuer is fitted once.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.metrics import check_scoring
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils import _safe_indexing

_REMOVALS = ("cv", "cut")
# The largest share of the cut a candidate may remove: shares above 1 reach past the cut.
MAX_FRACTION = 3.0
# A regressor's candidate must gain at least this many standard errors of its fold gains.
MIN_GAIN_SE = 1.0


def check_removal(removal, fractions, cv):
    """Raise a ValueError naming the parameter unless ``removal``, ``removal_fractions``, ``cv`` are valid.

    Parameters
    ----------
    removal : str
        ``"cv"`` or ``"cut"``.
    fractions : sequence of float
        Shares of the cut's rows, each in [0, ``MAX_FRACTION``].
    cv : int or splitter
        An int >= 2, or an object with ``split`` and ``get_n_splits``.
    """
    if removal not in _REMOVALS:
        raise ValueError(f"removal must be one of {_REMOVALS}, got {removal!r}.")
    try:
        shares = np.asarray(fractions, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"removal_fractions must be numbers in [0, {MAX_FRACTION:g}], "
                         f"got {fractions!r}.") from None
    if shares.ndim != 1 or len(shares) == 0 or not np.all(
            (shares >= 0) & (shares <= MAX_FRACTION)):
        raise ValueError(f"removal_fractions must be a non-empty sequence of numbers in "
                         f"[0, {MAX_FRACTION:g}], got {fractions!r}.")
    if isinstance(cv, (bool, np.bool_)) or (isinstance(cv, numbers.Integral) and cv < 2):
        raise ValueError(f"cv must be an int >= 2 or a cross-validation splitter, got {cv!r}.")
    if not isinstance(cv, numbers.Integral) and not (
            hasattr(cv, "split") and hasattr(cv, "get_n_splits")):
        raise ValueError(f"cv must be an int >= 2 or a cross-validation splitter, got {cv!r}.")


def candidate_counts(n_cut, fractions, n_available=None):
    """The distinct numbers of rows to remove: 0, then ``round(f * n_cut)`` for each share.

    Parameters
    ----------
    n_cut : int
        Rows of the cut.
    fractions : sequence of float
        Shares of the cut, in [0, ``MAX_FRACTION``].
    n_available : int or None, default=None
        Most rows a candidate can remove (the cut and the rows past it that the
        guards allow); ``None``: ``n_cut``.

    Returns
    -------
    counts : ndarray of int
        Sorted, distinct, starting at 0, at most ``n_available``.
    """
    counts = np.round(np.asarray(fractions, dtype=np.float64) * n_cut).astype(int)
    limit = n_cut if n_available is None else n_available
    return np.unique(np.concatenate([[0], np.minimum(counts, limit)]))


def inner_splits(estimator, X, y, cv, random_state):
    """The inner folds: ``cv`` itself when a splitter, else shuffled (stratified) k-fold.

    Stratified for a classifier whose every class has at least ``cv`` rows.
    """
    if not isinstance(cv, numbers.Integral):
        return list(cv.split(X, y))
    y_arr = np.asarray(y)
    if y_arr.ndim == 2 and y_arr.shape[1] == 1:  # a column vector: the same folds as 1-D
        y_arr = y_arr[:, 0]
    stratify = is_classifier(estimator) and y_arr.ndim == 1 and (
        np.unique(y_arr, return_counts=True)[1].min() >= cv)
    splitter = (StratifiedKFold if stratify else KFold)(cv, shuffle=True, random_state=random_state)
    return list(splitter.split(np.zeros((len(y_arr), 1)), y_arr))


def prediction_correlation(estimator, X, y):
    """Pearson correlation of ``estimator.predict(X)`` with ``y`` (0 for a constant prediction).

    The inner CV's default score for a regressor (see the module docstring).

    Parameters
    ----------
    estimator : fitted regressor
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)

    Returns
    -------
    score : float
        In [-1, 1]; higher is better.
    """
    pred = np.asarray(estimator.predict(X), dtype=np.float64).ravel()
    target = np.asarray(y, dtype=np.float64).ravel()
    pred, target = pred - pred.mean(), target - target.mean()
    norm = np.sqrt((pred ** 2).sum() * (target ** 2).sum())
    return float((pred * target).sum() / norm) if norm > 0 else 0.0


def inner_scorer(estimator, scoring):
    """The inner folds' scorer: ``scoring`` when given, else the default for ``estimator``."""
    if scoring is None and not is_classifier(estimator):
        return prediction_correlation
    return check_scoring(estimator, scoring=scoring)


def score_counts(estimator, X, y, order, counts, splits, scoring, stop_early=True):
    """Inner-CV scores: one row per count, one column per fold (NaN: not scored).

    For count ``c`` the model is fitted on each fold's training rows less
    ``order[:c]`` (the ``c`` lowest-valued rows of the cut) and scored on all the
    fold's held-out rows. The first count (0, removing nothing) is scored on every
    fold; with ``stop_early``, another stops once it has failed to beat it in so
    many folds that it can no longer win most of them, since ``choose_count``
    would never take it: its remaining folds stay NaN and cost no fit.
    """
    scorer = inner_scorer(estimator, scoring)
    scores = np.full((len(counts), len(splits)), np.nan)
    may_lose = len(splits) - folds_to_win(len(splits))
    for i, count in enumerate(counts):
        dropped = np.zeros(len(np.asarray(y)), bool)
        dropped[order[:count]] = True
        for j, (train, test) in enumerate(splits):
            train = train[~dropped[train]]
            model = clone(estimator).fit(_safe_indexing(X, train), _safe_indexing(y, train))
            scores[i, j] = scorer(model, _safe_indexing(X, test), _safe_indexing(y, test))
            lost = (scores[i, :j + 1] <= scores[0, :j + 1]).sum()
            if stop_early and i > 0 and lost > may_lose:
                break
    return scores


def folds_to_win(n_folds):
    """How many folds a candidate must win against removing nothing: more than half."""
    return n_folds // 2 + 1


def choose_count(scores, min_gain_se=0.0):
    """The chosen candidate: best mean of removing nothing and those beating it in most folds.

    Parameters
    ----------
    scores : ndarray of shape (n_counts, n_folds)
        Inner-CV scores of the candidates (higher is better), smallest count first
        (the first removes nothing).
    min_gain_se : float, default=0.0
        Also required of a candidate: its mean gain over removing nothing at least
        this many standard errors of its fold gains (``gain_t_statistic``); 0: no
        such requirement.

    Returns
    -------
    index : int
        The chosen candidate: among removing nothing and the candidates that score
        strictly above it in more than half of the folds (and gain enough), the best
        mean score; the smallest count on a tie.
    """
    consistent = (scores > scores[0]).sum(axis=1) >= folds_to_win(scores.shape[1])  # NaN never wins
    if min_gain_se > 0:
        consistent &= gain_t_statistic(scores) >= min_gain_se
    consistent[0] = True
    means = np.where(consistent, scores.mean(axis=1), -np.inf)
    return int(np.flatnonzero(means >= means.max())[0])


def gain_t_statistic(scores):
    """Each candidate's mean gain over removing nothing, in standard errors of its fold gains.

    Parameters
    ----------
    scores : ndarray of shape (n_counts, n_folds)
        As in ``choose_count``.

    Returns
    -------
    t : ndarray of shape (n_counts,)
        ``mean(d) / (std(d, ddof=1) / sqrt(n_folds))`` for the fold gains ``d``;
        ``inf`` for an equal gain in every fold, 0 for none, NaN where a fold was
        not scored (or a single fold).
    """
    gains = scores - scores[0]
    mean = gains.mean(axis=1)
    spread = gains.std(axis=1, ddof=1) if gains.shape[1] > 1 else np.full(len(gains), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean / (spread / np.sqrt(gains.shape[1]))
    return np.where(spread == 0, np.where(mean > 0, np.inf, 0.0), t)


def _over_scored_folds(statistic, scores):
    """``statistic`` of each candidate's scored folds (NaN where none was scored)."""
    if scores.size == 0:
        return np.full(len(scores), np.nan)
    return statistic(scores, axis=1)  # every candidate has at least its first fold


def _indexable(data):
    """``data`` itself when rows can be taken from it (list, DataFrame, array), else an ndarray."""
    if isinstance(data, list) or hasattr(data, "iloc") or hasattr(data, "shape"):
        return data
    return np.asarray(data)


def choose_removal(estimator, X, y, order, fractions, cv, scoring, random_state, n_cut=None):
    """Cross-validate the candidate amounts and choose one.

    Parameters
    ----------
    estimator : estimator
        The wrapped model (cloned for every fit).
    X, y : array-like
        The training rows and their given targets.
    order : ndarray of int
        The rows a candidate removes from, in order: the cut's, lowest value
        first, then any rows past the cut that shares above 1 reach.
    fractions : sequence of float
        Shares of the cut to try (0 is always tried).
    cv : int or splitter
        The inner folds.
    scoring : str, callable or None
        As in scikit-learn; ``None``: the estimator's ``score`` for a classifier,
        ``prediction_correlation`` otherwise.
    random_state : int, RandomState instance or None
        Shuffles the inner folds.
    n_cut : int or None, default=None
        Rows of the cut (the first ``n_cut`` of ``order``); ``None``: all of them.

    Returns
    -------
    n_removed : int
        The chosen number of rows (the first ``n_removed`` of ``order``).
    results : dict
        ``"n_removed"``, ``"fraction"`` (of the cut), ``"mean_score"``,
        ``"std_score"`` and ``"fold_scores"`` per candidate, and ``"n_fits"``.
    """
    X, y = _indexable(X), _indexable(y)
    n_cut = len(order) if n_cut is None else n_cut
    counts = candidate_counts(n_cut, fractions, len(order))
    if len(counts) == 1:  # the cut is empty: nothing to choose, no fit
        scores = np.full((1, 0), np.nan)
        chosen = 0
    else:
        splits = inner_splits(estimator, X, y, cv, random_state)
        scores = score_counts(estimator, X, y, order, counts, splits, scoring)
        chosen = choose_count(scores, 0.0 if is_classifier(estimator) else MIN_GAIN_SE)
    results = {
        "n_removed": counts,
        "fraction": counts / max(n_cut, 1),
        "mean_score": _over_scored_folds(np.nanmean, scores),
        "std_score": _over_scored_folds(np.nanstd, scores),
        "fold_scores": scores,
        "n_fits": int(np.isfinite(scores).sum()),
    }
    return int(counts[chosen]), results
