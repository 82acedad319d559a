"""Acting on the values: LossValCleaner removes harmful rows (imbalanced-learn's protocol).

The cut has two stages. First the candidates: the low cluster of an exact 1-D
2-means of the values (``cut="kmeans"``), the lowest fraction or the lowest count
of rows. Then a cap per class, its lowest-valued candidates first: a class of at
least average size (``n_samples / n_classes`` rows) loses at most
``max_class_share`` of its rows, a smaller class less, by the square of its
size over the average size. A rare class gets low values for being rare, not for
being wrong (on clean imbalanced data the minority takes most of the lowest
values, and removing even a few of its rows cost ROC AUC); the cap keeps it.
The rules themselves live in ``skval._selection``, shared with the command line.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np
from sklearn.base import BaseEstimator, clone, is_classifier, is_regressor
from sklearn.utils import _safe_indexing
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import (
    _check_feature_names,
    _check_feature_names_in,
    _check_n_features,
    check_is_fitted,
)

from ._classifier import LossValClassifier
from ._guard import guarded_cut, rows_past_cut
from ._regressor import LossValRegressor
from ._selection import check_cut, check_share, class_groups, size_factors, targets_are_classes
from ._veto import check_veto

__all__ = ["LossValCleaner"]

_CUT_DOC = """cut : "kmeans", float in (0, 1) or int >= 0, default="kmeans"
        Which rows are removal candidates: ``"kmeans"``, the low cluster of an
        exact 1-D 2-means split of the values (none when all values are equal),
        and of it at most as many rows as the valuer estimates corrupted, the
        lowest-valued (``n_samples * sum(noise_shares_)`` when the valuer has
        canaries; a regressor without them, ``n_samples`` times the share of
        swapped targets its residuals allow; not in a classifier's wide cut,
        ``veto="agree"``, whose candidates ``CleanedEstimator``'s
        cross-validation checks); a float, that fraction
        of the rows with the lowest values; an int, that many rows with the
        lowest values."""

_SHARE_DOC = """max_class_share : float in [0, 1), default=0.5
        Most of a class that is removed (its lowest-valued candidates first):
        ``max_class_share`` of a class of at least average size
        (``n_samples / n_classes`` rows), less of a smaller class, by the square
        of its size over the average size (a class of half the average size loses
        at most a quarter of that share). A rare class gets low values for being
        rare, not for being wrong; this keeps it. With a regression target, the cap applies to all
        rows. The cap can leave fewer rows removed than ``cut`` asks for."""


# ----------------------------------------------------------------------------- checks

def n_rows(data):
    """Number of rows of an array-like (a list, an ndarray, a DataFrame...)."""
    return data.shape[0] if hasattr(data, "shape") else len(np.asarray(data))


def check_data_values(valuer, n_samples):
    """The fitted valuer's ``data_values_``, checked to be one finite value per row."""
    values = getattr(valuer, "data_values_", None)
    if values is None:
        raise TypeError(
            f"the valuer {type(valuer).__name__} has no data_values_ after fit; "
            "pass a LossValClassifier, a LossValRegressor or an estimator that sets data_values_."
        )
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (n_samples,):
        raise ValueError(f"the valuer's data_values_ has shape {values.shape}, expected ({n_samples},).")
    if not np.isfinite(values).all():
        raise ValueError("the valuer's data_values_ contain NaN or infinity.")
    return values


# ----------------------------------------------------------------------------- weights

def value_weights(values, groups):
    """Sample weights from values: clipped at 0 and divided by their group's mean value.

    Every group (class) keeps its total weight, so a class with low values is
    not down-weighted as a whole. A group smaller than average keeps weights
    closer to 1, by its size factor (as the cap on removal does);
    a group whose values are all 0 gets weight 1.
    """
    weights = np.clip(values, 0, None)
    for group, factor in size_factors(groups).items():
        members = groups == group
        mean = weights[members].mean()
        relative = weights[members] / mean if mean > 0 else 1.0
        weights[members] = 1.0 + factor * (relative - 1.0)
    return weights


# ----------------------------------------------------------------------------- the valuer

