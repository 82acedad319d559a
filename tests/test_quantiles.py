"""The quantile map of the OT cost and the regression targets (skval._quantiles)."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.preprocessing import QuantileTransformer

from skval._base import normal_quantiles
from skval._quantiles import NormalQuantiles, sorted_quantiles


def _columns(kind, n, dtype, rng):
    X = rng.normal(size=(n, 4))
    if kind == "ties":
        X = np.round(X)
    elif kind == "heavy":
        X = rng.standard_cauchy(size=(n, 4)) * 1e6
    elif kind == "constant":
        X[:, 2] = 3.3
    return X.astype(dtype)


@pytest.mark.parametrize("n", [1, 2, 7, 999, 1000, 1001, 3000])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["normal", "ties", "heavy", "constant"])
def test_sorted_quantiles_are_numpys_percentiles_bit_for_bit(n, dtype, kind):
    X = _columns(kind, n, dtype, np.random.RandomState(n))
    q = np.linspace(0, 1, min(1000, n))
    expected = np.nanpercentile(X, q * 100, axis=0)
    got = sorted_quantiles(X, (q * 100) / 100)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_sorted_quantiles_leave_the_input_alone():
    X = np.random.RandomState(0).normal(size=(50, 3))
    before = X.copy()
    sorted_quantiles(X, np.linspace(0, 1, 11))
    np.testing.assert_array_equal(X, before)


@pytest.mark.parametrize("kind", ["normal", "ties", "heavy"])
def test_normal_quantiles_fit_and_map_as_scikit_learns(kind):
    rng = np.random.RandomState(1)
    X, X_new = _columns(kind, 3000, np.float32, rng), _columns(kind, 500, np.float32, rng)
    ours = normal_quantiles(len(X)).fit(X)
    theirs = QuantileTransformer(**ours.get_params()).fit(X)
    assert isinstance(ours, NormalQuantiles)
    np.testing.assert_array_equal(ours.quantiles_, theirs.quantiles_)
    np.testing.assert_array_equal(ours.references_, theirs.references_)
    np.testing.assert_array_equal(ours.transform(X_new), theirs.transform(X_new))
    np.testing.assert_array_equal(ours.inverse_transform(ours.transform(X_new)),
                                  theirs.inverse_transform(theirs.transform(X_new)))


def test_missing_values_and_subsampling_take_scikit_learns_own_path():
    rng = np.random.RandomState(2)
    X = rng.normal(size=(400, 3))
    X[rng.rand(*X.shape) < 0.1] = np.nan
    params = dict(n_quantiles=100, output_distribution="normal", random_state=0)
    np.testing.assert_array_equal(NormalQuantiles(**params).fit(X).quantiles_,
                                  QuantileTransformer(**params).fit(X).quantiles_)
    X = rng.normal(size=(400, 3))
    params["subsample"] = 200  # its own draw of the rows
    np.testing.assert_array_equal(NormalQuantiles(**params).fit(X).quantiles_,
                                  QuantileTransformer(**params).fit(X).quantiles_)


def test_normal_quantiles_clone_with_their_parameters():
    est = normal_quantiles(50)
    assert clone(est).get_params() == est.get_params()
    assert est.get_params()["n_quantiles"] == 50
