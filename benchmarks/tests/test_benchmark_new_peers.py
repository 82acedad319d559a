"""The benchmark's AUM and LAVA re-implementations on cases with known answers, and the
cleanlab Datalab peers (the package itself) on a case with an obvious answer."""

import time

import numpy as np
import ot
import pytest
import torch
from numpy.testing import assert_allclose

from benchmarks import _peers
from benchmarks._tasks import CLF, REG, Problem

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def problem(X, y, kind, X_val=None, y_val=None, seed=0, max_epochs=None):
    return Problem(X, y, X_val, y_val, kind, seed, max_epochs=max_epochs, skval_params={})


def two_clusters(n=40, flipped=(3, 25), seed=0):
    """Two far-apart Gaussian clusters in 2-D, labels 0 / 1, the rows of ``flipped`` mislabelled."""
    rng = np.random.RandomState(seed)
    y_true = np.r_[np.zeros(n // 2, int), np.ones(n // 2, int)]
    X = rng.normal(scale=0.5, size=(n, 2)) + 4 * y_true[:, None]
    y = y_true.copy()
    y[list(flipped)] = 1 - y[list(flipped)]
    return X, y


# ----------------------------------------------------------------------------- AUM

def test_aum_margin_by_hand():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 1.0, 1.0]])
    margins = _peers.aum_margin(logits, torch.tensor([0, 0, 2]))
    # 2 - 1; 0 - 3 (another class is far ahead); a three-way tie is margin 0
    assert_allclose(margins.numpy(), [1.0, -3.0, 0.0])


@pytest.mark.parametrize("kind", [CLF, REG])
def test_aum_of_a_network_that_never_moves_is_the_statistic_of_its_first_logits(kind):
    # with a zero learning rate every epoch sees the seeded initial network
    rng = np.random.RandomState(0)
    X = rng.normal(size=(30, 3))
    y = rng.randint(3, size=30) if kind == CLF else rng.normal(size=30)
    p = problem(X, y, kind, seed=7)

    record = _peers.training_dynamics(p, epochs=3, lr=0.0, batch_size=8)
    values = _peers.aum_values(p, epochs=3, lr=0.0, batch_size=8)

    with torch.no_grad():
        out = _peers.aum_network(3, 3 if kind == CLF else 1, seed=7)(
            torch.as_tensor(X, dtype=torch.float32))
    if kind == CLF:
        expected = _peers.aum_margin(out, torch.as_tensor(y)).numpy()
    else:
        expected = -(out[:, 0].numpy() - y.astype(np.float32)) ** 2
    assert record.shape == (3, 30)
    assert_allclose(record, np.tile(expected, (3, 1)), rtol=1e-5, atol=1e-6)
    assert_allclose(values, expected, rtol=1e-5, atol=1e-6)


def test_aum_puts_the_flipped_labels_lowest():
    X, y = two_clusters()
    values = _peers.aum_values(problem(X, y, CLF, seed=0), epochs=20)
    assert set(np.argsort(values)[:2]) == {3, 25}
    assert values[[3, 25]].max() < 0 < np.median(np.delete(values, [3, 25]))


def test_aum_regression_puts_the_swapped_targets_lowest():
    rng = np.random.RandomState(1)
    X = rng.uniform(-1, 1, size=(60, 2))
    y = X[:, 0] - X[:, 1]
    y[[5, 40]] += np.array([4.0, -4.0])
    values = _peers.aum_values(problem(X, y, REG, seed=1), epochs=30)
    assert set(np.argsort(values)[:2]) == {5, 40}


def test_aum_runs_max_epochs_when_the_problem_sets_it():
    X, y = two_clusters()
    assert _peers.training_dynamics(problem(X, y, CLF, max_epochs=4)).shape == (4, 40)


# ----------------------------------------------------------------------------- LAVA