def default_valuer(random_state, *, estimator=None, y=None):
    """The valuer used when none is given: one rule for the cleaner and ``CleanedEstimator``.

    Parameters
    ----------
    random_state : int, RandomState instance or None
        Seeds the valuer.
    estimator : estimator or None, default=None
        The model to be trained on the cleaned rows: a classifier gets a
        LossValClassifier, a regressor a LossValRegressor.
    y : array-like or None, default=None
        Decides when ``estimator`` does not: class labels (see
        ``targets_are_classes``) get a LossValClassifier, other targets a
        LossValRegressor.

    Returns
    -------
    valuer : LossValClassifier, LossValRegressor or None
        ``None`` when neither ``estimator`` nor ``y`` decides.
    """
    if estimator is not None and (is_classifier(estimator) or is_regressor(estimator)):
        classes = is_classifier(estimator)
    elif y is not None:
        classes = targets_are_classes(y)
    else:
        return None
    return (LossValClassifier if classes else LossValRegressor)(random_state=random_state)


def one_of_k_labels(y):
    """Class numbers of a one-hot ``y`` (imblearn's one-vs-all encoding), else ``y`` itself.

    A 2-D 0/1 target with exactly one 1 per row is valued as its column numbers, as
    imbalanced-learn's samplers do; the rows kept are returned in the given encoding.
    """
    if y is None or type_of_target(y) != "multilabel-indicator":
        return y
    matrix = np.asarray(y.toarray() if hasattr(y, "toarray") else y)
    return matrix.argmax(axis=1) if (matrix.sum(axis=1) == 1).all() else y


def imblearn_tags(tags):
    """``tags`` as imbalanced-learn's ``Tags`` (a sampler that keeps frames and its row
    numbers), or unchanged without imbalanced-learn."""
    try:
        from imblearn.utils._tags import InputTags, SamplerTags, Tags
    except ImportError:
        return tags
    names = {f.name for f in fields(Tags)}
    input_tags = InputTags(**{f.name: getattr(tags.input_tags, f.name)
                              for f in fields(tags.input_tags)
                              if f.name in {g.name for g in fields(InputTags)}})
    input_tags.dataframe = True
    return Tags(**{f.name: getattr(tags, f.name) for f in fields(tags)
                   if f.name in names and f.name != "input_tags"},
                input_tags=input_tags, sampler_tags=SamplerTags(sample_indices=True))


def groups_for_cap(valuer, y):
    """The classes of ``y`` when the valuing is a classification, else one group."""
    by_class = is_classifier(valuer) or (not is_regressor(valuer) and targets_are_classes(y))
    return class_groups(y, by_class)


def fit_valuer(estimator, X, y, X_val, y_val, random_state):
    """Clone ``estimator`` (or build the default one) and fit it; returns it and its values."""
    if y is None:
        raise ValueError("valuing rows requires y to be passed, but the target y is None.")
    valuer = default_valuer(random_state, y=y) if estimator is None else clone(estimator)
    if X_val is None and y_val is None:
        valuer.fit(X, y)
    else:
        valuer.fit(X, y, X_val=X_val, y_val=y_val)
    return valuer, check_data_values(valuer, n_rows(y))


# ----------------------------------------------------------------------------- the resampler

