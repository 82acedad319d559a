"""Behaviour of LossValClassifier / LossValRegressor in scikit-learn workflows."""

import pickle

import numpy as np
import pytest
import sklearn
import torch
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from skval import LossValClassifier, LossValRegressor
from skval.evaluation import inject_noise

FAST = dict(max_epochs=5, random_state=0)


# ---------------------------------------------------------------- the values work
@pytest.mark.parametrize("with_val", [False, True])
def test_flipped_labels_get_low_values(flipped_cancer, with_val):
    X, y_noisy, flipped, y_clean = flipped_cancer
    kwargs = {}
    if with_val:
        # a small clean reference set drawn from the clean rows
        rng = np.random.RandomState(2)
        ref = rng.choice(np.flatnonzero(~flipped), 60, replace=False)
        kwargs = dict(X_val=X[ref], y_val=y_clean[ref])
    clf = LossValClassifier(random_state=0).fit(X, y_noisy, **kwargs)
    assert clf.data_values_.shape == (len(X),)
    auroc = roc_auc_score(flipped, -clf.data_values_)
    assert auroc >= 0.85, auroc
    # the model trained on noisy labels still predicts the clean labels well
    assert clf.score(X, y_clean) > 0.9


@pytest.mark.parametrize("with_val", [False, True])
def test_corrupted_targets_get_low_values(corrupted_friedman, with_val):
    X, y, corrupted = corrupted_friedman
    kwargs = {}
    if with_val:
        rng = np.random.RandomState(3)
        kwargs = dict(X_val=rng.uniform(size=(100, X.shape[1])))  # Friedman #1 features are U(0, 1)
    reg = LossValRegressor(random_state=0).fit(X, y, **kwargs)
    auroc = roc_auc_score(corrupted, -reg.data_values_)
    assert auroc >= 0.8, auroc


def test_feature_noise_rows_found_without_X_val(flipped_cancer):
    """Without X_val the reference is the training data: rows pushed off it are found."""
    X, _, _, y = flipped_cancer
    Xs = StandardScaler().fit_transform(X)
    rng = np.random.RandomState(4)
    noisy = np.zeros(len(X), bool)
    noisy[rng.choice(len(X), 57, replace=False)] = True
    Xn = Xs.copy()
    Xn[noisy] += rng.normal(0, 3, size=(noisy.sum(), X.shape[1]))
    clf = LossValClassifier(random_state=0).fit(Xn, y)
    assert roc_auc_score(noisy, -clf.data_values_) >= 0.8


def test_reference_is_independent_of_a_same_seeded_corruption():
    """inject_noise(random_state=0) then random_state=0: the reference is not the noisy rows.

    RandomState(0).choice(n, k, replace=False) is the first k rows of
    RandomState(0).permutation(n), which inject_noise corrupts; drawn that way the
    reference held only corrupted rows and feature noise went unseen.
    """
    X, y = make_classification(n_samples=1400, n_features=8, random_state=1)
    Xn, _, noisy = inject_noise(X, y, kind="feature", rate=0.2, random_state=0)  # 280 rows
    clf = LossValClassifier(max_epochs=10, random_state=0).fit(Xn, y)
    in_reference = (clf.net_.criterion_.reference_position >= 0).numpy()
    assert not in_reference[len(y):].any()  # never a canary (appended after the rows)
    in_reference = in_reference[:len(y)]
    assert in_reference.sum() == 256
    share = noisy[in_reference].mean()
    assert 0.1 < share < 0.3, share  # about the 20 % of all rows; it was 100 %
    assert roc_auc_score(noisy, clf.evidence_[:, 1]) >= 0.75  # feature side; 0.83 here