def test_class_distances_are_the_squared_w2_between_the_classes():
    X = np.array([[0.0], [1.0], [10.0], [11.0]])
    y = np.array([0, 0, 1, 1])
    X_ref = np.array([[2.0], [3.0], [10.0], [11.0]])
    y_ref = np.array([0, 0, 1, 1])
    # {0, 1} -> {2, 3}: each point moves 2; {0, 1} -> {10, 11}: 10; {10, 11} -> {2, 3}: 8
    assert_allclose(_peers.class_distances(X, y, X_ref, y_ref), [[4.0, 100.0], [64.0, 0.0]])


def test_lava_cost_adds_the_label_distance_of_the_two_rows_classes():
    X, y = two_clusters(flipped=())
    X_ref, y_ref = X[::4], y[::4]
    p = problem(X, y, CLF, X_ref, y_ref)
    labels = _peers.class_distances(X, y, X_ref, y_ref)
    cost = _peers.lava_cost(p)
    for i, j in [(0, 0), (0, 9), (30, 1), (30, 7)]:
        assert cost[i, j] == pytest.approx(np.sum((X[i] - X_ref[j]) ** 2) + labels[y[i], y_ref[j]])


def test_lava_regression_cost_weighs_the_target_like_the_features():
    rng = np.random.RandomState(2)
    X, y = rng.normal(size=(20, 3)), 5 * rng.normal(size=20)
    X_ref, y_ref = rng.normal(size=(6, 3)), 5 * rng.normal(size=6)
    cost = _peers.lava_cost(problem(X, y, REG, X_ref, y_ref))
    features = ot.dist(X, X_ref)
    target = cost - features
    assert target.mean() == pytest.approx(features.mean())
    assert_allclose(target, (y[:, None] - y_ref) ** 2 * features.mean()
                    / ((y[:, None] - y_ref) ** 2).mean())


def test_calibrated_gradient_is_the_potential_minus_the_others_mean():
    f = np.array([1.0, 2.0, 6.0])
    # f_i - mean of the other two
    assert_allclose(_peers.calibrated_gradient(f), [1 - 4, 2 - 3.5, 6 - 1.5])


def entropic_objective(a, b, cost, reg):
    """Entropic OT value <P, C> + reg sum P (log P - 1), at POT's Sinkhorn plan."""
    plan = ot.sinkhorn(a, b, cost, reg, method="sinkhorn_log", numItermax=100_000, stopThr=1e-13)
    return np.sum(plan * cost) + reg * np.sum(plan * (np.log(plan) - 1))


def test_calibrated_gradient_is_the_derivative_of_moving_mass_to_a_row():
    # LAVA's claim: the calibrated gradient is the OT change when mass moves to row i from
    # all the other training rows evenly; checked by central finite differences
    rng = np.random.RandomState(3)
    cost = rng.uniform(0.5, 2.0, size=(6, 4))
    reg = 0.2
    values = _peers.calibrated_gradient(_peers.entropic_potentials(cost, reg))

    scale = cost.mean()
    a, b = np.full(6, 1 / 6), np.full(4, 1 / 4)
    eps = 1e-5
    for i in range(6):
        direction = np.full(6, -1 / 5)
        direction[i] = 1.0
        up = entropic_objective(a + eps * direction, b, cost / scale, reg)
        down = entropic_objective(a - eps * direction, b, cost / scale, reg)
        # the potentials are in the cost's units; the objective was on cost / scale
        assert values[i] == pytest.approx(scale * (up - down) / (2 * eps), rel=1e-4, abs=1e-7)


