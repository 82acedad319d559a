"""ot_scaling and target_scaling: the features the OT cost compares, the targets the network
sees, and what "quantile" buys on heavy tails."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_friedman1

from skval import LossValClassifier, LossValRegressor
from skval.evaluation import auroc, inject_noise


@pytest.fixture(scope="module")
def skewed():
    """400 rows of lognormal features (heavy right tails), a label from their logs."""
    rng = np.random.RandomState(0)
    Z = rng.normal(size=(400, 4))
    return np.exp(1.5 * Z), (Z[:, 0] + Z[:, 1] > 0).astype(int), Z


def test_quantile_cost_features_depend_only_on_the_ranks(skewed):
    X, y, Z = skewed
    # the same rows through different increasing maps of each column: the same reference
    on_X = LossValClassifier(ot_scaling="quantile", max_epochs=1, random_state=0).fit(X, y)
    on_Z = LossValClassifier(ot_scaling="quantile", max_epochs=1, random_state=0).fit(Z, y)
    np.testing.assert_allclose(on_X.net_.criterion_.reference.numpy(),
                               on_Z.net_.criterion_.reference.numpy(), atol=1e-6)
    assert np.abs(on_X.net_.criterion_.reference.numpy()).max() < 6  # normal scores
    # the network's input is unchanged: the same predictions as with the standard cost
    standard = LossValClassifier(ot_scaling="standard", max_epochs=1, random_state=0).fit(X, y)
    assert standard.net_.criterion_.reference.numpy().max() > 6  # standardised lognormal tails
    np.testing.assert_array_equal(standard._transform_X(X), on_X._transform_X(X))


def test_quantile_cost_is_applied_to_X_val(skewed):
    X, y, _ = skewed
    reg = LossValRegressor(ot_scaling="quantile", max_epochs=2, random_state=0)
    reg.fit(X[:300], np.log(X[:300, 0]), X_val=X[300:])
    np.testing.assert_allclose(reg.net_.criterion_.reference.numpy(),
                               reg._cost_quantiles.transform(X[300:]), atol=1e-6)


def test_quantile_cost_finds_corrupted_rows_among_heavy_tails(skewed):
    X, y, _ = skewed
    X_noisy, y_noisy, noisy = inject_noise(X, y, kind="feature", rate=0.2, random_state=0)
    found = {}
    for scaling in ["standard", "quantile"]:
        clf = LossValClassifier(ot_scaling=scaling, max_epochs=10, random_state=0)
        found[scaling] = auroc(-clf.fit(X_noisy, y_noisy).evidence_[:, 1], noisy)
    # the squared standardised distance is ruled by the natural lognormal tails
    assert found["quantile"] > 0.85
    assert found["quantile"] > found["standard"] + 0.05


def test_features_are_written_chunk_by_chunk_into_one_array():
    # fit writes the rows' and the canaries' features once, in chunks: the same numbers
    # as transforming each part whole and stacking them
    from skval._features import fill_rows
    rng = np.random.RandomState(0)
    X, extra = rng.normal(size=(1001, 3)), rng.normal(size=(7, 3))

    def transform(A):
        return (A - 0.5) / 3.0

    out = fill_rows((X, extra), transform, chunk=100)  # chunks that do not divide the rows
    assert out.dtype == np.float32 and out.shape == (1008, 3)
    whole = np.vstack([transform(X), transform(extra)]).astype(np.float32)
    np.testing.assert_array_equal(out, whole)
    assert fill_rows((X, extra[:0]), transform).shape == (1001, 3)  # no canaries


def test_quantile_rows_are_the_transformers_own_draw():
    # above QuantileTransformer's subsample the cost's pipeline is fitted on the rows the
    # transformer itself would draw: the same quantiles, without a standardised copy of X
    from sklearn.preprocessing import QuantileTransformer

    from skval._base import _QUANTILE_SUBSAMPLE, _quantile_rows
    rng = np.random.RandomState(1)
    X = rng.standard_normal((_QUANTILE_SUBSAMPLE + 5000, 2))
    rows = _quantile_rows(X)
    assert len(rows) == _QUANTILE_SUBSAMPLE
    quantiles = [QuantileTransformer(n_quantiles=100, subsample=_QUANTILE_SUBSAMPLE,
                                     random_state=0).fit(A).quantiles_ for A in (X, rows)]
    np.testing.assert_array_equal(quantiles[0], quantiles[1])
    small = X[:100]
    assert _quantile_rows(small) is small  # below the subsample: every row


def test_standardised_rows_read_like_the_stacked_array_without_copying_X():
    # a fit's network input: the rows of X standardised as they are read, the canaries after
    from skval._features import StandardisedRows
    rng = np.random.RandomState(0)
    X = rng.normal(3.0, 2.0, size=(50, 4))
    before = X.copy()
    mean, scale = X.mean(axis=0), X.std(axis=0)
    extra = rng.normal(size=(6, 4)).astype(np.float32)
    rows = StandardisedRows(X, mean, scale, extra)
    stacked = np.vstack([((X - mean) / scale).astype(np.float32), extra])
    assert rows.shape == stacked.shape and len(rows) == 56 and rows.dtype == np.float32
    picked = np.array([55, 0, 49, 50, 7, 7])  # canaries and rows, in any order
    np.testing.assert_array_equal(rows[picked], stacked[picked])
    np.testing.assert_array_equal(rows[10:52], stacked[10:52])
    as_tensor = rows[torch.as_tensor(picked)]  # a batch's tensor index gives a tensor
    assert isinstance(as_tensor, torch.Tensor) and as_tensor.dtype == torch.float32
    np.testing.assert_array_equal(as_tensor.numpy(), stacked[picked])
    assert rows.X is X and np.array_equal(X, before)  # X kept as it is, not copied


# ----------------------------------------------------------------------------- target_scaling

def test_target_scaling_maps_through_quantiles_and_back():
    from scipy.stats import skew

    from skval._regressor import TargetScaling

    rng = np.random.RandomState(0)
    # a skewed target and one of scale 1e-9 (standardised before its quantiles are learnt)
    Y = np.column_stack([rng.lognormal(0, 1.5, 500), 1e-9 * rng.normal(size=500)])
    scaling = TargetScaling(quantile=True)
    Z = scaling.fit_encode(Y)
    np.testing.assert_array_equal(scaling.encode(Y), Z)  # the training targets, as later ones
    assert Z.dtype == np.float32 and Z.shape == Y.shape
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(Z.std(axis=0), 1, atol=1e-4)
    assert skew(Y[:, 0]) > 3 and abs(skew(Z[:, 0])) < 0.1  # normal scores
    np.testing.assert_array_equal(np.argsort(Z, axis=0), np.argsort(Y, axis=0))  # same ranks
    np.testing.assert_allclose(scaling.decode(Z), Y, rtol=1e-4)  # back to the targets
    standard = TargetScaling(quantile=False)
    np.testing.assert_allclose(standard.fit_encode(Y), (Y - Y.mean(axis=0)) / Y.std(axis=0),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(standard.decode(standard.encode(Y)), Y, rtol=1e-5)


def test_quantile_targets_spare_the_extremes_and_find_swapped_targets():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(600, 6))
    y = 100 * np.exp(0.6 * X @ np.array([1.0, 0.8, -0.6, 0.4, 0.0, 0.0])
                     + 0.2 * rng.normal(size=600))  # skewness about 2
    top = y >= np.quantile(y, 0.95)
    X_noisy, y_noisy, swapped = inject_noise(X, y, kind="label", rate=0.15, task="regression",
                                             random_state=0)
    lowest, found = {}, {}
    for scaling in ("quantile", "standard"):  # the weights themselves (no canaries)
        params = dict(target_scaling=scaling, canaries=0, max_epochs=15, random_state=0)
        clean = LossValRegressor(**params).fit(X, y)
        lowest[scaling] = top[np.argsort(clean.data_values_)[:30]].sum()
        found[scaling] = auroc(LossValRegressor(**params).fit(X_noisy, y_noisy).data_values_,
                               swapped)
    # clean rows: the largest 5 % of targets fill 18 of the 30 lowest weights on the
    # standardised scale, 7 on the quantile one
    assert lowest["quantile"] <= 10 and lowest["standard"] >= 14
    assert found["quantile"] > 0.8 and found["quantile"] > found["standard"] + 0.04


def test_bad_target_scaling_is_refused():
    with pytest.raises(ValueError, match=r"target_scaling must be one of \('quantile', "
                                         r"'standard'\), got 'minmax'"):
        LossValRegressor(target_scaling="minmax", max_epochs=1).fit(np.ones((20, 2)),
                                                                    np.arange(20.0))


class _ModeRecordingNet(torch.nn.Module):
    """A small regression network with dropout that records the mode of each forward pass."""

    modes = []

    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(n_features, 16), torch.nn.Tanh(),
                                          torch.nn.Dropout(0.5), torch.nn.Linear(16, n_outputs))

    def forward(self, x):
        type(self).modes.append((self.training, len(x)))
        return self.layers(x)


def test_the_label_share_reads_the_network_as_predict_does():
    X, y = make_friedman1(400, random_state=0)
    _ModeRecordingNet.modes.clear()
    reg = LossValRegressor(_ModeRecordingNet, max_epochs=2, random_state=0).fit(X, y)
    # the last pass of fit reads the 400 rows (the canaries not), in eval mode: no dropout
    assert _ModeRecordingNet.modes[-1] == (False, 400)
    assert reg.net_.module_.training  # the module's mode is given back