# ---------------------------------------------------------------- API basics
def test_classifier_outputs(flipped_cancer, cancer_clf):
    X, _, _, _ = flipped_cancer
    clf = cancer_clf  # LossValClassifier(**FAST).fit(X, y)
    proba = clf.predict_proba(X[:7])
    assert proba.shape == (7, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(clf.predict(X[:7]), clf.classes_[proba.argmax(axis=1)])
    assert clf.n_epochs_ == 5
    assert clf.n_reference_ == 256
    assert np.all(clf.weights_ >= 0)


def test_regressor_keeps_target_shape(diabetes, diabetes_reg):
    X, y = diabetes
    reg = diabetes_reg  # LossValRegressor(**FAST).fit(X, y)
    assert reg.predict(X[:5]).shape == (5,)
    assert not hasattr(reg, "predict_proba")
    assert reg.score(X, y) > 0.3
    Y = np.column_stack([y, -2 * y + 100])
    reg2 = LossValRegressor(**FAST).fit(X, Y)
    pred = reg2.predict(X)
    assert pred.shape == (len(X), 2)
    # the second column is learned in its own units (targets are standardised inside)
    assert np.corrcoef(pred[:, 1], Y[:, 1])[0, 1] > 0.6
    assert reg2.data_values_.shape == (len(X),)


def test_shared_fits_are_FAST(cancer_clf, diabetes_reg):
    """conftest's shared fits are the ``**FAST`` fits that the tests here read in their place."""
    assert cancer_clf.get_params() == LossValClassifier(**FAST).get_params()
    assert diabetes_reg.get_params() == LossValRegressor(**FAST).get_params()


def test_unfitted_predict_raises():
    with pytest.raises(NotFittedError):
        LossValClassifier().predict(np.zeros((2, 3)))
    with pytest.raises(NotFittedError):
        LossValRegressor().predict(np.zeros((2, 3)))


def test_same_random_state_gives_identical_values(flipped_cancer, cancer_clf):
    X, y, _, _ = flipped_cancer
    a = cancer_clf.data_values_  # LossValClassifier(**FAST).fit(X, y), fitted earlier
    b = LossValClassifier(**FAST).fit(X, y).data_values_
    c = LossValClassifier(max_epochs=5, random_state=1).fit(X, y).data_values_
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_string_and_noncontiguous_labels(flipped_cancer):
    X, y, _, _ = flipped_cancer
    names = np.array(["benign", "malignant"])[y]
    clf = LossValClassifier(**FAST).fit(X, names)
    assert set(clf.predict(X)) <= {"benign", "malignant"}
    assert list(clf.classes_) == ["benign", "malignant"]
    codes = np.array([-7, 40])[y]
    clf2 = LossValClassifier(**FAST).fit(X, codes)
    assert set(np.unique(clf2.predict(X))) <= {-7, 40}
    # same labels up to renaming: the same values
    np.testing.assert_allclose(clf.data_values_, clf2.data_values_)


def test_three_classes():
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    clf = LossValClassifier(**FAST).fit(X, y + 10)
    assert clf.predict_proba(X).shape == (len(X), 3)
    assert clf.score(X, y + 10) > 0.9


def test_dataframe_input_keeps_feature_names(flipped_cancer, cancer_clf):
    pd = pytest.importorskip("pandas")
    X, y, _, _ = flipped_cancer
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])], index=np.arange(len(X)) * 3)
    clf = LossValClassifier(**FAST).fit(df, pd.Series(y, index=df.index))
    assert list(clf.feature_names_in_) == list(df.columns)
    np.testing.assert_array_equal(clf.predict(df), cancer_clf.predict(X))  # same fit on the ndarray
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X)


@pytest.mark.parametrize("dtype", [np.int64, np.float64, np.float32])
def test_input_dtypes(flipped_cancer, dtype):
    X, y, _, _ = flipped_cancer
    Xd = (X * 10).astype(dtype)
    clf = LossValClassifier(**FAST).fit(Xd, y)
    assert clf.data_values_.dtype == np.float64
    assert np.isfinite(clf.data_values_).all()
    assert clf.predict(Xd).shape == (len(X),)


def test_inputs_are_not_modified(flipped_cancer):
    X, y, _, _ = flipped_cancer
    X32 = X.astype(np.float32)
    copies = X32.copy(), y.copy(), X32[:50].copy()
    LossValClassifier(**FAST).fit(X32, y, X_val=X32[:50])
    np.testing.assert_array_equal(X32, copies[0])
    np.testing.assert_array_equal(y, copies[1])
    np.testing.assert_array_equal(X32[:50], copies[2])


