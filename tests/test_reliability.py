"""Reliability: random inputs, faults, persistence, refits and concurrency."""

import pickle
import threading
import warnings

import joblib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback

from skval import LossValClassifier, LossValRegressor

# ---------------------------------------------------------------- property-based inputs


@st.composite
def datasets(draw):
    n = draw(st.sampled_from([2, 3, 7, 31, 32, 33, 80]))
    d = draw(st.integers(1, 6))
    dtype = draw(st.sampled_from(["int64", "float32", "float64", "bool"]))
    scale = draw(st.sampled_from([1.0, 1e-8, 1e8]))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d)) * scale
    if draw(st.booleans()):
        X[:, 0] = 3.0  # a constant feature
    if draw(st.booleans()) and n > 3:
        X[1] = X[0]  # duplicate rows
    X = (X > 0) if dtype == "bool" else X.astype(dtype)
    kind = draw(st.sampled_from(["int", "str", "noncontiguous", "many", "imbalanced", "regression"]))
    if kind == "regression":
        y = rng.normal(size=n) * scale
    else:
        n_classes = {"many": min(n, 12)}.get(kind, 2)
        y = np.arange(n) % n_classes
        if kind == "imbalanced":
            y = np.zeros(n, int)
            y[-1] = 1
        y = {"str": np.array(["no", "yes"])[y % 2] if kind == "str" else y,
             "noncontiguous": y * 7 - 3}.get(kind, y)
    return X, y, kind


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets())
def test_random_inputs_fit_or_fail_cleanly(data):
    X, y, kind = data
    X_before, y_before = X.copy(), y.copy()
    est = (LossValRegressor if kind == "regression" else LossValClassifier)(
        max_epochs=2, hidden_layer_sizes=(8,), random_state=0
    )
    try:
        est.fit(X, y)
    except (ValueError, TypeError) as exc:
        # only the documented refusals; no torch / POT internals
        assert "sample" in str(exc) or "class" in str(exc), exc
    else:
        assert est.data_values_.shape == (len(X),)
        assert np.isfinite(est.data_values_).all()
        assert est.predict(X).shape == y.shape
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)


# ---------------------------------------------------------------- faults


class _InterruptAt(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise KeyboardInterrupt


def test_keyboard_interrupt_keeps_values_so_far(flipped_cancer, cancer_clf_history):
    X, y, _, _ = flipped_cancer
    est = LossValClassifier(max_epochs=10, record_history=True, random_state=0,
                            callbacks=[_InterruptAt(3)])
    with pytest.warns(RuntimeWarning, match="stopped after 3 of 10 epochs"):
        est.fit(X, y)
    assert est.n_epochs_ == 3
    assert est.weight_history_.shape == (3, len(X))
    np.testing.assert_allclose(est.data_values_, est.weight_history_[-1])
    assert est.predict(X).shape == (len(X),)
    # the values are those of a run stopped after 3 epochs
    three = cancer_clf_history  # LossValClassifier(max_epochs=3, record_history=True, random_state=0)
    np.testing.assert_allclose(est.data_values_, three.data_values_, rtol=1e-6)


# ---------------------------------------------------------------- persistence


@pytest.mark.parametrize("est_cls", [LossValClassifier, LossValRegressor])
def test_joblib_round_trip(est_cls, diabetes, tmp_path):
    X, y = diabetes
    if est_cls is LossValClassifier:
        y = y > np.median(y)
    est = est_cls(max_epochs=3, random_state=0).fit(X, y)
    path = tmp_path / "model.joblib"
    joblib.dump(est, path)
    loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    np.testing.assert_array_equal(loaded.data_values_, est.data_values_)


@pytest.mark.cuda  # skipped by conftest when torch sees no CUDA device
def test_cuda_fit_unpickles_on_cpu(diabetes):
    X, y = diabetes
    est = LossValRegressor(max_epochs=2, device="cuda", random_state=0).fit(X, y)
    assert next(est.net_.module_.parameters()).is_cuda
    blob = pickle.dumps(est)
    # skorch maps CUDA tensors to the CPU on load when CUDA is missing
    loaded = pickle.loads(blob)
    assert loaded.predict(X).shape == (len(X),)
    np.testing.assert_allclose(loaded.data_values_, est.data_values_)


# ---------------------------------------------------------------- refits


def test_refit_resets_weights_and_handles_new_length(diabetes):
    X, y = diabetes
    est = LossValRegressor(max_epochs=3, random_state=0)
    first = est.fit(X, y).data_values_.copy()
    again = est.fit(X, y).data_values_
    np.testing.assert_array_equal(first, again)  # a new fit starts from w = 1 again
    shorter = est.fit(X[:100], y[:100]).data_values_
    assert shorter.shape == (100,)
    assert est.net_.criterion_.data_weights.shape == (100,)


# ---------------------------------------------------------------- concurrency


def test_threads_give_sequential_values(flipped_cancer):
    X, y, _, _ = flipped_cancer
    seeds = [0, 1]
    sequential = [LossValClassifier(max_epochs=3, random_state=s).fit(X, y).data_values_ for s in seeds]
    results = {}

    def work(seed):
        results[seed] = LossValClassifier(max_epochs=3, random_state=seed).fit(X, y).data_values_

    threads = [threading.Thread(target=work, args=(s,)) for s in seeds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s, expected in zip(seeds, sequential):
        np.testing.assert_array_equal(results[s], expected)


def test_grid_search_parallel_matches_sequential(flipped_cancer):
    X, y, _, _ = flipped_cancer
    params = {"lr": [0.01, 0.003]}
    est = LossValClassifier(max_epochs=2, hidden_layer_sizes=(16,), random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        par = GridSearchCV(est, params, cv=2, n_jobs=2).fit(X, y)
        seq = GridSearchCV(est, params, cv=2, n_jobs=1).fit(X, y)
    np.testing.assert_array_equal(par.cv_results_["mean_test_score"], seq.cv_results_["mean_test_score"])
    np.testing.assert_array_equal(par.best_estimator_.data_values_, seq.best_estimator_.data_values_)
