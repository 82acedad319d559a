"""scikit-learn's own estimator checks, with no expected failures."""

from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.utils.estimator_checks import parametrize_with_checks

from skval import CleanedEstimator, LossValClassifier, LossValRegressor

# Few epochs keep the ~50 checks per estimator fast; the checks that demand a
# minimum accuracy still pass with them.
ESTIMATORS = [
    LossValClassifier(max_epochs=10, random_state=0),
    LossValRegressor(max_epochs=10, random_state=0),
    # the meta-estimator, as a classifier and as a regressor, with a real (short) valuation
    CleanedEstimator(LogisticRegression(), valuer=LossValClassifier(max_epochs=2, random_state=0)),
    CleanedEstimator(Ridge(), valuer=LossValRegressor(max_epochs=2, random_state=0)),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    check(estimator)
