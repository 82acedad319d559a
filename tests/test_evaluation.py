"""skval.evaluation on constructed cases with known answers."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from skval.evaluation import (
    auroc,
    detection_scores,
    discovery_curve,
    inject_noise,
    kmeans_f1,
    precision_at_k,
    removal_curve,
)


def test_label_noise_classification():
    X = np.arange(200.0).reshape(100, 2)
    y = np.array(["a", "b", "c", "d"])[np.arange(100) % 4]
    Xn, yn, noisy = inject_noise(X, y, kind="label", rate=0.2, random_state=0)
    assert noisy.sum() == 20
    assert np.all(yn[noisy] != y[noisy]) and np.all(yn[~noisy] == y[~noisy])
    assert set(yn) <= set(y)
    np.testing.assert_array_equal(Xn, X)
    assert Xn is not X


def test_label_noise_regression_uses_other_rows_targets():
    y = np.arange(50.0)  # all distinct, so "another row's target" is a different value
    _, yn, noisy = inject_noise(np.zeros((50, 1)), y, kind="label", rate=0.1, task="regression",
                                random_state=1)
    assert noisy.sum() == 5
    assert np.all(yn[noisy] != y[noisy])
    assert set(yn[noisy]) <= set(y)


def test_feature_noise_in_standardised_units():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(4000, 3)) * [1.0, 10.0, 100.0]
    y = np.zeros(4000)
    X_copy = X.copy()
    Xn, yn, noisy = inject_noise(X, y, kind="feature", rate=0.25, random_state=0)
    np.testing.assert_array_equal(X, X_copy)  # input untouched
    np.testing.assert_array_equal(yn, y)
    np.testing.assert_array_equal(Xn[~noisy], X[~noisy])
    added = (Xn - X)[noisy] / X.std(axis=0)
    np.testing.assert_allclose(added.std(axis=0), 1.0, atol=0.06)
    assert np.all(added != 0)


def test_mixed_noise_half_each_disjoint():
    X = np.random.RandomState(0).normal(size=(100, 2))
    y = np.arange(100) % 2
    Xn, yn, noisy = inject_noise(X, y, kind="mixed", rate=0.2, random_state=3)
    label_rows = yn != y
    feature_rows = np.any(Xn != X, axis=1)
    assert label_rows.sum() == 10 and feature_rows.sum() == 10
    assert not np.any(label_rows & feature_rows)
    np.testing.assert_array_equal(noisy, label_rows | feature_rows)


def test_permute_noise_keeps_every_class_count():
    y = np.array(["a"] * 90 + ["b"] * 10)
    X = np.random.RandomState(0).normal(size=(100, 2))
    Xn, yn, noisy = inject_noise(X, y, kind="permute", rate=0.3, random_state=0)
    assert sorted(yn) == sorted(y)  # same labels, same counts
    np.testing.assert_array_equal(noisy, yn != y)  # the changed rows, no others
    assert 0 < noisy.sum() <= 30
    np.testing.assert_array_equal(Xn, X)
    assert y[0] == "a" and yn is not y  # the input is not modified


def test_permute_noise_regression_keeps_the_targets():
    y = np.arange(50, dtype=float)
    _, yn, noisy = inject_noise(np.zeros((50, 1)), y, kind="permute", rate=0.2,
                                task="regression", random_state=1)
    np.testing.assert_array_equal(np.sort(yn), y)
    assert noisy.sum() == (yn != y).sum() and 0 < noisy.sum() <= 10


def test_gross_noise_moves_targets_by_five_to_ten_standard_deviations():
    y = np.random.RandomState(0).normal(10.0, 3.0, size=400).astype(np.float32)
    X = np.ones((400, 2))
    Xn, yn, noisy = inject_noise(X, y, kind="gross", rate=0.1, task="regression",
                                 random_state=2)
    assert noisy.sum() == 40 and yn.dtype == np.float64
    np.testing.assert_array_equal(yn[~noisy], y[~noisy])
    shift = np.abs(yn - y)[noisy] / y.astype(np.float64).std()
    assert shift.min() >= 5.0 and shift.max() <= 10.0
    moved_up = (yn > y)[noisy].mean()
    assert 0.3 < moved_up < 0.7  # up or down at random
    np.testing.assert_array_equal(Xn, X)
    assert y.dtype == np.float32  # the input is not modified


def test_outlier_noise_moves_a_fifth_of_the_cells_far_in_the_noisy_rows_only():
    rng = np.random.RandomState(0)
    X = rng.normal(0.0, [1.0, 10.0, 0.1, 3.0, 5.0] * 4, size=(500, 20)).astype(np.float32)
    y = np.arange(500) % 3
    Xn, yn, noisy = inject_noise(X, y, kind="outlier", rate=0.1, random_state=3)
    assert noisy.sum() == 50 and Xn.dtype == np.float64
    np.testing.assert_array_equal(Xn[~noisy], X[~noisy])
    np.testing.assert_array_equal(yn, y)
    moved = Xn != X
    assert moved[noisy].sum(axis=1).min() >= 1  # every noisy row has a moved cell
    assert 0.15 < moved[noisy].mean() < 0.3  # about a fifth of its cells
    shift = np.abs(Xn - X)[moved] / np.broadcast_to(X.std(axis=0), X.shape)[moved]
    assert shift.min() >= 5.0 and shift.max() <= 10.0
    assert 0.3 < (Xn > X)[moved].mean() < 0.7  # up or down at random
    assert X.dtype == np.float32  # the input is not modified


def test_inject_noise_errors():
    with pytest.raises(ValueError, match="kind must be one of"):
        inject_noise(np.zeros((4, 1)), np.zeros(4), kind="both")
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\]"):
        inject_noise(np.zeros((4, 1)), np.zeros(4), rate=1.5)
    with pytest.raises(ValueError, match="at least 2 classes"):
        inject_noise(np.zeros((4, 1)), np.zeros(4))
    with pytest.raises(ValueError, match="kind='gross' .* needs task='regression'"):
        inject_noise(np.zeros((4, 1)), np.arange(4) % 2, kind="gross")


def test_kmeans_f1_known_answers():
    noisy = np.array([True, True, False, False, False])
    assert kmeans_f1([0.1, 0.2, 0.9, 1.0, 1.1], noisy) == 1.0
    # the low cluster is {0.1}: precision 1, recall 1/2
    assert kmeans_f1([0.1, 0.9, 1.0, 1.0, 1.1], noisy) == pytest.approx(2 / 3)
    # values that rank noisy rows highest: the low cluster holds no noisy row
    assert kmeans_f1([1.0, 1.1, 0.1, 0.1, 0.2], noisy) == 0.0


def test_kmeans_split_is_the_exact_optimum():
    rng = np.random.RandomState(0)
    values = rng.normal(size=30)
    noisy = np.zeros(30, bool)
    noisy[:5] = True
    # brute force over every threshold
    v = np.sort(values)
    best = min(range(1, 30), key=lambda k: v[:k].var() * k + v[k:].var() * (30 - k))
    predicted = values <= v[best - 1]
    tp = (predicted & noisy).sum()
    expected = 0.0 if tp == 0 else 2 * tp / (predicted.sum() + noisy.sum())
    assert kmeans_f1(values, noisy) == pytest.approx(expected)


def test_auroc_and_precision_at_k():
    noisy = np.array([True, False, True, False])
    values = np.array([0.1, 0.5, 0.3, 0.2])
    # pairs (noisy, clean) ordered correctly: (0.1<0.5),(0.1<0.2),(0.3<0.5) -> 3 of 4
    assert auroc(values, noisy) == 0.75
    assert precision_at_k(values, noisy) == 0.5  # lowest two: 0.1 (noisy), 0.2 (clean)
    assert precision_at_k(values, noisy, k=1) == 1.0
    scores = detection_scores(values, noisy)
    assert set(scores) == {"f1", "auroc", "precision_at_k"}
    with pytest.raises(ValueError, match="both noisy and clean"):
        auroc(values, np.ones(4, bool))
    with pytest.raises(TypeError, match="boolean mask"):
        auroc(values, np.array([1, 0, 1, 0]))
    with pytest.raises(ValueError, match="same length"):
        auroc(values, noisy[:3])
    with pytest.raises(ValueError, match="NaN"):
        auroc([np.nan, 1, 2, 3], noisy)


def test_discovery_curve():
    inspected, found = discovery_curve([0.3, 0.1, 0.2, 0.9], [False, True, True, False])
    np.testing.assert_allclose(inspected, [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(found, [0, 0.5, 1.0, 1.0, 1.0])


def test_removal_curve_removes_the_right_rows():
    # class 1 only among the highest-valued rows: removing them leaves one class
    rng = np.random.RandomState(0)
    X = rng.normal(size=(100, 2))
    y = (X[:, 0] > 0).astype(int)
    values = X[:, 0] + 10 * y  # highest values = the positive class
    X_test = rng.normal(size=(200, 2))
    y_test = (X_test[:, 0] > 0).astype(int)
    fracs, high = removal_curve(LogisticRegression(), X, y, values, X_test, y_test,
                                remove="high", fractions=[0.0, 0.1])
    _, low = removal_curve(LogisticRegression(), X, y, values, X_test, y_test,
                           remove="low", fractions=[0.0, 0.1])
    np.testing.assert_array_equal(fracs, [0.0, 0.1])
    assert high[0] == low[0] > 0.9  # nothing removed: the same model
    assert high[1] <= low[1]
    with pytest.raises(ValueError, match="remove must be"):
        removal_curve(LogisticRegression(), X, y, values, X_test, y_test, remove="middle")