def test_lava_values_are_minus_the_calibrated_gradient():
    # LAVA's value of a row is minus the change of the entropic OT distance to the reference
    # when mass moves to that row from the other training rows evenly. Checked from outside
    # the implementation: the ground cost written out by hand, the regularisation 0.1 x the
    # mean cost, and the derivative by central finite differences of the entropic objective
    X = np.array([[0.0], [1.0], [10.0], [11.0], [12.0]])
    y = np.array([0, 0, 1, 1, 0])  # the last row lies among class 1 but is labelled 0
    X_ref, y_ref = np.array([[2.0], [3.0], [10.0], [11.0]]), np.array([0, 0, 1, 1])
    # squared W2 between the classes, by the 1-D quantile functions (mass 1/3 and 1/2 a point):
    # {0, 1, 12} -> {2, 3}: 4/3 + 1/6 + 4/6 + 81/3; {0, 1, 12} -> {10, 11}: 100/3 + 81/6 + 100/6
    # + 1/3; {10, 11} -> {2, 3}: 64; {10, 11} -> {10, 11}: 0
    labels = np.array([[175 / 6, 383 / 6], [64.0, 0.0]])
    cost = (X - X_ref.T) ** 2 + labels[y][:, y_ref]
    reg = 0.1 * cost.mean()
    a, b = np.full(5, 1 / 5), np.full(4, 1 / 4)
    eps = 1e-5
    expected = np.empty(5)
    for i in range(5):
        move = np.full(5, -1 / 4)
        move[i] = 1.0
        up = entropic_objective(a + eps * move, b, cost, reg)
        down = entropic_objective(a - eps * move, b, cost, reg)
        expected[i] = -(up - down) / (2 * eps)

    values = _peers.lava_values(problem(X, y, CLF, X_ref, y_ref))
    assert_allclose(values, expected, rtol=1e-4, atol=1e-6 * cost.mean())
    assert np.argmin(values) == 4  # more mass on the mislabelled row raises the distance most


def test_lava_puts_a_far_row_lowest():
    X, y = two_clusters(flipped=())
    X_ref, y_ref = X[1::2].copy(), y[1::2]  # the clean rows as they were
    X[10] += 15.0  # a corrupted training row, far from every reference row
    values = _peers.lava_values(problem(X, y, CLF, X_ref, y_ref))
    assert np.argmin(values) == 10


def test_lava_puts_flipped_labels_below_the_clean_rows_of_their_cluster():
    X, y = two_clusters(flipped=(3, 25))
    clean = np.r_[np.zeros(20, int), np.ones(20, int)]
    ref = np.arange(0, 40, 2)
    values = _peers.lava_values(problem(X, y, CLF, X[ref] + 0.01, clean[ref]))
    assert set(np.argsort(values)[:2]) == {3, 25}


# ----------------------------------------------------------------------------- Datalab

needs_datalab = pytest.mark.skipif(_peers.Datalab is None, reason="cleanlab[datalab] not installed")


@needs_datalab
def test_datalab_scores_find_the_outlier_and_the_flipped_label():
    X, y = two_clusters(n=60, flipped=(7,))
    X[40] += 30.0
    p = problem(X, y, CLF, seed=0)
    label = _peers.datalab_label_values(p)
    outlier = _peers.datalab_outlier_values(p)
    both = _peers.datalab_values(p)
    assert np.argmin(outlier) == 40
    assert np.argmin(label) == 7
    assert_allclose(both, np.minimum(label, outlier))
    assert ((0 <= both) & (both <= 1)).all()


@needs_datalab
def test_datalab_regression_label_score_finds_a_wrong_target():
    rng = np.random.RandomState(4)
    X = rng.uniform(-1, 1, size=(80, 2))
    y = 2 * X[:, 0] + 0.05 * rng.normal(size=80)
    y[13] += 5.0
    assert np.argmin(_peers.datalab_label_values(problem(X, y, REG, seed=0))) == 13


def test_shared_work_is_computed_once_and_charged_to_each_user():
    p = problem(np.zeros((2, 1)), np.zeros(2), REG)
    calls = []

    def compute():
        calls.append(1)
        time.sleep(0.01)
        return "result"

    assert _peers.shared(p, "key", compute) == "result"
    assert "reused_seconds" not in p.cache
    assert _peers.shared(p, "key", compute) == "result"
    assert calls == [1]
    assert p.cache["reused_seconds"] == p.cache["key"][1] >= 0.01


def test_new_peers_are_listed_and_marked():
    for name in ("aum", "lava", "datalab", "datalab_label", "datalab_outlier"):
        assert name in _peers.PEERS
    assert _peers.label("aum") == "aum (reimpl.)" and _peers.label("lava") == "lava (reimpl.)"
    assert _peers.label("datalab") == "datalab"
