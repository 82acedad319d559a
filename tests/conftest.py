"""Shared data and fitted estimators.

The data are real datasets from scikit-learn with known corrupted rows. The fitted estimators are
session-scoped and shared by every test that only reads one (attributes, predictions, plots,
pickling): a test that fits, refits or calls ``set_params`` builds its own estimator (or clones a
shared one). Each shared object is checked at the end of the session, so a test that modified one
fails there instead of silently changing what later tests read.
"""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, make_friedman1

from skval import LossValClassifier, LossValRegressor


def _snapshot(arrays):
    return [np.array(a, copy=True) for a in arrays]


def _assert_unchanged(name, arrays, snapshot):
    for a, b in zip(arrays, snapshot):
        np.testing.assert_array_equal(a, b, err_msg=f"a test modified the shared fixture {name!r}")


@pytest.fixture(scope="session")
def flipped_cancer():
    """breast_cancer with 20% of the labels flipped; returns X, y_noisy, flipped mask, y_clean."""
    X, y = load_breast_cancer(return_X_y=True)
    rng = np.random.RandomState(0)
    flipped = np.zeros(len(y), bool)
    flipped[rng.choice(len(y), round(0.2 * len(y)), replace=False)] = True
    data = X, np.where(flipped, 1 - y, y), flipped, y
    before = _snapshot(data)
    yield data
    _assert_unchanged("flipped_cancer", data, before)


@pytest.fixture(scope="session")
def corrupted_friedman():
    """Friedman #1 (600 rows) with 20% of the targets replaced by another row's target."""
    X, y = make_friedman1(n_samples=600, noise=0.5, random_state=0)
    rng = np.random.RandomState(1)
    corrupted = np.zeros(len(y), bool)
    rows = rng.choice(len(y), round(0.2 * len(y)), replace=False)
    corrupted[rows] = True
    y_noisy = y.copy()
    y_noisy[rows] = y[rng.permutation(rows)] + rng.choice([-1, 1], len(rows)) * 2 * y.std()
    data = X, y_noisy, corrupted
    before = _snapshot(data)
    yield data
    _assert_unchanged("corrupted_friedman", data, before)


@pytest.fixture(scope="session")
def diabetes():
    data = load_diabetes(return_X_y=True)
    before = _snapshot(data)
    yield data
    _assert_unchanged("diabetes", data, before)


def _shared_fit(name, estimator, X, y):
    """Fit once; yield; then check that no test refitted or reconfigured the estimator."""
    estimator.fit(X, y)
    params = estimator.get_params()
    values = estimator.data_values_.copy()
    yield estimator
    assert estimator.get_params() == params, f"a test called set_params on the shared {name!r}"
    np.testing.assert_array_equal(estimator.data_values_, values,
                                  err_msg=f"a test refitted the shared {name!r}")


@pytest.fixture(scope="session")
def cancer_clf(flipped_cancer):
    """``LossValClassifier(max_epochs=5, random_state=0)`` fitted on flipped_cancer's noisy labels.

    Read-only: do not fit it again or call ``set_params`` on it (clone it instead).
    """
    X, y, _, _ = flipped_cancer
    yield from _shared_fit("cancer_clf", LossValClassifier(max_epochs=5, random_state=0), X, y)


@pytest.fixture(scope="session")
def cancer_clf_history(flipped_cancer):
    """``LossValClassifier(max_epochs=3, record_history=True, random_state=0)`` on flipped_cancer.

    Read-only, like ``cancer_clf``.
    """
    X, y, _, _ = flipped_cancer
    est = LossValClassifier(max_epochs=3, record_history=True, random_state=0)
    yield from _shared_fit("cancer_clf_history", est, X, y)


@pytest.fixture(scope="session")
def diabetes_reg(diabetes):
    """``LossValRegressor(max_epochs=5, random_state=0)`` fitted on diabetes. Read-only."""
    X, y = diabetes
    yield from _shared_fit("diabetes_reg", LossValRegressor(max_epochs=5, random_state=0), X, y)


def pytest_collection_modifyitems(config, items):
    """Skip the tests marked ``cuda`` when torch sees no CUDA device."""
    cuda_items = [item for item in items if item.get_closest_marker("cuda")]
    if not cuda_items:
        return
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is False)")
        for item in cuda_items:
            item.add_marker(skip)