def test_every_row_is_trained_on(cancer_clf):
    """No internal hold-out: every weight moves away from its initial 1."""
    assert np.all(cancer_clf.data_values_ != 1.0)


def test_weight_history(diabetes, diabetes_reg):
    X, y = diabetes
    reg = LossValRegressor(max_epochs=4, record_history=True, random_state=0).fit(X, y)
    assert reg.weight_history_.shape == (4, len(X))
    np.testing.assert_allclose(reg.weight_history_[-1], reg.weights_, rtol=1e-6)
    assert not hasattr(diabetes_reg, "weight_history_")  # LossValRegressor(**FAST), no history


# ---------------------------------------------------------------- scikit-learn workflows
def test_clone_and_params():
    clf = LossValClassifier(lr=0.003, hidden_layer_sizes=(8,), module__foo=1, optimizer__weight_decay=1e-4)
    params = clf.get_params()
    assert params["module__foo"] == 1 and params["optimizer__weight_decay"] == 1e-4
    cloned = clone(clf)
    assert cloned.get_params() == params
    cloned.set_params(optimizer__weight_decay=0.1, lr=0.5)
    assert cloned.optimizer__weight_decay == 0.1 and cloned.lr == 0.5
    assert clf.optimizer__weight_decay == 1e-4


def test_pipeline_cross_val_score(flipped_cancer):
    X, _, _, y = flipped_cancer
    pipe = make_pipeline(StandardScaler(), LossValClassifier(**FAST))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.9


def test_grid_search_parallel(flipped_cancer):
    X, _, _, y = flipped_cancer
    grid = GridSearchCV(
        LossValClassifier(random_state=0),
        {"lr": [0.01, 0.003], "max_epochs": [2, 4], "hidden_layer_sizes": [(16,), (32, 32)]},
        cv=2,
        n_jobs=2,
    ).fit(X, y)
    assert len(grid.cv_results_["params"]) == 8
    assert grid.best_score_ > 0.9
    assert grid.best_estimator_.data_values_.shape == (len(X),)


def test_pickle_round_trip(flipped_cancer, cancer_clf):
    X, _, _, _ = flipped_cancer
    clf = cancer_clf  # LossValClassifier(**FAST).fit(X, y)
    loaded = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.data_values_, clf.data_values_)


class _TinyNet(nn.Module):
    def __init__(self, n_features, n_outputs, width=4):
        super().__init__()
        self.width = width
        self.body = nn.Sequential(nn.Linear(n_features, width), nn.ReLU(), nn.Linear(width, n_outputs))

    def forward(self, X):
        return self.body(X)


def test_custom_module_class(flipped_cancer):
    X, y, _, _ = flipped_cancer
    clf = LossValClassifier(_TinyNet, module__width=7, **FAST).fit(X, y)
    assert isinstance(clf.net_.module_, _TinyNet)
    assert clf.net_.module_.width == 7
    assert clf.score(X, y) > 0.6


def test_custom_module_instance_not_modified(diabetes):
    X, y = diabetes
    net = _TinyNet(X.shape[1], 1)
    before = [p.detach().clone() for p in net.parameters()]
    reg = LossValRegressor(net, **FAST).fit(X, y)
    for p, q in zip(before, net.parameters()):
        assert torch.equal(p, q)
    assert reg.net_.module_ is not net


@pytest.mark.parametrize("weight_update", ["batch", "row"])
def test_weight_lr_is_separate(diabetes, weight_update):
    X, y = diabetes
    frozen = LossValRegressor(weight_lr=1e-12, weight_update=weight_update, **FAST).fit(X, y)
    np.testing.assert_allclose(frozen.weights_, 1.0, atol=1e-6)
    groups = frozen.net_.optimizer_.param_groups
    weights = frozen.net_.rows_.weights
    update = frozen.net_.rows_.update
    if weight_update == "row":  # the network's optimizer class moves the weights, in a group of their own
        groups = groups + update.optimizer.param_groups
        assert sorted(g["lr"] for g in groups) == [1e-12, 0.01]
    else:  # BatchScaledMomentum moves them; the network's optimizer never sees them
        assert [g["lr"] for g in groups] == [0.01]
        assert not any(p is weights for g in groups for p in g["params"])
        assert update.lr == 1e-12


