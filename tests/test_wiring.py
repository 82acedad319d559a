"""How the estimators' pieces are wired together, seen from the public API.

Each test pins one thing a user relies on that no unit test of a helper can see: what the
network is trained on, what the OT reference is made of, that the lazy weight update gives
the documented eager rule's weights inside a real fit, and which rows ``removal_curve``
removes. They use the public parameters only (``module``, ``optimizer``, ``weight_update``,
``ot_scaling``, ``X_val``...), so they survive a redesign of the private modules.
"""

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from torch import nn

from skval import LossValClassifier, LossValRegressor
from skval.evaluation import removal_curve


def heavy_tailed(n=120, seed=0):
    """Skewed, heavy-tailed features of very different units: standardised and quantile
    features differ a lot on them."""
    rng = np.random.RandomState(seed)
    X = np.column_stack([rng.lognormal(0, 1.5, n), rng.standard_t(2, n) * 1e3,
                         rng.exponential(0.01, n)])
    y = (np.log(X[:, 0]) + X[:, 1] / 1e3 + rng.normal(0, 0.5, n) > 0).astype(int)
    return X, y


def lexsorted(A):
    A = np.asarray(A, dtype=np.float64)
    return A[np.lexsort(A.T[::-1])]


# ----------------------------------------------------------------------------- the network's input

class RecordingNet(nn.Module):
    """A linear network that keeps every batch its ``forward`` receives in training."""

    seen = []

    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.lin = nn.Linear(n_features, n_outputs)

    def forward(self, X):
        if self.training:
            RecordingNet.seen.append(X.detach().cpu().numpy().copy())
        return self.lin(X)


