"""CleanedEstimator: cleaning inside fit, delegation, sample weights, and no leak across folds."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from skval import CleanedEstimator, LossValClassifier, LossValRegressor


class FixedValuer(ClassifierMixin, BaseEstimator):
    """Values every row by its first feature: rows with a negative first feature are 'harmful'."""

    def fit(self, X, y):
        self.data_values_ = np.asarray(X, dtype=float)[:, 0].copy()
        return self


def two_blobs(n=40, seed=0):
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 2
    X = rng.normal(size=(n, 3)) + 3 * y[:, None]
    return X, y


# ----------------------------------------------------------------------------- quality

def test_cleaning_beats_the_noisy_fit_on_real_data(flipped_cancer):
    X, y_noisy, flipped, y_clean = flipped_cancer
    train, test = np.arange(len(y_noisy)) % 3 != 0, np.arange(len(y_noisy)) % 3 == 0
    base = make_pipeline(StandardScaler(), LogisticRegression())
    # removal="cut": the whole guarded cut (the default lets an inner CV choose how much)
    model = CleanedEstimator(base, removal="cut", random_state=0).fit(X[train], y_noisy[train])
    plain = clone(base).fit(X[train], y_noisy[train])
    assert isinstance(model.valuer_, LossValClassifier)
    assert flipped[train][model.sample_indices_].mean() < 0.1
    assert model.score(X[test], y_clean[test]) > plain.score(X[test], y_clean[test]) + 0.01


# ----------------------------------------------------------------------------- drop and weight

def test_drop_fits_the_clone_on_the_kept_rows():
    X, y = two_blobs()
    X[:5, 0] = -10.0  # the 5 lowest values
    model = CleanedEstimator(LogisticRegression(), valuer=FixedValuer(), cut=5,
                             removal="cut").fit(X, y)
    np.testing.assert_array_equal(model.sample_indices_, np.arange(5, 40))
    assert model.sample_weight_ is None
    reference = LogisticRegression().fit(X[5:], y[5:])
    np.testing.assert_allclose(model.estimator_.coef_, reference.coef_)
    np.testing.assert_array_equal(model.data_values_, X[:, 0])


def test_weight_mode_keeps_each_class_total_and_zeroes_negative_values():
    X, y = two_blobs()
    X_before = X.copy()
    model = CleanedEstimator(LogisticRegression(), valuer=FixedValuer(), mode="weight").fit(X, y)
    weights = model.sample_weight_
    np.testing.assert_array_equal(model.sample_indices_, np.arange(40))
    assert np.all(weights[X[:, 0] <= 0] == 0)
    for label in (0, 1):
        assert weights[y == label].mean() == pytest.approx(1.0)
    reference = LogisticRegression().fit(X, y, sample_weight=weights)
    np.testing.assert_allclose(model.estimator_.coef_, reference.coef_)
    np.testing.assert_array_equal(X, X_before)


def test_weight_mode_reaches_the_last_step_of_a_pipeline():
    X, y = two_blobs()
    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    model = CleanedEstimator(pipe, valuer=FixedValuer(), mode="weight").fit(X, y)
    reference = clone(pipe).fit(X, y, logisticregression__sample_weight=model.sample_weight_)
    np.testing.assert_allclose(model.estimator_[-1].coef_, reference[-1].coef_)
    assert not np.allclose(model.estimator_[-1].coef_, clone(pipe).fit(X, y)[-1].coef_)


@pytest.mark.parametrize("estimator", [KNeighborsClassifier(),
                                       make_pipeline(StandardScaler(), KNeighborsClassifier())])
def test_weight_mode_needs_sample_weight(estimator):
    X, y = two_blobs()
    with pytest.raises(TypeError, match="mode='weight' needs an estimator whose fit accepts "
                                        "sample_weight \\(for a Pipeline, its last step's\\); "
                                        f"{type(estimator).__name__}.fit does not"):
        CleanedEstimator(estimator, valuer=FixedValuer(), mode="weight").fit(X, y)


def test_invalid_mode():
    X, y = two_blobs()
    with pytest.raises(ValueError, match="mode must be one of \\('drop', 'weight'\\), got 'keep'"):
        CleanedEstimator(LogisticRegression(), valuer=FixedValuer(), mode="keep").fit(X, y)


# ----------------------------------------------------------------------------- delegation

def test_delegates_only_what_the_wrapped_estimator_has():
    X, y = two_blobs()
    svc = CleanedEstimator(LinearSVC(), valuer=FixedValuer(), cut=4).fit(X, y)
    assert hasattr(svc, "decision_function") and not hasattr(svc, "predict_proba")
    np.testing.assert_array_equal(svc.classes_, [0, 1])
    assert svc.n_features_in_ == 3
    np.testing.assert_allclose(svc.decision_function(X), svc.estimator_.decision_function(X))
    ridge = CleanedEstimator(Ridge(), valuer=FixedValuer(), cut=4).fit(X, y.astype(float))
    assert not hasattr(ridge, "predict_proba") and not hasattr(ridge, "decision_function")
    assert not hasattr(ridge, "classes_")
    logistic = CleanedEstimator(LogisticRegression(), valuer=FixedValuer(), cut=4).fit(X, y)
    np.testing.assert_allclose(logistic.predict_proba(X), logistic.estimator_.predict_proba(X))
    assert logistic.score(X, y) == logistic.estimator_.score(X, y)


def test_unfitted_prediction_raises_not_fitted():
    with pytest.raises(NotFittedError):
        CleanedEstimator(LogisticRegression()).predict(np.zeros((2, 3)))


def test_default_valuer_follows_the_wrapped_estimator():
    X, y = two_blobs(60)
    clf = CleanedEstimator(LogisticRegression(), cut=0.1, removal="cut", random_state=0).fit(X, y)
    # two clean blobs: the network confidently agrees with every label, so the guard (veto)
    # keeps all 60 rows (the unguarded cut removed 6)
    assert isinstance(clf.valuer_, LossValClassifier) and len(clf.sample_indices_) == 60
    reg = CleanedEstimator(Ridge(), cut=0.1, random_state=0).fit(X, y.astype(float))
    assert isinstance(reg.valuer_, LossValRegressor)


def test_dataframe_feature_names_reach_the_wrapped_estimator():
    pd = pytest.importorskip("pandas")
    X, y = two_blobs()
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    model = CleanedEstimator(LogisticRegression(), valuer=FixedValuer(), cut=4).fit(frame, y)
    assert list(model.feature_names_in_) == ["a", "b", "c"]


# ----------------------------------------------------------------------------- no leak across folds

SEEN = {"valued": [], "fitted": [], "predicted": []}


class SpyValuer(ClassifierMixin, BaseEstimator):
    """Records the row ids (column 0) it values; the lowest ids get the lowest values."""

    def fit(self, X, y):
        ids = np.asarray(X)[:, 0].astype(int)
        SEEN["valued"].append(ids)
        self.data_values_ = ids.astype(float)
        return self


class SpyModel(ClassifierMixin, BaseEstimator):
    """Records the row ids it is fitted on and asked to predict."""

    def fit(self, X, y):
        SEEN["fitted"].append(np.asarray(X)[:, 0].astype(int))
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        SEEN["predicted"].append(np.asarray(X)[:, 0].astype(int))
        return np.full(len(X), self.classes_[0])


@pytest.fixture
def id_data():
    for calls in SEEN.values():
        calls.clear()
    rng = np.random.RandomState(0)
    X = np.column_stack([np.arange(50), rng.normal(size=50)])
    return X, np.arange(50) % 2


def test_cross_validation_values_and_drops_training_rows_only(id_data):
    X, y = id_data
    model = CleanedEstimator(SpyModel(), valuer=SpyValuer(), cut=5, removal="cut")
    result = cross_validate(model, X, y, cv=KFold(5), return_indices=True)
    folds = result["indices"]
    assert len(SEEN["valued"]) == len(SEEN["fitted"]) == len(SEEN["predicted"]) == 5
    for train, test, valued, fitted, predicted in zip(folds["train"], folds["test"], SEEN["valued"],
                                                      SEEN["fitted"], SEEN["predicted"]):
        np.testing.assert_array_equal(valued, train)        # valued: exactly the training fold
        np.testing.assert_array_equal(fitted, train[5:])    # dropped: its 5 lowest, none of test
        np.testing.assert_array_equal(predicted, test)      # every test row predicted, none dropped


def test_grid_search_values_within_each_training_fold(id_data):
    X, y = id_data
    folds = list(KFold(5).split(X))
    search = GridSearchCV(CleanedEstimator(SpyModel(), valuer=SpyValuer(), removal="cut"),
                          {"cut": [2, 5]}, cv=folds).fit(X, y)
    cv_valued = SEEN["valued"][:-1]             # the last fit is the refit on all rows
    assert len(cv_valued) == 10
    train_folds = [set(train) for train, _ in folds]
    for valued in cv_valued:
        assert set(valued) in train_folds
    for fitted in SEEN["fitted"][:-1]:       # each model fit inside one training fold
        assert any(set(fitted) <= train for train in train_folds)
    np.testing.assert_array_equal(SEEN["valued"][-1], np.arange(50))
    assert search.best_estimator_.sample_indices_.min() == search.best_params_["cut"]


def test_weight_mode_moves_a_rare_class_less_from_1():
    X = np.column_stack([np.r_[0.0, 1.0, 2.0, 3.0, np.linspace(1, 2, 16)], np.zeros(20)])
    y = np.array([1] * 4 + [0] * 16)     # class 1: 4 rows, the average class 10
    model = CleanedEstimator(LogisticRegression(), valuer=FixedValuer(), mode="weight").fit(X, y)
    rare = X[:4, 0] / X[:4, 0].mean()
    np.testing.assert_allclose(model.sample_weight_[:4], 1 + 0.4 ** 2 * (rare - 1))
    np.testing.assert_allclose(model.sample_weight_[4:], X[4:, 0] / X[4:, 0].mean())
