"""CleanedEstimator: value and clean the training rows inside ``fit``, scikit-learn alone.

Because the valuation happens in ``fit``, a cross-validation or a grid search
values and cleans the rows of each training fold only: test rows are never valued,
dropped or weighted.
"""

from __future__ import annotations

import numpy as np
from sklearn import get_config
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, has_fit_parameter

from ._cleaning import (_CUT_DOC, _SHARE_DOC, LossValCleaner, default_valuer, groups_for_cap,
                        one_of_k_labels, value_weights)
from ._removal import check_removal, choose_removal
from ._veto import doubts_a_label

__all__ = ["CleanedEstimator"]

_MODES = ("drop", "weight")


def accepts_sample_weight(estimator):
    """Whether ``fit`` takes ``sample_weight``: its own, or a Pipeline's last step's."""
    if isinstance(estimator, Pipeline):
        final = estimator.steps[-1][1]
        return final != "passthrough" and has_fit_parameter(final, "sample_weight")
    return has_fit_parameter(estimator, "sample_weight")


def fit_weighted(estimator, X, y, sample_weight):
    """``estimator.fit`` with ``sample_weight``; a Pipeline passes it to its last step.

    With metadata routing enabled, a Pipeline gets ``sample_weight`` as such and
    routes it where its steps requested it.
    """
    if isinstance(estimator, Pipeline) and not get_config()["enable_metadata_routing"]:
        return estimator.fit(X, y, **{f"{estimator.steps[-1][0]}__sample_weight": sample_weight})
    return estimator.fit(X, y, sample_weight=sample_weight)


def _wrapped_has(method):
    """For ``available_if``: whether the wrapped estimator (fitted one if any) has ``method``."""
    def check(self):
        return hasattr(getattr(self, "estimator_", self.estimator), method)
    return check


