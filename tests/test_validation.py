"""Bad input: a clear ValueError / TypeError before any training, never a torch trace."""

import numpy as np
import pytest
from torch import nn

from skval import LossValClassifier, LossValRegressor, NonFiniteLossError

ESTIMATORS = [LossValClassifier, LossValRegressor]

rng = np.random.RandomState(0)
X = rng.normal(size=(40, 3))
Y_CLS = np.arange(40) % 2
Y_REG = rng.normal(size=40)


def _y(est_cls):
    return Y_CLS if est_cls is LossValClassifier else Y_REG


def _with(value, row=3, col=1, base=X):
    out = base.copy()
    out[row, col] = value
    return out


@pytest.mark.parametrize("est_cls", ESTIMATORS)
@pytest.mark.parametrize(
    "X_bad, match",
    [
        (_with(np.nan), "NaN"),
        (_with(np.inf), "infinity"),
        (np.empty((0, 3)), "0 sample"),
        (np.arange(40.0), "Expected 2D array"),
        (np.zeros((40, 3, 2)), "dim 3"),
        (X.astype(complex), "Complex data not supported"),
        (np.full((40, 3), "a", dtype=object), "could not convert string to float"),
    ],
    ids=["nan", "inf", "empty", "1d", "3d", "complex", "strings"],
)
def test_bad_X(est_cls, X_bad, match):
    y = _y(est_cls)[: max(len(X_bad), 1)] if len(X_bad) else _y(est_cls)[:0]
    with pytest.raises(ValueError, match=match):
        est_cls(max_epochs=1).fit(X_bad, y)


@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_one_row_and_length_mismatch(est_cls):
    y = _y(est_cls)
    with pytest.raises(ValueError, match="1 sample"):
        est_cls(max_epochs=1).fit(X[:1], y[:1])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        est_cls(max_epochs=1).fit(X, y[:-1])


def test_bad_y():
    with pytest.raises(ValueError, match="Input y contains NaN"):
        LossValRegressor(max_epochs=1).fit(X, np.where(np.arange(40) == 2, np.nan, Y_REG))
    with pytest.raises(ValueError, match="infinity"):
        LossValClassifier(max_epochs=1).fit(X, np.where(np.arange(40) == 2, np.inf, Y_CLS))
    with pytest.raises(ValueError, match="only one class"):
        LossValClassifier(max_epochs=1).fit(X, np.zeros(40))
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        LossValClassifier(max_epochs=1).fit(X, Y_REG)


@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_bad_X_val(est_cls):
    y = _y(est_cls)
    with pytest.raises(ValueError, match="Input X_val contains NaN"):
        est_cls(max_epochs=1).fit(X, y, X_val=_with(np.nan, base=X[:10]))
    with pytest.raises(ValueError, match="X_val has 2 features, but X has 3"):
        est_cls(max_epochs=1).fit(X, y, X_val=X[:10, :2])
    with pytest.raises(ValueError, match="same number of rows"):
        est_cls(max_epochs=1).fit(X, y, X_val=X[:10], y_val=y[:9])
    with pytest.raises(ValueError, match="y_val was given without X_val"):
        est_cls(max_epochs=1).fit(X, y, y_val=y[:10])


def test_unknown_label_in_y_val():
    with pytest.raises(ValueError, match="y_val has labels not seen in y"):
        LossValClassifier(max_epochs=1).fit(X, Y_CLS, X_val=X[:3], y_val=[0, 1, 5])


@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_wrong_feature_count_at_predict(est_cls):
    est = est_cls(max_epochs=1, random_state=0).fit(X, _y(est_cls))
    with pytest.raises(ValueError, match="X has 4 features, but .* is expecting 3"):
        est.predict(np.zeros((2, 4)))


