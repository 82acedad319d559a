"""skval: LossVal data valuation as scikit-learn estimators."""

from ._classifier import LossValClassifier
from ._cleaned_estimator import CleanedEstimator
from ._cleaning import LossValCleaner
from .exceptions import NonFiniteLossError
from ._regressor import LossValRegressor

__version__ = "0.1.0"

__all__ = [
    "CleanedEstimator",
    "LossValClassifier",
    "LossValCleaner",
    "LossValRegressor",
    "NonFiniteLossError",
    "__version__",
]
