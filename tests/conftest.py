"""Shared data: real datasets from scikit-learn with known corrupted rows."""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, make_friedman1


@pytest.fixture(scope="module")
def flipped_cancer():
    """breast_cancer with 20% of the labels flipped; returns X, y_noisy, flipped mask, y_clean."""
    X, y = load_breast_cancer(return_X_y=True)
    rng = np.random.RandomState(0)
    flipped = np.zeros(len(y), bool)
    flipped[rng.choice(len(y), round(0.2 * len(y)), replace=False)] = True
    return X, np.where(flipped, 1 - y, y), flipped, y


@pytest.fixture(scope="module")
def corrupted_friedman():
    """Friedman #1 (600 rows) with 20% of the targets replaced by another row's target."""
    X, y = make_friedman1(n_samples=600, noise=0.5, random_state=0)
    rng = np.random.RandomState(1)
    corrupted = np.zeros(len(y), bool)
    rows = rng.choice(len(y), round(0.2 * len(y)), replace=False)
    corrupted[rows] = True
    y_noisy = y.copy()
    y_noisy[rows] = y[rng.permutation(rows)] + rng.choice([-1, 1], len(rows)) * 2 * y.std()
    return X, y_noisy, corrupted


@pytest.fixture(scope="module")
def diabetes():
    return load_diabetes(return_X_y=True)