@pytest.mark.parametrize("est_cls", ESTIMATORS)
@pytest.mark.parametrize(
    "param, value, exc, match",
    [
        ("max_epochs", 0, ValueError, "max_epochs must be > 0, got 0"),
        ("max_epochs", 2.5, TypeError, "max_epochs must be an int"),
        ("lr", -0.1, ValueError, "lr must be > 0"),
        ("lr", "fast", TypeError, "lr must be a number"),
        ("batch_size", 0, ValueError, "batch_size must be > 0"),
        ("weight_lr", 0.0, ValueError, "weight_lr must be > 0"),
        ("n_reference", -1, ValueError, "n_reference must be > 0"),
        ("ot_method", "fast", ValueError, "ot_method must be one of"),
        ("weight_update", "adam", ValueError, r"weight_update must be one of \('batch', 'row'\), got 'adam'"),
        ("label_weight", -1.0, ValueError, "label_weight must be a number >= 0"),
        ("activation", "swish", ValueError, "activation must be one of"),
        ("hidden_layer_sizes", (10, 0), ValueError, "each of hidden_layer_sizes must be > 0"),
        ("hidden_layer_sizes", "big", TypeError, "each of hidden_layer_sizes must be an int"),
        ("module", "mlp", TypeError, "module must be None, a torch.nn.Module"),
        ("optimizer", "adam", TypeError, "optimizer must be a torch.optim.Optimizer class"),
        ("device", "gpu0", ValueError, "device must be a torch device"),
        ("callbacks", "none", TypeError, "callbacks must be None or a list"),
        # True is an int to Python, never a count or a rate here
        ("max_epochs", True, TypeError, "max_epochs must be an int > 0, got True"),
        ("batch_size", True, TypeError, "batch_size must be an int > 0, got True"),
        ("n_reference", True, TypeError, "n_reference must be an int > 0, got True"),
        ("lr", True, TypeError, "lr must be a number > 0, got True"),
        ("label_weight", True, TypeError, "label_weight must be a number >= 0, got True"),
        ("label_weight", "heavy", TypeError, "label_weight must be a number >= 0, got 'heavy'"),
        ("hidden_layer_sizes", (10, True), TypeError, "each of hidden_layer_sizes must be an int"),
        ("batch_size", "big", TypeError, "batch_size must be an int > 0, got 'big'"),
        ("ot_power", 0.0, ValueError, "ot_power must be > 0, got 0.0"),
        ("ot_scaling", "robust", ValueError, r"ot_scaling must be one of \('quantile', 'standard'\), got 'robust'"),
        ("weight_lr", float("nan"), ValueError, "weight_lr must be > 0, got nan"),
    ],
)
def test_bad_params(est_cls, param, value, exc, match):
    est = est_cls(**{param: value})
    with pytest.raises(exc, match=match):
        est.fit(X, _y(est_cls))
    assert not hasattr(est, "net_")


def test_ot_reg_is_checked_only_for_sinkhorn():
    with pytest.raises(ValueError, match="ot_reg must be > 0, got -1"):
        LossValClassifier(ot_method="sinkhorn", ot_reg=-1, max_epochs=1).fit(X, Y_CLS)
    LossValClassifier(ot_reg=-1, max_epochs=1).fit(X, Y_CLS)  # unused by exact OT


def test_unexpected_keyword_is_reported_at_fit():
    est = LossValClassifier(hidden=3)
    with pytest.raises(TypeError, match="unexpected parameter 'hidden'"):
        est.fit(X, Y_CLS)


class _NaNAfter(nn.Module):
    """Returns NaN once it has been called ``after`` times: a run that diverges mid-way."""

    def __init__(self, n_features, n_outputs, after=5):
        super().__init__()
        self.lin = nn.Linear(n_features, n_outputs)
        self.after = after
        self.calls = 0

    def forward(self, X):
        self.calls += 1
        out = self.lin(X)
        return out * float("nan") if self.calls > self.after else out


def test_nan_loss_stops_with_clear_error():
    # 40 rows, batch 8: 5 steps per epoch, so the 6th call is in epoch 2
    est = LossValRegressor(_NaNAfter, batch_size=8, max_epochs=5, random_state=0)
    with pytest.raises(NonFiniteLossError, match=r"became nan in epoch 2\. Try a smaller lr"):
        est.fit(X, Y_REG)
    assert not hasattr(est, "data_values_")
    assert issubclass(NonFiniteLossError, FloatingPointError)


class _Broken(nn.Module):
    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.lin = nn.Linear(n_features, n_outputs)

    def forward(self, X):
        raise RuntimeError("my module is broken")


def test_module_error_surfaces_unchanged():
    with pytest.raises(RuntimeError, match="my module is broken"):
        LossValClassifier(_Broken, max_epochs=1).fit(X, Y_CLS)