def test_batch_update_keeps_the_size_of_each_gradient():
    from skval._weights import BatchScaledMomentum

    weights = nn.Parameter(torch.ones(4))
    update = BatchScaledMomentum(weights, lr=0.1)
    update.step(torch.tensor([0, 1, 2]), torch.tensor([1.0, 3.0, -2.0]))
    # first step: the bias-corrected moments are the gradient and the squared batch median (2)
    torch.testing.assert_close(weights.detach(), torch.tensor([0.95, 0.85, 1.1, 1.0]))
    # the next step decays every row's momentum, also outside the batch
    update.step(torch.tensor([3]), torch.tensor([2.0]))
    update.flush()  # the lazy update moves the rows outside the batch when they are read
    assert weights[0] < 0.95 and weights[1] < 0.85 and weights[2] > 1.1 and weights[3] < 1.0
    # Adam's first step moves every row by lr, whatever its gradient
    adam_weights = nn.Parameter(torch.ones(4))
    adam = torch.optim.Adam([adam_weights], lr=0.1)
    adam_weights.grad = torch.tensor([1.0, 3.0, -2.0, 0.0])
    adam.step()
    torch.testing.assert_close(adam_weights.detach(), torch.tensor([0.9, 0.9, 1.1, 1.0]))


def test_sinkhorn_and_paper_options(flipped_cancer):
    X, y, flipped, _ = flipped_cancer
    sink = LossValClassifier(ot_method="sinkhorn", max_epochs=10, random_state=0).fit(X, y)
    assert np.isfinite(sink.data_values_).all()
    assert roc_auc_score(flipped, -sink.data_values_) > 0.8
    # the authors' formulation: OT not squared, weights free to turn negative, moved by Adam
    paper = LossValClassifier(ot_power=1.0, positive_weights=False, weight_update="row",
                              ot_scaling="standard",
                              random_state=0).fit(X, y)
    assert np.isfinite(paper.data_values_).all()
    assert roc_auc_score(flipped, -paper.data_values_) > 0.8


# ---------------------------------------------------------------- metadata routing
@pytest.fixture
def routing():
    with sklearn.config_context(enable_metadata_routing=True):
        yield


def test_pipeline_routes_and_scales_X_val(routing, flipped_cancer):
    X, y, _, _ = flipped_cancer
    X_val = X[:40] * 1.0
    # ot_scaling="standard": the reference is then exactly the scaled X_val
    est = LossValClassifier(standardize=False, ot_scaling="standard", n_reference=1000,
                            **FAST).set_fit_request(
        X_val=True, y_val=True
    )
    pipe = Pipeline([("scale", StandardScaler()), ("lv", est)], transform_input=["X_val"])
    pipe.fit(X, y, X_val=X_val, y_val=y[:40])
    fitted = pipe.named_steps["lv"]
    expected = pipe.named_steps["scale"].transform(X_val).astype(np.float32)
    reference = fitted.net_.criterion_.reference.numpy()
    np.testing.assert_allclose(reference, expected, rtol=1e-5, atol=1e-5)
    # raw X_val is far from the scaled one: the scaler really was applied
    assert np.abs(reference - X_val).max() > 10


def test_grid_search_routes_X_val(routing, flipped_cancer):
    X, y, _, _ = flipped_cancer
    est = LossValClassifier(**FAST).set_fit_request(X_val=True)
    grid = GridSearchCV(est, {"lr": [0.01, 0.003]}, cv=2).fit(X, y, X_val=X[:30])
    assert grid.best_estimator_.n_reference_ == 30


def test_fit_leaves_the_global_torch_rng_alone(diabetes):
    X, y = diabetes
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    LossValRegressor(max_epochs=1, random_state=0).fit(X, y)
    torch.testing.assert_close(torch.rand(3), expected)  # the user's seed still holds
