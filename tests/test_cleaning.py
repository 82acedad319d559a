"""LossValCleaner: the cut, the cap per class, the types it returns, imbalanced-learn's Pipeline."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from skval import LossValClassifier, LossValCleaner, LossValRegressor


class FixedValuer(ClassifierMixin, BaseEstimator):
    """A valuer whose ``data_values_`` are given: the cut is tested without training a network."""

    def __init__(self, values=None):
        self.values = values

    def fit(self, X, y):
        self.data_values_ = np.asarray(self.values, dtype=float)
        return self


class FixedRegressionValuer(RegressorMixin, FixedValuer):
    pass


class NoValues(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        return self


def removed(cleaner, n):
    return np.setdiff1d(np.arange(n), cleaner.sample_indices_)


# ----------------------------------------------------------------------------- quality

def test_removes_mostly_flipped_labels_on_real_data(flipped_cancer):
    X, y, flipped, _ = flipped_cancer
    valuer = LossValClassifier(random_state=0)
    X_before, y_before = X.copy(), y.copy()
    cleaner = LossValCleaner(valuer)
    X_kept, y_kept = cleaner.fit_resample(X, y)

    gone = removed(cleaner, len(y))
    assert flipped[gone].mean() > 0.7                      # what it removes is mostly noise
    assert flipped[cleaner.sample_indices_].mean() < 0.1   # from 20% noise to under 10%
    np.testing.assert_array_equal(X_kept, X[cleaner.sample_indices_])
    np.testing.assert_array_equal(y_kept, y[cleaner.sample_indices_])
    # inputs untouched, the given valuer cloned, not fitted
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)
    assert not hasattr(valuer, "data_values_")
    assert cleaner.estimator_ is not valuer
    np.testing.assert_array_equal(cleaner.data_values_, cleaner.estimator_.data_values_)


def test_default_valuer_follows_the_target():
    X, y = load_diabetes(return_X_y=True)
    X, y = X[:120], y[:120]   # integral float targets: regression, not 100 classes
    # veto=None: the plain cut's count (the veto would keep some of the 12 rows)
    cleaner = LossValCleaner(cut=0.1, veto=None, random_state=0).fit(X, y)
    assert isinstance(cleaner.estimator_, LossValRegressor)
    assert len(cleaner.sample_indices_) == 108
    cleaner = LossValCleaner(cut=0.1, random_state=0).fit(X, (y > 140).astype(int))
    assert isinstance(cleaner.estimator_, LossValClassifier)


# ----------------------------------------------------------------------------- the cut

def test_fraction_and_count_remove_the_lowest_values():
    values = np.array([5.0, 0.1, 3.0, 0.2, 4.0, 0.3, 6.0, 7.0, 8.0, 9.0])
    # labels spread so that no class loses more than half (the class floor): rows 1, 3, 5
    # were 3 of the 5 rows of one class with the earlier labels [0, 1] * 5
    X, y = np.zeros((10, 1)), np.array([0, 0, 1, 1, 0, 0, 1, 1, 0, 0])
    for cut in (0.3, 3):
        cleaner = LossValCleaner(FixedValuer(values), cut=cut, max_class_share=0.9).fit(X, y)
        np.testing.assert_array_equal(removed(cleaner, 10), [1, 3, 5])
        np.testing.assert_array_equal(cleaner.sample_indices_, [0, 2, 4, 6, 7, 8, 9])
    assert len(LossValCleaner(FixedValuer(values), cut=0).fit(X, y).sample_indices_) == 10


def test_kmeans_removes_the_low_cluster():
    values = np.array([1.0, 0.95, 0.05, 1.1, 0.0, 1.05, 0.9, 0.1, 1.0, 0.98])
    cleaner = LossValCleaner(FixedValuer(values), max_class_share=0.9)
    cleaner.fit(np.zeros((10, 1)), np.array([0, 1] * 5))
    np.testing.assert_array_equal(removed(cleaner, 10), [2, 4, 7])


def test_kmeans_removes_nothing_when_all_values_are_equal():
    cleaner = LossValCleaner(FixedValuer(np.ones(8))).fit(np.zeros((8, 1)), np.array([0, 1] * 4))
    assert len(cleaner.sample_indices_) == 8


def test_cap_is_max_class_share_for_a_class_of_average_size():
    y = np.array([0, 1] * 10)
    values = np.concatenate([np.linspace(0, 0.1, 10), np.linspace(1, 2, 10)])
    cleaner = LossValCleaner(FixedValuer(values), cut=10).fit(np.zeros((20, 1)), y)
    # 10 candidates, 5 of each class; each class (10 rows, the average size) may lose 5
    np.testing.assert_array_equal(removed(cleaner, 20), np.arange(10))
    cleaner = LossValCleaner(FixedValuer(values), cut=10, max_class_share=0.3).fit(np.zeros((20, 1)), y)
    np.testing.assert_array_equal(removed(cleaner, 20), [0, 1, 2, 3, 4, 5])   # 3 of each class


def test_rare_class_is_protected_by_the_square_of_its_relative_size():
    # the 8 rows of class 1 (the average class has 12) have the lowest values of all
    y = np.array([1] * 8 + [0] * 16)
    values = np.concatenate([np.linspace(0.1, 0.8, 8), np.linspace(1, 2, 16)])
    X = np.zeros((24, 1))
    cleaner = LossValCleaner(FixedValuer(values), cut=10, max_class_share=0.9).fit(X, y)
    # class 1 may lose floor(0.9 * (8/12)**2 * 8) = 3 rows; no other row fills the freed slots
    np.testing.assert_array_equal(removed(cleaner, 24), [0, 1, 2, 8, 9])
    cleaner = LossValCleaner(FixedValuer(values), cut=10).fit(X, y)
    np.testing.assert_array_equal(removed(cleaner, 24), [0, 8, 9])            # floor(1.78) = 1
    cleaner = LossValCleaner(FixedValuer(values), cut=10, max_class_share=0.0).fit(X, y)
    assert len(cleaner.sample_indices_) == 24


def test_rare_class_of_real_imbalanced_data_keeps_its_rows():
    from sklearn.datasets import make_classification

    X, y = make_classification(1200, n_features=20, n_informative=8, weights=[0.96], flip_y=0.0,
                               random_state=0)
    cleaner = LossValCleaner(random_state=0).fit(X, y)
    minority = y == 1
    # the minority takes most of the lowest LossVal weights of clean imbalanced data...
    weights = cleaner.estimator_.weights_
    assert np.median(weights[minority]) < np.percentile(weights[~minority], 5)
    # ...far fewer of the lowest values, which the canaries calibrate (minority harm 10 -> 4)
    lowest = np.argsort(cleaner.data_values_)[:120]
    assert minority[lowest].mean() / minority.mean() < 5
    # clean: little noise estimated (0.002 of labels; 0.078 of features, whose Gaussian
    # spread reaches the feature canaries' median on some clean rows)
    assert cleaner.estimator_.noise_shares_.max() < 0.1
    # the cut keeps every minority row: it may lose floor(0.5 * (48 / 600) ** 2 * 48) = 0 rows
    assert set(np.flatnonzero(minority)) <= set(cleaner.sample_indices_)


def test_regression_cap_counts_all_rows():
    values = np.arange(10.0)
    y = np.linspace(0, 1, 10)
    cleaner = LossValCleaner(FixedRegressionValuer(values), cut=8, max_class_share=0.5)
    cleaner.fit(np.zeros((10, 1)), y)
    np.testing.assert_array_equal(removed(cleaner, 10), [0, 1, 2, 3, 4])


# ----------------------------------------------------------------------------- types

def test_dataframe_series_and_lists_keep_their_type():
    pd = pytest.importorskip("pandas")
    values = np.array([0.1, 1.0, 1.0, 0.2, 1.0, 1.0])
    X = pd.DataFrame({"a": range(6), "b": range(6, 12)}, index=list("uvwxyz"))
    y = pd.Series([0, 1, 0, 1, 0, 1], index=X.index, name="label")
    cleaner = LossValCleaner(FixedValuer(values), cut=2)
    X_kept, y_kept = cleaner.fit_resample(X, y)
    assert list(X_kept.index) == list("vwyz") and list(X_kept.columns) == ["a", "b"]
    assert y_kept.name == "label" and list(y_kept.index) == list("vwyz")
    X_kept, y_kept = cleaner.fit_resample(X.to_numpy().tolist(), y.tolist())
    assert X_kept == [[1, 7], [2, 8], [4, 10], [5, 11]] and y_kept == [1, 0, 0, 1]


def test_kept_checks_the_number_of_rows():
    cleaner = LossValCleaner(FixedValuer(np.ones(4))).fit(np.zeros((4, 1)), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="data has 3 rows, but the cleaner was fitted on 4"):
        cleaner.kept(np.zeros(3))


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("params, error, message", [
    ({"cut": "median"}, ValueError, "cut must be 'kmeans', a float in \\(0, 1\\) or an int >= 0, got 'median'"),
    ({"cut": True}, TypeError, "cut must be 'kmeans'"),
    ({"cut": 1.0}, ValueError, "cut as a fraction of rows must be in \\(0, 1\\), got 1.0"),
    ({"cut": 0.0}, ValueError, "cut as a fraction of rows must be in \\(0, 1\\)"),
    ({"cut": 4}, ValueError, "cut as a count of rows must be in \\[0, 4\\), got 4"),
    ({"cut": -1}, ValueError, "cut as a count of rows"),
    ({"max_class_share": 1.0}, ValueError, "max_class_share must be in \\[0, 1\\), got 1.0"),
    ({"max_class_share": "half"}, TypeError, "max_class_share must be a float in \\[0, 1\\), got 'half'"),
    ({"estimator": NoValues()}, TypeError, "the valuer NoValues has no data_values_ after fit"),
    ({"estimator": FixedValuer([1.0, 2.0])}, ValueError, "data_values_ has shape \\(2,\\), expected \\(4,\\)"),
    ({"estimator": FixedValuer([1.0, np.nan, 1, 1])}, ValueError, "data_values_ contain NaN"),
])
def test_invalid_parameters(params, error, message):
    params = {"estimator": FixedValuer(np.ones(4)), **params}
    with pytest.raises(error, match=message):
        LossValCleaner(**params).fit(np.zeros((4, 1)), [0, 1, 0, 1])


def test_y_none_is_refused():
    with pytest.raises(ValueError, match="requires y to be passed"):
        LossValCleaner().fit_resample(np.zeros((4, 1)), None)


def test_unfitted_kept_raises_not_fitted():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        LossValCleaner().kept(np.zeros(3))


# ----------------------------------------------------------------------------- imbalanced-learn

class RowCounter(ClassifierMixin, BaseEstimator):
    """Final step that records the rows it was fitted on and predicts the majority class."""

    def fit(self, X, y):
        self.fit_rows_ = np.asarray(X)[:, 0].copy()
        self.classes_ = np.unique(y)
        self.majority_ = np.bincount(y).argmax()
        return self

    def predict(self, X):
        return np.full(len(X), self.majority_)


def test_step_of_an_imblearn_pipeline():
    imblearn_pipeline = pytest.importorskip("imblearn.pipeline")
    X = np.column_stack([np.arange(10.0), np.ones(10)])   # column 0: the row number
    y = np.array([0, 1] * 5)
    values = np.array([1.0, 0.0, 1.0, 1.0, 0.1, 1.0, 1.0, 1.0, 1.0, 1.0])
    pipe = imblearn_pipeline.Pipeline([("clean", LossValCleaner(FixedValuer(values), cut=2)),
                                       ("model", RowCounter())]).fit(X, y)
    np.testing.assert_array_equal(pipe["model"].fit_rows_, [0, 2, 3, 5, 6, 7, 8, 9])
    assert pipe.predict(X).shape == (10,)   # prediction is not resampled


def test_imblearn_pipeline_with_the_default_valuer_helps_on_noisy_labels(flipped_cancer):
    imblearn_pipeline = pytest.importorskip("imblearn.pipeline")
    X, y_noisy, _, y_clean = flipped_cancer
    train, test = np.arange(len(y_noisy)) % 3 != 0, np.arange(len(y_noisy)) % 3 == 0
    pipe = imblearn_pipeline.make_pipeline(
        StandardScaler(), LossValCleaner(random_state=0), LogisticRegression())
    plain = imblearn_pipeline.make_pipeline(StandardScaler(), LogisticRegression())
    cleaned = pipe.fit(X[train], y_noisy[train]).score(X[test], y_clean[test])
    noisy = plain.fit(X[train], y_noisy[train]).score(X[test], y_clean[test])
    assert cleaned > noisy + 0.01
