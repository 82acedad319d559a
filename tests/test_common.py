"""scikit-learn's own estimator checks, with no expected failures."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skval import LossValClassifier, LossValRegressor

# Few epochs keep the ~50 checks per estimator fast; the checks that demand a
# minimum accuracy still pass with them.
ESTIMATORS = [
    LossValClassifier(max_epochs=10, random_state=0),
    LossValRegressor(max_epochs=10, random_state=0),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    check(estimator)
