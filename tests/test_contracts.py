"""Small documented promises of the public API that a mutation run found untested in the
fast tests of their modules (tools/mutation.py): batch sizes, parameter routing, warnings,
``worst_rows``, ``class_balanced``, strings that come from a config file.
"""

import json
import warnings

import numpy as np
import pytest
from torch import nn

from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags

from skval import CleanedEstimator, LossValClassifier, LossValCleaner, LossValRegressor


def blobs(n=120, d=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d))
    y = (X[:, 0] + rng.normal(0, 0.5, n) > 0).astype(int)
    return X, y


class BatchSizes(nn.Module):
    """A linear network that records the number of rows of each training batch."""

    sizes = []

    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.lin = nn.Linear(n_features, n_outputs)

    def forward(self, X):
        if self.training:
            BatchSizes.sizes.append(len(X))
        return self.lin(X)


def batch_sizes(n, X_val=False, **params):
    X, y = blobs(n, 2)
    BatchSizes.sizes = []
    kwargs = dict(X_val=X[:20]) if X_val else {}
    LossValClassifier(BatchSizes, max_epochs=1, random_state=0, **params).fit(X, y, **kwargs)
    return BatchSizes.sizes


@pytest.mark.parametrize("n, X_val, batch_size, expected", [
    (120, True, 100, 100),      # with X_val a batch is as large as asked
    (120, False, 100, 60),      # without, at most half the rows (the rest is the reference)
    (250, True, "auto", 32),    # "auto": 32 rows up to 3,200 rows...
    (250, False, "auto", 32),
    (5000, True, "auto", 50),   # ... then n // 100
])
def test_batch_sizes(n, X_val, batch_size, expected):
    sizes = batch_sizes(n, X_val, batch_size=batch_size, canaries=0)
    assert sizes[0] == expected
    assert sum(sizes) == n and max(sizes) == expected


@pytest.mark.parametrize("n, canaries, expected_count", [
    (250, 0.025, 10),   # at least 10 canaries of each kind
    (1000, 0.025, 25),  # 2.5 % of the rows
    (199, 0.025, 0),    # too few rows to spare 2 x 10 (a tenth of the rows at most)
    (200, 0.025, 10),
    (1000, 0.0, 0),
])
def test_an_epoch_covers_the_canaries_at_the_rows_batch_size(n, canaries, expected_count):
    sizes = batch_sizes(n, False, canaries=canaries)
    assert sum(sizes) == n + 2 * expected_count
    assert max(sizes) == 32  # "auto" on the user's n rows, canaries or not


class Fixed(nn.Module):
    """A network for 3 features and 2 classes that takes no n_features / n_outputs."""

    def __init__(self, width=4):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, width), nn.ReLU(), nn.Linear(width, 2))

    def forward(self, X):
        return self.net(X)


def test_a_module_class_without_n_features_is_built_as_given():
    X, y = blobs()
    clf = LossValClassifier(Fixed, module__width=5, max_epochs=1, random_state=0).fit(X, y)
    assert clf.net_.module_.net[0].out_features == 5  # nothing else was filled in
    assert clf.predict(X).shape == (len(X),)


def test_set_params_routes_module_and_optimizer_parameters():
    X, y = blobs()
    clf = LossValClassifier(Fixed, max_epochs=1, random_state=0)
    assert clf.set_params(module__width=6, optimizer__weight_decay=0.25, lr=0.02) is clf
    params = clf.get_params()
    assert (params["module__width"], params["optimizer__weight_decay"], params["lr"]) == (
        6, 0.25, 0.02)
    clf.fit(X, y)
    assert clf.net_.module_.net[0].out_features == 6
    assert all(g["weight_decay"] == 0.25 for g in clf.net_.optimizer_.param_groups)