@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("ot_scaling", ["quantile", "standard"])
def test_the_network_is_trained_on_the_standardised_features(ot_scaling, standardize):
    # ot_scaling changes what the OT cost compares, never what the network learns from:
    # the network trains on (X - mean) / std (X itself without standardize), the features
    # predict() gives it, whatever the cost features are.
    X, y = heavy_tailed()
    RecordingNet.seen = []
    LossValClassifier(RecordingNet, max_epochs=2, batch_size=30, ot_scaling=ot_scaling,
                      standardize=standardize, canaries=0, random_state=0).fit(X, y)
    expected = (X - X.mean(axis=0)) / X.std(axis=0) if standardize else X
    batches = RecordingNet.seen
    assert sum(len(b) for b in batches) == 2 * len(X)  # every row once per epoch
    first_epoch = np.concatenate(batches[:len(X) // 30])
    np.testing.assert_allclose(lexsorted(first_epoch), lexsorted(expected.astype(np.float32)),
                               rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- the reference

@pytest.mark.parametrize("ot_scaling", ["standard", "quantile"])
@pytest.mark.parametrize("Estimator", [LossValClassifier, LossValRegressor])
def test_a_fit_with_X_val_does_not_depend_on_the_units_of_the_features(Estimator, ot_scaling):
    # The reference rows (X_val) must be compared with the batch rows in the same features:
    # standardised with the training rows' mean and scale ("standard"), or through their
    # quantiles ("quantile"). Then changing the units of a feature (a power of 2, so that
    # the arithmetic is exact) changes nothing; an X_val left in its own units would be a
    # reference far from every batch, and its distance would change with the units.
    X, y = heavy_tailed(150)
    if Estimator is LossValRegressor:
        y = np.log(X[:, 0]) + X[:, 1] / 1e3
    rng = np.random.RandomState(1)
    X_val = X[rng.choice(len(X), 40, replace=False)] * rng.uniform(0.8, 1.2, (40, 3))
    units = 2.0 ** np.array([10, -7, 5])
    params = dict(hidden_layer_sizes=(16,), max_epochs=3, batch_size=32, ot_scaling=ot_scaling,
                  random_state=0)
    a = Estimator(**params).fit(X, y, X_val=X_val)
    b = Estimator(**params).fit(X * units, y, X_val=X_val * units)
    assert a.n_reference_ == b.n_reference_ == 40
    np.testing.assert_allclose(b.data_values_, a.data_values_, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(b.evidence_, a.evidence_, rtol=1e-5, atol=1e-6)


def test_a_reference_far_from_the_batches_changes_the_values():
    # The counterpart of the test above: the values do depend on where the reference lies
    # (so the invariance there is not a fit that ignores X_val).
    X, y = heavy_tailed(150)
    params = dict(hidden_layer_sizes=(16,), max_epochs=3, batch_size=32, ot_scaling="standard",
                  random_state=0)
    near = LossValClassifier(**params).fit(X, y, X_val=X[:40])
    far = LossValClassifier(**params).fit(X, y, X_val=X[:40] * 2.0 ** np.array([10, -7, 5]))
    assert np.abs(near.data_values_ - far.data_values_).max() > 1e-3


# ----------------------------------------------------------------------------- the lazy update

class EagerBatchRule(torch.optim.Optimizer):
    """SGD on the network; on the data weights, the ``weight_update="batch"`` rule, eagerly.

    With ``weight_update="row"`` the estimator's ``optimizer`` moves the data weights (the
    group holding the one vector of ``n_rows`` entries). Here every row's first moment
    decays and moves its weight at every step, batch or not, as the rule is documented:
    per-row momentum, one second moment shared by the batch (the running squared median
    absolute gradient of the batch rows), Adam's bias corrections. No laziness, float64.
    """

    def __init__(self, params, lr=0.01, n_rows=None, betas=(0.9, 0.999), eps=1e-12):
        super().__init__(params, dict(lr=lr))
        self.n_rows, self.betas, self.eps = n_rows, betas, eps
        self.t, self.m, self.v = 0, None, 0.0
        self.weight_steps = 0

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.ndim == 1 and len(p) == self.n_rows:
                    self._move_weights(p, group["lr"])
                else:
                    p.add_(p.grad, alpha=-group["lr"])
        return loss

    def _move_weights(self, w, lr):
        beta1, beta2 = self.betas
        g = w.grad.double()
        batch = torch.nonzero(g).squeeze(1)  # the batch rows (only they have a gradient)
        self.t += 1
        self.weight_steps += 1
        self.v = beta2 * self.v + (1 - beta2) * float(g[batch].abs().median()) ** 2
        size = lr / (1 - beta1 ** self.t) / (np.sqrt(self.v / (1 - beta2 ** self.t)) + self.eps)
        self.m = (torch.zeros_like(g) if self.m is None else self.m) * beta1 + (1 - beta1) * g
        w.sub_((self.m * size).to(w.dtype))


def test_the_lazy_batch_update_gives_the_eager_rules_weights_in_a_real_fit():
    # weight_update="batch" moves only the batch rows at each step and replays the steps a
    # row sat out when it is next read; that must give every row the weight the eager rule
    # (every row moved at every step) gives. The eager rule runs here as the optimizer of
    # a weight_update="row" fit; both fits share the network's optimizer (plain SGD).
    rng = np.random.RandomState(0)
    X = rng.normal(size=(128, 4))
    y = (X[:, 0] + X[:, 1] + rng.normal(0, 0.5, 128) > 0).astype(int)
    y[:20] = 1 - y[:20]
    params = dict(hidden_layer_sizes=(8,), max_epochs=3, batch_size=16, lr=0.05, weight_lr=0.05,
                  optimizer=EagerBatchRule, optimizer__n_rows=len(X), positive_weights=False,
                  record_history=True, random_state=0)
    lazy = LossValClassifier(weight_update="batch", **params).fit(X, y)
    eager = LossValClassifier(weight_update="row", **params).fit(X, y)
    assert eager.net_.rows_.update.optimizer.weight_steps == 3 * 128 // 16  # it moved the weights
    moved = np.abs(eager.weights_ - 1).max()
    assert moved > 0.1  # far enough for a lost replay to show
    np.testing.assert_allclose(lazy.weight_history_, eager.weight_history_, rtol=0, atol=1e-4)
    np.testing.assert_allclose(lazy.weights_, eager.weights_, rtol=0, atol=1e-4)


# ----------------------------------------------------------------------------- removal_curve

class KeptRows(ClassifierMixin, BaseEstimator):
    """Remembers which rows it was fitted on (column 0 holds the row number); its score is
    their mean row number."""

    def fit(self, X, y):
        self.rows_ = np.sort(np.asarray(X)[:, 0].astype(int))
        self.classes_ = np.unique(y)
        return self

    def score(self, X, y):
        return float(self.rows_.mean())


def test_removal_curve_removes_the_highest_or_the_lowest_values_first():
    n = 50
    X = np.column_stack([np.arange(n), np.zeros(n)])
    y = np.arange(n) % 2
    values = np.random.RandomState(0).permutation(n).astype(float)
    by_value = np.argsort(values)
    fits = {}
    for remove in ("high", "low"):
        fits[remove] = []

        def scoring(est, X_test, y_test, record=fits[remove]):
            record.append(est.rows_)
            return est.score(X_test, y_test)

        removal_curve(KeptRows(), X, y, values, X, y, remove=remove,
                      fractions=[0.0, 0.2, 0.5], scoring=scoring)
    for remove, kept in fits.items():
        np.testing.assert_array_equal(kept[0], np.arange(n))  # nothing removed
        for rows, frac in zip(kept[1:], [0.2, 0.5]):
            k = int(frac * n)
            expected = by_value[:n - k] if remove == "high" else by_value[k:]
            np.testing.assert_array_equal(rows, np.sort(expected), err_msg=f"remove={remove!r}")


def test_removing_the_noisy_rows_scores_strictly_above_removing_the_clean_ones():
    # values that rank the flipped rows lowest: removing the lowest-valued rows first takes
    # the noise out and the test score rises; removing the highest first takes out clean
    # rows, the noise share grows and the score falls. Strictly, at every fraction > 0.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 2))
    y = (X[:, 0] > 0).astype(int)
    flipped = rng.rand(300) < 0.3
    y_noisy = np.where(flipped, 1 - y, y)
    values = np.where(flipped, 0.0, 1.0) + rng.uniform(0, 0.5, 300)
    X_test = rng.normal(size=(500, 2))
    y_test = (X_test[:, 0] > 0).astype(int)
    fracs = [0.0, 0.2, 0.4]
    _, high = removal_curve(LogisticRegression(), X, y_noisy, values, X_test, y_test,
                            remove="high", fractions=fracs)
    _, low = removal_curve(LogisticRegression(), X, y_noisy, values, X_test, y_test,
                           remove="low", fractions=fracs)
    assert high[0] == low[0]
    assert np.all(low[1:] > high[1:]), (low, high)
    assert low[2] > low[0] > high[2], (low, high)