class CleanedEstimator(MetaEstimatorMixin, BaseEstimator):
    """Fit any estimator on training rows cleaned by their LossVal values.

    ``fit`` values the training rows with ``valuer``, then fits a clone of
    ``estimator`` on the rows that survive the cut (``mode="drop"``), or on all
    rows with sample weights from the values (``mode="weight"``). Prediction
    methods delegate to the fitted clone; only the ones it has are available.
    Inside ``cross_val_score`` or ``GridSearchCV`` the valuation sees each
    training fold only, so no test row is valued, dropped or weighted.

    Parameters
    ----------
    estimator : estimator
        The model to train on the cleaned rows; cloned in ``fit``.
    valuer : estimator or None, default=None
        Values the rows; cloned in ``fit``; any estimator that sets
        ``data_values_``. ``None``: a ``LossValClassifier`` when ``estimator`` is a
        classifier, a ``LossValRegressor`` when it is a regressor (otherwise
        chosen by the target, as ``LossValCleaner`` does), seeded with
        ``random_state``.
    {cut}
        Used with ``mode="drop"``.
    {share}
        Used with ``mode="drop"``.
    mode : {{"drop", "weight"}}, default="drop"
        ``"drop"``: fit on the kept rows. ``"weight"``: fit on all rows with
        ``sample_weight`` = value clipped at 0 and divided by the mean value of
        the row's class (of all rows, for regression), so that each class keeps
        its total weight; a class smaller than average (``n_samples / n_classes``
        rows) keeps weights closer to 1, by the square of its size over the
        average size. Needs an
        ``estimator`` whose ``fit`` accepts ``sample_weight`` (a Pipeline gets it
        as ``<last step>__sample_weight``; with metadata routing enabled, as
        ``sample_weight``, routed where its steps request it).
    removal : {{"cv", "cut"}}, default="cv"
        How many of the cut's rows ``mode="drop"`` removes. ``"cv"``: an inner
        cross-validation of ``estimator`` alone chooses among
        ``removal_fractions`` of them (the lowest-valued first), removing nothing
        among the candidates. The cut is ``LossValCleaner(veto="agree")``'s, the
        wider one, since every candidate is checked (for a regression, capped at
        the share of rows the valuer estimates corrupted, as the strict cut is,
        and keeping at least 95 % of each tail of the targets, gross targets
        aside: beyond 12 robust standard deviations of the targets of the rows the
        valuer predicts alike).
        Each candidate is fitted on the inner training folds less its rows and scored on all the
        rows of the held-out fold (never cleaned). A candidate must score above
        removing nothing in more than half of the inner folds (a regressor's
        must also gain at least one standard error of its fold gains: on a
        heavy-tailed target a few folds' small gains can hide one large loss);
        among those (and removing nothing) the best mean score wins, the smaller
        amount on a tie.
        A classifier's candidates are tried only when the valuer's network
        doubts the label of some row of the cut (the strict veto,
        ``veto="doubt"``, would let it go); otherwise nothing is removed: the
        cut then holds hard rows, not wrong labels, and the inner folds'
        accuracy would decide by chance (a regressor's are always tried: its
        inner folds are scored by a correlation, not by a count of hits). The
        valuer is fitted once, on all rows. Cost: at
        most ``len(candidates) * cv`` fits of ``estimator`` (``n_inner_fits_``),
        none when the cut is empty or doubts no label; a candidate stops once it
        can no longer win most folds.
        ``"cut"``: remove them all, from the strict cut nothing checks
        (``LossValCleaner(veto="doubt")``, the default cleaner's).
    removal_fractions : sequence of float in [0, 3], default=(0.0, 0.5, 1.0, 1.5, 2.0)
        The shares of the cut's rows that ``removal="cv"`` tries (rounded to
        whole rows; 0 is always tried). A share above 1 reaches past the cut: the
        next lowest-valued rows that the cut's guards allow (the 2-means cut is
        an estimate of how many rows are wrong; the inner CV can check whether
        more is better); for a regressor on a table with gross target errors
        (gross targets on both sides of the valuer's predictions), the next
        lowest-valued rows, the wide veto and the tail floor lifted: the errors
        the network partly followed are what the veto agrees with, and they fill
        the tails.
    cv : int >= 2 or cross-validation splitter, default=5
        The inner folds of ``removal="cv"``: an int, shuffled k-fold seeded by
        ``random_state`` (stratified for a classifier whose classes all have at
        least ``cv`` rows), or a splitter with ``split``.
    scoring : str, callable or None, default=None
        The inner folds' score (as in ``cross_val_score``). ``None``: a
        classifier's own ``score`` (accuracy); for a regressor, the correlation
        of prediction and target, because R^2 on the noisy held-out targets
        ranks the model trained on the noise first (it is shrunk towards the
        mean, which wrong targets reward), while the correlation ignores that
        shrinkage (see ``skval._removal``).
    random_state : int, RandomState instance or None, default=None
        Seeds the default valuer (a given ``valuer`` keeps its own) and the
        inner folds.

    Attributes
    ----------
    estimator_ : estimator
        The fitted clone of ``estimator``.
    valuer_ : estimator
        The fitted clone of the valuer.
    data_values_ : ndarray of shape (n_samples,)
        The value of each training row; low values mark harmful rows.
    sample_indices_ : ndarray of shape (n_kept,)
        The rows ``estimator_`` was fitted on, as positions in ``X`` (all rows
        with ``mode="weight"``).
    sample_weight_ : ndarray of shape (n_samples,) or None
        The sample weights given to ``estimator_`` (``None`` with ``mode="drop"``).
    n_removed_ : int
        Rows removed (0 with ``mode="weight"``).
    removal_scores_ : dict or None
        With ``removal="cv"``, per candidate: ``"n_removed"``, ``"fraction"`` (of
        the cut), ``"mean_score"``, ``"std_score"`` and ``"fold_scores"`` (one
        row per candidate, one column per inner fold; no column when the cut was
        empty; NaN for the folds of a candidate not scored once it could no
        longer win most of them, the mean and standard deviation then over its
        scored folds). ``None`` otherwise.
    n_inner_fits_ : int
        Fits of ``estimator`` spent choosing the amount (the final fit aside).
    classes_ : ndarray of shape (n_classes,)
        The class labels, for a classifier.
    n_features_in_ : int
        Number of features seen during ``fit``.

    See Also
    --------
    LossValCleaner : The cleaning step alone, with imbalanced-learn's ``fit_resample``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skval import CleanedEstimator, LossValClassifier
    >>> from skval.evaluation import inject_noise
    >>> X, y = load_iris(return_X_y=True)
    >>> _, y_noisy, _ = inject_noise(X, y, rate=0.1, random_state=0)
    >>> model = CleanedEstimator(LogisticRegression(max_iter=1000),
    ...                          valuer=LossValClassifier(max_epochs=20, random_state=0),
    ...                          random_state=0)  # seeds the inner folds
    >>> model.fit(X, y_noisy).removal_scores_["n_removed"].tolist()  # the candidates scored
    [0, 6, 11, 16, 22]
    >>> model.n_removed_, model.sample_indices_.shape  # the inner CV chose
    (0, (150,))
    >>> model.predict(X[:3])
    array([0, 0, 0])
    """

    def __init__(self, estimator, valuer=None, *, cut="kmeans", max_class_share=0.5, mode="drop",
                 removal="cv", removal_fractions=(0.0, 0.5, 1.0, 1.5, 2.0), cv=5, scoring=None,
                 random_state=None):
        self.estimator = estimator
        self.valuer = valuer
        self.cut = cut
        self.max_class_share = max_class_share
        self.mode = mode
        self.removal = removal
        self.removal_fractions = removal_fractions
        self.cv = cv
        self.scoring = scoring
        self.random_state = random_state

    def fit(self, X, y, X_val=None, y_val=None):
        """Value the training rows, then fit a clone of ``estimator`` on the cleaned rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features (numeric: the valuer trains a network on them).
        y : array-like of shape (n_samples,)
            Training targets.
        X_val : array-like of shape (n_val, n_features), default=None
            Clean reference rows, passed to the valuer's ``fit``.
        y_val : array-like of shape (n_val,), default=None
            Their targets, passed to the valuer's ``fit``.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._check_mode()
        check_removal(self.removal, self.removal_fractions, self.cv)
        valuer = self._valuer(y)
        cleaner = LossValCleaner(valuer, cut=self.cut, max_class_share=self.max_class_share,
                                 veto="agree" if self.removal == "cv" else "doubt",
                                 random_state=self.random_state)
        cleaner.fit(X, y, X_val=X_val, y_val=y_val)
        self.valuer_, self.data_values_ = cleaner.estimator_, cleaner.data_values_
        self.n_removed_, self.removal_scores_, self.n_inner_fits_ = 0, None, 0
        if self.mode == "drop":
            self._fit_dropping(cleaner, X, y)
        else:
            self.sample_indices_ = np.arange(len(self.data_values_))
            self.sample_weight_ = value_weights(self.data_values_, groups_for_cap(self.valuer_, y))
            self.estimator_ = fit_weighted(clone(self.estimator), X, y, self.sample_weight_)
        return self

    def _fit_dropping(self, cleaner, X, y):
        """Choose how many of the cut's rows to remove (``removal``), then fit on the rest."""
        order = cleaner.removal_order()
        if self.removal == "cv" and not doubts_a_label(self.valuer_, X, y, order):
            order = order[:0]
        n_removed = n_cut = len(order)
        if self.removal == "cv":
            past_cut = int(np.ceil((max(self.removal_fractions) - 1) * n_cut))
            if past_cut > 0:
                order = cleaner.removal_order(X, y, past_cut=past_cut)
            n_removed, self.removal_scores_ = choose_removal(
                self.estimator, X, y, order, self.removal_fractions, self.cv, self.scoring,
                self.random_state, n_cut=n_cut)
            self.n_inner_fits_ = self.removal_scores_.pop("n_fits")
        kept = np.ones(len(self.data_values_), bool)
        kept[order[:n_removed]] = False
        self.n_removed_, self.sample_indices_ = n_removed, np.flatnonzero(kept)
        self.sample_weight_ = None
        cleaner.sample_indices_ = self.sample_indices_  # the local cleaner: its kept() takes any rows
        self.estimator_ = clone(self.estimator).fit(cleaner.kept(X), cleaner.kept(y))

    def _check_mode(self):
        if self.mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {self.mode!r}.")
        if self.mode == "weight" and not accepts_sample_weight(self.estimator):
            raise TypeError(
                f"mode='weight' needs an estimator whose fit accepts sample_weight (for a "
                f"Pipeline, its last step's); {type(self.estimator).__name__}.fit does not. "
                "Use mode='drop'."
            )

    def _valuer(self, y=None):
        """The valuer to clone: the given one, or the default for the estimator's type or,
        for an estimator of neither type, for the target ``y`` (None without ``y``)."""
        if self.valuer is not None:
            return self.valuer
        return default_valuer(self.random_state, estimator=self.estimator, y=one_of_k_labels(y))

    # ------------------------------------------------------------------ delegation
    @property
    def classes_(self):
        """The class labels of the fitted classifier."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.classes_

    @property
    def n_features_in_(self):
        """Number of features seen during ``fit``."""
        return self.estimator_.n_features_in_

    @property
    def feature_names_in_(self):
        """Names of the features seen during ``fit``, when ``X`` had string column names."""
        return self.estimator_.feature_names_in_

    @available_if(_wrapped_has("predict"))
    def predict(self, X):
        """Predict with the estimator fitted on the cleaned rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to predict.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            The wrapped estimator's predictions.
        """
        check_is_fitted(self)
        return self.estimator_.predict(X)

    @available_if(_wrapped_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities from the estimator fitted on the cleaned rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to predict.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities in the order of ``classes_``.
        """
        check_is_fitted(self)
        return self.estimator_.predict_proba(X)

    @available_if(_wrapped_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """Log of the class probabilities from the estimator fitted on the cleaned rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to predict.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probabilities in the order of ``classes_``.
        """
        check_is_fitted(self)
        return self.estimator_.predict_log_proba(X)

    @available_if(_wrapped_has("decision_function"))
    def decision_function(self, X):
        """Decision function of the estimator fitted on the cleaned rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            The wrapped estimator's decision function.
        """
        check_is_fitted(self)
        return self.estimator_.decision_function(X)

    @available_if(_wrapped_has("score"))
    def score(self, X, y, sample_weight=None):
        """Score of the estimator fitted on the cleaned rows (its own ``score``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Test rows.
        y : array-like of shape (n_samples,)
            Their true targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the test rows, passed on when given.

        Returns
        -------
        score : float
            Accuracy for a classifier and R^2 for a regressor, as the wrapped
            estimator defines it.
        """
        check_is_fitted(self)
        if sample_weight is None:
            return self.estimator_.score(X, y)
        return self.estimator_.score(X, y, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = inner.classifier_tags
        tags.regressor_tags = inner.regressor_tags
        tags.target_tags.required = True
        valuer = self._valuer()
        tags.target_tags.multi_output = inner.target_tags.multi_output and (
            valuer is None or get_tags(valuer).target_tags.multi_output)
        return tags


CleanedEstimator.__doc__ = CleanedEstimator.__doc__.format(cut=_CUT_DOC, share=_SHARE_DOC)