@pytest.mark.parametrize("max_epochs", [3, np.int64(3)])  # an int from a numpy grid too
def test_a_full_fit_warns_nothing(max_epochs):
    # the "fit stopped after k of n epochs" warning is for an interrupted fit only
    X, y = blobs(8, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = LossValClassifier(hidden_layer_sizes=(4,), max_epochs=max_epochs, batch_size=4,
                                random_state=0).fit(X, y)
    assert clf.n_epochs_ == 3


def test_worst_rows_of_the_training_data():
    X, y = blobs()
    clf = LossValClassifier(max_epochs=2, random_state=0).fit(X, y)
    worst = clf.worst_rows(X, y, k=5)
    assert worst.index.tolist() == np.argsort(clf.data_values_, kind="stable")[:5].tolist()
    assert worst["rank"].tolist() == [1, 2, 3, 4, 5]
    assert len(clf.worst_rows(X, k=1)) == 1
    with pytest.raises(ValueError, match="X has 119 rows but the estimator was fitted on 120"):
        clf.worst_rows(X[:-1])
    for k in (0, -1, 2.5):
        with pytest.raises(ValueError, match="k must be a positive int"):
            clf.worst_rows(X, k=k)


def test_class_balanced_changes_the_values_and_stays_finite():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(150, 3))
    y = np.where(X[:, 0] > 1.0, 1, 0)  # about 16% positives
    y[rng.choice(150, 15, replace=False)] ^= 1
    params = dict(hidden_layer_sizes=(16,), max_epochs=3, random_state=0)
    off = LossValClassifier(**params).fit(X, y)
    on = LossValClassifier(class_balanced=True, **params).fit(X, y)
    assert np.isfinite(on.data_values_).all() and np.isfinite(on.evidence_).all()
    assert np.abs(on.data_values_ - off.data_values_).max() > 1e-3


@pytest.mark.parametrize("Estimator", [LossValClassifier, LossValRegressor])
def test_evidence_is_finite_and_scaled(Estimator):
    X, y = blobs(200)
    if Estimator is LossValRegressor:
        y = X[:, 0] + 0.1 * X[:, 1]
    est = Estimator(max_epochs=3, hidden_layer_sizes=(16,), random_state=0).fit(X, y)
    assert np.isfinite(est.evidence_).all()
    # each side divided by its running scale: a typical row's entry is of order the number
    # of its steps (3 epochs), not of the raw gradients' size
    typical = np.median(np.abs(est.evidence_), axis=0)
    assert np.all((0.05 < typical) & (typical < 30)), typical


def test_parameter_strings_from_a_config_file_act_as_literals():
    # a JSON config (python -m skval.distributed --params) gives equal, not identical strings
    config = json.loads('{"ot_scaling": "standard", "weight_update": "row", "ot_method": "exact"}')
    literal = "standard"
    assert config["ot_scaling"] == literal and config["ot_scaling"] is not literal
    X, y = blobs()
    X[:, 1] = np.exp(2 * X[:, 1])  # skewed: the two scalings differ
    params = dict(hidden_layer_sizes=(8,), max_epochs=2, random_state=0)
    from_config = LossValClassifier(**config, **params).fit(X, y)
    literal = LossValClassifier(ot_scaling="standard", weight_update="row", ot_method="exact",
                                **params).fit(X, y)
    np.testing.assert_array_equal(from_config.data_values_, literal.data_values_)


def test_adam_runs_its_fused_kernel_on_the_cpu():
    # speed: the network's Adam (and the data weights' with weight_update="row") runs
    # torch's fused kernel where it has one; a user's own foreach/fused choice is kept
    X, y = blobs()
    for update in ("batch", "row"):
        clf = LossValClassifier(max_epochs=1, weight_update=update, random_state=0).fit(X, y)
        groups = clf.net_.optimizer_.param_groups
        if update == "row":  # the weights have an optimizer of their own
            groups = groups + clf.net_.rows_.update.optimizer.param_groups
        assert len(groups) == (2 if update == "row" else 1)
        assert all(g["fused"] is True for g in groups), update
    own = LossValClassifier(max_epochs=1, optimizer__foreach=True, random_state=0).fit(X, y)
    assert all(g["foreach"] and not g["fused"] for g in own.net_.optimizer_.param_groups)


def test_rows_clipped_at_zero_rank_below_zero_by_how_far_they_were_pushed():
    # positive_weights: a weight pushed below 0 is clipped; its value lies just below 0
    # (within 1e-3), lower the further its steps pushed it, so the clipped rows do not tie.
    # (A row clipped while the lazy update replays its skipped steps keeps exactly 0.)
    X, y = blobs(120)
    y[:20] = 1 - y[:20]
    clf = LossValClassifier(hidden_layer_sizes=(16,), max_epochs=5, weight_lr=0.3,
                            random_state=0).fit(X, y)
    clipped = clf.weights_ <= 0
    below = clf.weights_[clf.weights_ < 0]
    assert len(below) >= 0.8 * clipped.sum() >= 5
    assert np.all(-1e-3 < below)
    assert len(np.unique(below)) == len(below)
    assert clf.weights_[~clipped].min() > 0


