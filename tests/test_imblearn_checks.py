"""imbalanced-learn's own sampler checks on ``LossValCleaner``.

The cleaner declares imbalanced-learn's tags (a sampler that keeps DataFrames and sets
``sample_indices_``). It is not a class balancer: it removes the rows with the lowest
values, for a classification or a regression target alike, so the checks that assume a
balancer are named below with the reason they do not apply; every other check passes.
A small valuer (2 epochs) keeps them fast.
"""

import numpy as np
import pytest

imblearn_checks = pytest.importorskip("imblearn.utils.estimator_checks")

from skval import LossValClassifier, LossValCleaner  # noqa: E402

# With the default valuer (chosen from y) a continuous target is valid input; the instance
# checked here has a classifier valuer, which refuses it as a balancer does.
REGRESSION_TOO = {"check_target_type": (
    "a continuous target is valid input, not an error: the cleaner also serves regression "
    "(its default valuer is then a LossValRegressor); a class balancer refuses it")}
NOT_A_BALANCER = {
    "check_samplers_pandas_sparse": (
        "sparse input is refused with scikit-learn's TypeError (the input tags say "
        "sparse=False): the valuer's network trains on dense tensors; imbalanced-learn runs "
        "this check for every sampler that accepts DataFrames"),
    "check_samplers_fit": (
        "no sampling_strategy_: the cleaner removes rows by their values, not to reach "
        "class counts, and a regression target has no classes to balance"),
}


def _expected_failures(estimator):
    if estimator.estimator is None:
        return {**NOT_A_BALANCER, **REGRESSION_TOO}
    return NOT_A_BALANCER


def test_the_cleaner_declares_imblearn_tags():
    from imblearn.utils._tags import Tags

    tags = LossValCleaner().__sklearn_tags__()
    assert isinstance(tags, Tags)
    assert tags.estimator_type == "sampler" and tags.sampler_tags.sample_indices
    assert tags.input_tags.dataframe and not tags.input_tags.sparse


def test_features_in_and_out():
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    X = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    y = (X["a"] > 0).astype(int)
    cleaner = LossValCleaner(LossValClassifier(max_epochs=1, random_state=0)).fit(X, y)
    assert cleaner.n_features_in_ == 3
    assert list(cleaner.feature_names_in_) == ["a", "b", "c"]
    assert list(cleaner.get_feature_names_out()) == ["a", "b", "c"]
    cleaner.fit(X.to_numpy(), y)
    assert not hasattr(cleaner, "feature_names_in_")
    assert list(cleaner.get_feature_names_out()) == ["x0", "x1", "x2"]


def test_one_hot_targets_are_valued_as_their_classes():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3))
    y = np.digitize(X[:, 0], [-0.5, 0.5])
    one_hot = np.eye(3, dtype=int)[y]
    make = lambda: LossValCleaner(LossValClassifier(max_epochs=2, random_state=0))  # noqa: E731
    X_kept, y_kept = make().fit_resample(X, y)
    X_hot, y_hot = make().fit_resample(X, one_hot)
    np.testing.assert_array_equal(X_hot, X_kept)
    np.testing.assert_array_equal(y_hot.argmax(axis=1), y_kept)


@imblearn_checks.parametrize_with_checks(
    [LossValCleaner(LossValClassifier(max_epochs=2, random_state=0))],
    expected_failed_checks=_expected_failures)
def test_imblearn_sampler_checks(estimator, check):
    check(estimator)


from sklearn.utils.estimator_checks import parametrize_with_checks as sklearn_checks  # noqa: E402


@sklearn_checks([LossValCleaner(LossValClassifier(max_epochs=2, random_state=0))])
def test_sklearn_checks_on_the_cleaner(estimator, check):
    check(estimator)