class LossValCleaner(BaseEstimator):
    """Remove the training rows with the lowest LossVal values.

    A resampler with imbalanced-learn's ``fit_resample(X, y)`` protocol: a step
    of ``imblearn.pipeline.Pipeline`` (applied when fitting only), or a plain
    object without imbalanced-learn. It fits a LossVal estimator on ``(X, y)``,
    takes the removal candidates that ``cut`` selects from its ``data_values_``
    and removes them, at most ``max_class_share`` of any class, less the rows
    the guards keep (``veto`` and the class floor).

    Parameters
    ----------
    estimator : estimator or None, default=None
        The valuer, cloned before fitting: any estimator that sets
        ``data_values_`` in ``fit``. ``None``: a ``LossValClassifier`` when ``y``
        holds class labels (binary, or multiclass of a non-float dtype), else a
        ``LossValRegressor``, seeded with ``random_state``.
    {cut}
    {share}
    veto : {{"doubt", "agree"}} or None, default="doubt"
        Which of the cut's rows the valuer's own network keeps (``skval._veto``).
        ``"doubt"``: a row is removed only where the network doubts it: for
        classification, its given label gets less probability than that label's
        mean over its rows and than its share of the rows; for regression, its
        residual lies beyond 3 robust standard deviations while its target lies
        in the central 90 % (and not beyond its prediction on the prediction's
        side of the median: a squared loss shrinks genuine extremes). Use it when
        nothing checks the cut. ``"agree"``: only the rows the network
        confidently agrees with are kept (classification: it predicts the given
        label above that label's mean probability and the evidence is not on the
        label side; regression: the target lies beyond its prediction on the
        prediction's side of the median), a wider cut for a caller that checks
        it (``CleanedEstimator``'s inner cross-validation), which the noise
        estimate caps for a regressor only (``cut``), and where each tail of a
        regressor's targets (beyond their 5th or 95th percentile) keeps at least
        95 % of its rows, neither keeping a gross target (beyond 12 robust
        standard deviations of the targets of the rows the network predicts
        alike: a moved target, a wrong unit). ``None``: no veto.
        Whatever ``veto``, every class keeps at least half of its rows.
    random_state : int, RandomState instance or None, default=None
        Seeds the default valuer (a given ``estimator`` keeps its own).

    Attributes
    ----------
    estimator_ : estimator
        The fitted valuer.
    n_features_in_ : int
        Number of features of ``X``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        The column names of ``X``, when it is a DataFrame with string column names.
    data_values_ : ndarray of shape (n_samples,)
        The value of each row of ``X``; low values mark harmful rows.
    sample_indices_ : ndarray of shape (n_kept,)
        The rows kept, as positions in ``X``, in increasing order.

    See Also
    --------
    CleanedEstimator : Values, cleans and fits a wrapped estimator in one ``fit``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skval import LossValClassifier, LossValCleaner
    >>> from skval.evaluation import inject_noise
    >>> X, y = load_iris(return_X_y=True)
    >>> _, y_noisy, noisy = inject_noise(X, y, rate=0.1, random_state=0)  # 15 labels flipped
    >>> cleaner = LossValCleaner(LossValClassifier(max_epochs=20, random_state=0))
    >>> X_kept, y_kept = cleaner.fit_resample(X, y_noisy)
    >>> X_kept.shape, cleaner.data_values_.shape
    ((141, 4), (150,))
    >>> int(noisy.sum() - cleaner.kept(noisy).sum())  # all 9 rows removed were flipped
    9
    """

    _estimator_type = "sampler"

    def __init__(self, estimator=None, *, cut="kmeans", max_class_share=0.5, veto="doubt",
                 random_state=None):
        self.estimator = estimator
        self.cut = cut
        self.max_class_share = max_class_share
        self.veto = veto
        self.random_state = random_state

    def fit(self, X, y, X_val=None, y_val=None):
        """Value the rows of ``(X, y)`` and choose the ones to keep.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features.
        y : array-like of shape (n_samples,)
            Training targets.
        X_val : array-like of shape (n_val, n_features), default=None
            Clean reference rows, passed to the valuer's ``fit``.
        y_val : array-like of shape (n_val,), default=None
            Their targets, passed to the valuer's ``fit``.

        Returns
        -------
        self : object
            The fitted cleaner.
        """
        check_share(self.max_class_share)
        check_veto(self.veto)
        if y is not None:
            check_cut(self.cut, n_rows(y))
        y = one_of_k_labels(y)
        self.estimator_, self.data_values_ = fit_valuer(
            self.estimator, X, y, X_val, y_val, self.random_state)
        _check_n_features(self, X, reset=True)
        _check_feature_names(self, X, reset=True)
        groups = groups_for_cap(self.estimator_, y)
        removed = guarded_cut(self.estimator_, X, np.asarray(y), self.data_values_, groups,
                              self.cut, self.max_class_share, self.veto)
        self.sample_indices_ = np.flatnonzero(~removed)
        return self

    def removal_order(self, X=None, y=None, *, past_cut=0):
        """The removed rows, as positions in ``X``, lowest value first.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), default=None
            The rows the cleaner was fitted on; needed with ``past_cut``.
        y : array-like of shape (n_samples,), default=None
            Their targets; needed with ``past_cut``.
        past_cut : int, default=0
            Also up to this many more rows after the cut's: the lowest-valued rows
            past the cut that the same guards allow (fewer where the class floor
            or the cap keeps them; vetoed rows are never taken, but for a
            regressor's gross targets, which the strict veto lets go in pairs among
            the rows so many more reach, as in the cut; past a regressor's wide cut
            on a table with gross errors (gross targets on both sides of the
            predictions), neither the wide veto nor the tail floor applies).

        Returns
        -------
        rows : ndarray of int
            The rows not in ``sample_indices_``, sorted by value (ties in row
            order), then the rows past the cut, sorted by value.
        """
        check_is_fitted(self, "sample_indices_")
        removed = np.ones(len(self.data_values_), bool)
        removed[self.sample_indices_] = False
        order = self._by_value(np.flatnonzero(removed))
        if past_cut <= 0 or len(order) == 0:
            return order
        if X is None or y is None:
            raise ValueError("removal_order(past_cut=...) needs the X and y the cleaner was "
                             "fitted on.")
        y = one_of_k_labels(y)
        more = rows_past_cut(self.estimator_, X, np.asarray(y), self.data_values_,
                             groups_for_cap(self.estimator_, y), removed, past_cut,
                             self.max_class_share, self.veto)
        return np.concatenate([order, more])

    def _by_value(self, rows):
        return rows[np.argsort(self.data_values_[rows], kind="stable")]

    def fit_resample(self, X, y, X_val=None, y_val=None):
        """Value the rows, then return the kept rows of ``X`` and ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features; a DataFrame comes back as a DataFrame.
        y : array-like of shape (n_samples,)
            Training targets; a Series comes back as a Series.
        X_val : array-like of shape (n_val, n_features), default=None
            Clean reference rows, passed to the valuer's ``fit``.
        y_val : array-like of shape (n_val,), default=None
            Their targets, passed to the valuer's ``fit``.

        Returns
        -------
        X_resampled : array-like of shape (n_kept, n_features)
            The kept rows of ``X``, in their order in ``X``.
        y_resampled : array-like of shape (n_kept,)
            Their targets.
        """
        self.fit(X, y, X_val=X_val, y_val=y_val)
        return self.kept(X), self.kept(y)

    def kept(self, data):
        """The kept rows of ``data`` (``X``, ``y`` or anything row-aligned with them).

        Parameters
        ----------
        data : array-like, DataFrame or Series of length n_samples
            Rows in the order of the ``X`` given to ``fit``.

        Returns
        -------
        kept : array-like of length n_kept
            Its rows at ``sample_indices_``, of the same type (a list, an ndarray,
            a DataFrame or a Series; other array-likes become an ndarray).
        """
        check_is_fitted(self, "sample_indices_")
        if n_rows(data) != len(self.data_values_):
            raise ValueError(f"data has {n_rows(data)} rows, but the cleaner was fitted on "
                             f"{len(self.data_values_)}.")
        if not (isinstance(data, list) or hasattr(data, "iloc") or hasattr(data, "shape")):
            data = np.asarray(data)
        return _safe_indexing(data, self.sample_indices_)

    def get_feature_names_out(self, input_features=None):
        """The names of the features of the rows returned: those of ``X``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            The names of ``X``'s features; ``None``: ``feature_names_in_`` when
            ``X`` was a DataFrame, else ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str objects
            The same names: the cleaner removes rows, never columns.
        """
        check_is_fitted(self, "n_features_in_")
        return _check_feature_names_in(self, input_features)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "sampler"
        tags.target_tags.required = True
        return imblearn_tags(tags)


LossValCleaner.__doc__ = LossValCleaner.__doc__.format(cut=_CUT_DOC, share=_SHARE_DOC)