class TrainingFlags(nn.Module):
    """Records, at each forward, whether the module is in training mode."""

    flags = []

    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.lin = nn.Linear(n_features, n_outputs)

    def forward(self, X):
        TrainingFlags.flags.append(self.training)
        return self.lin(X)


def test_training_steps_run_in_training_mode_after_a_callback_evaluates():
    # a user callback that puts the network in eval mode (to score it, say) must not leave
    # the following training steps in eval mode (dropout, batch norm)
    from skorch.callbacks import Callback

    class Evaluates(Callback):
        def on_epoch_end(self, net, **kwargs):
            net.module_.eval()
            TrainingFlags.flags.append("epoch end")

    X, y = blobs(64, 2)
    TrainingFlags.flags = []
    LossValClassifier(TrainingFlags, max_epochs=2, batch_size=32, callbacks=[Evaluates()],
                      random_state=0).fit(X, y)
    assert TrainingFlags.flags == [True, True, "epoch end", True, True, "epoch end"]


class FixedValues(BaseEstimator):
    """A valuer whose data_values_ are given (any estimator that sets them may value rows)."""

    def __init__(self, values=None):
        self.values = values

    def fit(self, X, y):
        self.data_values_ = np.asarray(self.values, dtype=float)
        return self


class RecordsWeights(ClassifierMixin, BaseEstimator):
    def fit(self, X, y, sample_weight=None):
        self.sample_weight_seen_ = np.asarray(sample_weight)
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


def test_weight_mode_weights_are_values_over_their_class_mean():
    # mode="weight": sample_weight = value clipped at 0 / its class's mean value; a class
    # smaller than average is pulled towards 1 by its size factor (size / average) ** 2
    y = np.array([0] * 6 + [1] * 3)                    # average class size 4.5
    values = np.array([1.0, 2.0, 3.0, -1.0, 2.0, 4.0, 0.5, 1.0, 1.5])
    X = np.arange(9.0).reshape(-1, 1)
    cleaned = CleanedEstimator(RecordsWeights(), FixedValues(values), mode="weight").fit(X, y)
    a = np.clip(values[:6], 0, None)
    factor_b = (3 / 4.5) ** 2
    expected = np.concatenate([a / a.mean(), 1 + factor_b * (values[6:] / values[6:].mean() - 1)])
    np.testing.assert_allclose(cleaned.sample_weight_, expected)
    np.testing.assert_allclose(cleaned.estimator_.sample_weight_seen_, expected)
    # a Pipeline gets them at its last step, whatever its length
    pipe = make_pipeline(StandardScaler(), StandardScaler(), RecordsWeights())
    cleaned = CleanedEstimator(pipe, FixedValues(values), mode="weight").fit(X, y)
    np.testing.assert_allclose(cleaned.estimator_[-1].sample_weight_seen_, expected)


def test_the_default_valuer_of_integer_classes_is_a_classifier():
    X, _ = blobs(60)
    y = np.arange(60) % 3  # three integer classes: valued as classes, capped per class
    # veto=None: the cap alone decides how many of each class go (the veto would spare some)
    cleaner = LossValCleaner(cut=0.5, max_class_share=0.2, veto=None, random_state=0)
    cleaner.fit_resample(X, y)
    assert isinstance(cleaner.estimator_, LossValClassifier)
    assert np.bincount(y[np.setdiff1d(np.arange(60), cleaner.sample_indices_)]).tolist() == [4] * 3


def test_a_cleaned_estimator_requires_y():
    assert get_tags(CleanedEstimator(LogisticRegression())).target_tags.required is True


def test_cli_names_at_most_five_rows_with_a_missing_target(tmp_path, capsys):
    from skval._cli import main

    path = tmp_path / "gaps.csv"
    path.write_text("a,y\n" + "".join(f"{i},{'' if i % 2 else 1}\n" for i in range(20)))
    with pytest.raises(SystemExit):
        main([str(path), "--target", "y"])
    assert "target column 'y' has missing values (rows [1, 3, 5, 7, 9])" in capsys.readouterr().err
