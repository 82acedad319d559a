"""The benchmarks' reimplemented peers, checked by brute force on cases small enough to enumerate,
and the report formatting on tiny result sets."""

from itertools import combinations
from math import factorial

import numpy as np
import pytest
from sklearn.dummy import DummyRegressor
from numpy.testing import assert_allclose
from sklearn.model_selection import KFold

from benchmarks import _peers
from benchmarks._quality_report import aggregate_table, detail_table
from benchmarks._report import csv_rows, format_duration, markdown_table, mean_by
from benchmarks._tasks import CLF, REG, TASKS, Problem, SplitSizes, split_task

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def problem(X, y, kind, X_val=None, y_val=None, seed=0):
    return Problem(X, y, X_val, y_val, kind, seed, max_epochs=None, skval_params={})


# ----------------------------------------------------------------------------- KNN-Shapley

def knn_game(S, x_test, y_test, X, y, k, utility):
    """The KNN game by its definition: sum of the utilities of the k rows of S nearest to the
    test row (ties by row number), divided by k; 0 for the empty set."""
    dist = {i: np.linalg.norm(X[i] - x_test) for i in S}
    nearest = sorted(S, key=lambda i: (dist[i], i))[:k]
    return sum(utility(y[i], y_test) for i in nearest) / k


def shapley_by_enumeration(n, value):
    """Shapley values of the game ``value(tuple of players)``, over every subset."""
    phi = np.zeros(n)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for size in range(n):
            weight = factorial(size) * factorial(n - size - 1) / factorial(n)
            for S in combinations(others, size):
                phi[i] += weight * (value(S + (i,)) - value(S))
    return phi


@pytest.mark.parametrize("kind", [CLF, REG])
@pytest.mark.parametrize("k", [1, 3, 10])  # 10: more neighbours than rows
def test_knn_shapley_equals_shapley_values_of_enumerated_subsets(kind, k):
    rng = np.random.RandomState(k)
    X, X_val = rng.normal(size=(6, 2)), rng.normal(size=(3, 2))
    if kind == CLF:
        y, y_val = np.array([0, 1, 0, 1, 1, 0]), np.array([0, 1, 1])

        def utility(a, b):
            return float(a == b)
    else:
        y, y_val = rng.normal(size=6), rng.normal(size=3)

        def utility(a, b):
            return -(a - b) ** 2

    values = _peers.knn_shapley_values(problem(X, y, kind, X_val, y_val), k=k)

    per_test_row = [shapley_by_enumeration(
        6, lambda S, t=t: knn_game(S, X_val[t], y_val[t], X, y, k, utility)) for t in range(3)]
    assert_allclose(values, np.mean(per_test_row, axis=0), rtol=1e-12, atol=1e-12)
    # efficiency: the values add up to the game's value of the whole training set
    whole = np.mean([knn_game(range(6), X_val[t], y_val[t], X, y, k, utility) for t in range(3)])
    assert values.sum() == pytest.approx(whole)


def test_knn_shapley_by_hand_one_test_row():
    # rows at distance 1, 2, 3 from the test row; labels match, miss, match; k = 1.
    # Jia et al.'s recursion: s3 = 1/3, s2 = s3 + (0 - 1) * 1/2 = -1/6, s1 = s2 + (1 - 0) = 5/6
    X = np.array([[1.0], [2.0], [3.0]])
    values = _peers.knn_shapley(X, np.array([1, 0, 1]), np.array([[0.0]]), np.array([1]),
                                k=1, utility=np.equal)
    assert_allclose(values, [5 / 6, -1 / 6, 1 / 3])


# ----------------------------------------------------------------------------- Data-OOB

def oob_scores_row_by_row(bag, X, y, kind):
    """Each row's mean score over the trees whose bootstrap sample left it out, one
    prediction at a time."""
    n = len(y)
    scores = [[] for _ in range(n)]
    for tree, rows, features in zip(bag.estimators_, bag.estimators_samples_,
                                    bag.estimators_features_):
        in_bag = set(rows.tolist())
        for i in range(n):
            if i not in in_bag:
                pred = tree.predict(X[i:i + 1, features])[0]
                scores[i].append(float(pred == y[i]) if kind == CLF else -(pred - y[i]) ** 2)
    means = np.array([np.mean(s) if s else np.nan for s in scores])
    means[np.isnan(means)] = np.nanmean(means)  # never out of bag: the other rows' mean
    return means


@pytest.mark.parametrize("kind", [CLF, REG])
@pytest.mark.parametrize("n_trees", [2, 15])  # 2 trees: several rows are never out of bag
def test_data_oob_equals_row_by_row_out_of_bag_scores(kind, n_trees):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(30, 3))
    y = (X[:, 0] > 0).astype(int) if kind == CLF else X[:, 0] + 0.3 * rng.normal(size=30)
    p = problem(X, y, kind, seed=3)

    values = _peers.data_oob_values(p, n_trees=n_trees)

    bag = _peers.fit_bagged_trees(p, n_trees)
    expected = oob_scores_row_by_row(bag, X, y, kind)
    assert_allclose(values, expected, rtol=1e-12)
    if n_trees == 2:
        never_out = np.ones(30, bool)
        for rows in bag.estimators_samples_:
            never_out &= np.isin(np.arange(30), rows)
        assert never_out.any()


def test_data_oob_gives_a_flipped_label_no_credit():
    # two well separated clusters; row 2 sits inside the class-0 cluster with label 1
    X = np.r_[np.arange(8.0), 20 + np.arange(8.0)][:, None]
    y = np.r_[np.zeros(8, int), np.ones(8, int)]
    y[2] = 1
    values = _peers.data_oob_values(problem(X, y, CLF, seed=0), n_trees=40)
    assert values[2] == 0.0  # every tree that did not see it predicts class 0
    assert np.delete(values, 2).min() > 0.5


# ----------------------------------------------------------------------------- cleanlab

def test_cleanlab_without_the_package_is_not_available(monkeypatch):
    monkeypatch.setattr(_peers, "cleanlab", None)
    X = np.random.RandomState(2).normal(size=(20, 2))
    assert _peers.cleanlab_values(problem(X, (X[:, 1] > 0).astype(int), CLF)) is None
    assert _peers.cleanlab_values(problem(X, X[:, 0], REG)) is None


def test_out_of_fold_regression_folds_are_plain_shuffled_kfold():
    X = np.arange(10.0)[:, None]
    y = 2 * X[:, 0]
    held_out_mean = DummyRegressor(strategy="mean")  # the mean target of its training rows
    pred = _peers.out_of_fold(held_out_mean, problem(X, y, REG, seed=5), "predict")
    expected = np.empty(10)
    for train, held_out in KFold(5, shuffle=True, random_state=5).split(X):
        expected[held_out] = y[train].mean()
    assert_allclose(pred, expected)


# ----------------------------------------------------------------------------- mlp_loss

def forward(model, X):
    """The fitted sklearn MLP's output layer, recomputed from its weights (ReLU hidden)."""
    h = X
    for W, b in zip(model.coefs_[:-1], model.intercepts_[:-1]):
        h = np.maximum(h @ W + b, 0)
    return h @ model.coefs_[-1] + model.intercepts_[-1]


@pytest.mark.parametrize("n_classes", [2, 3, None])  # None: regression
def test_mlp_loss_is_minus_the_loss_of_the_fitted_network(n_classes):
    rng = np.random.RandomState(3)
    X = rng.normal(size=(40, 3))
    if n_classes is None:
        p = problem(X, X @ [1.0, -1.0, 0.5], REG, seed=6)
    else:
        p = problem(X, rng.randint(n_classes, size=40), CLF, seed=6)

    values = _peers.mlp_loss_values(p)

    out = forward(_peers.fit_mlp(p), X)  # the same seed fits the same network
    if n_classes is None:
        expected = -(out[:, 0] - p.y) ** 2
    elif n_classes == 2:
        p1 = 1 / (1 + np.exp(-out[:, 0]))
        expected = np.log(np.where(p.y == 1, p1, 1 - p1))
    else:
        log_softmax = out - out.max(axis=1, keepdims=True)
        log_softmax -= np.log(np.exp(log_softmax).sum(axis=1, keepdims=True))
        expected = log_softmax[np.arange(40), p.y]
    assert_allclose(values, expected, rtol=1e-6, atol=1e-9)
    assert (values <= 0).all()


# ----------------------------------------------------------------------------- tasks

def test_n_train_resizes_the_generated_splits_only():
    sizes = SplitSizes().with_n_train(300)
    assert (sizes.n_generated, sizes.generated, sizes.small) == (1600, (300, 100), (0.7, 0.1))
    assert SplitSizes().with_n_train(5000).n_generated == 6100  # keeps 1000 test rows

    split = split_task(TASKS["make_classification"], 0, sizes)
    assert (len(split.y), len(split.y_val), len(split.y_test)) == (300, 100, 1200)
    assert_allclose(split.X.mean(axis=0), 0, atol=1e-12)


# ----------------------------------------------------------------------------- report

def rows_of(method, kind, noise, f1s, aurocs):
    return [{"task": "wine" if kind == CLF else "diabetes", "kind": kind, "noise": noise,
             "method": method, "seed": s, "f1": f, "auroc": a, "seconds": 1.0}
            for s, (f, a) in enumerate(zip(f1s, aurocs))]


TINY = (rows_of("knn_shapley", CLF, "label", [0.5, 0.7], [0.8, 0.9])
        + rows_of("random", CLF, "label", [0.2, 0.4], [0.5, 0.5])
        + rows_of("knn_shapley", REG, "label", [0.1, 0.1], [0.6, 0.6])
        + rows_of("random", REG, "label", [np.nan, np.nan], [np.nan, np.nan]))


def test_mean_by_ignores_nan_and_keeps_all_nan_groups():
    means = mean_by(TINY + rows_of("random", CLF, "label", [np.nan], [np.nan]),
                    ["method", "kind"], "f1")
    assert means[("knn_shapley", CLF)] == pytest.approx(0.6)
    assert means[("random", CLF)] == pytest.approx(0.3)
    assert np.isnan(means[("random", REG)])


def test_aggregate_table_bolds_the_best_method_per_column():
    assert aggregate_table(TINY, "f1", ["knn_shapley", "random"]) == (
        "| method | clf label | reg label |\n"
        "|---|---|---|\n"
        "| knn_shapley (reimpl.) | **0.600** | **0.100** |\n"
        "| random | 0.300 | n/a |")


def test_detail_table_gives_f1_and_auroc_per_task():
    assert detail_table(TINY, ["knn_shapley", "random"]) == (
        "| task | noise | knn_shapley (reimpl.) | random |\n"
        "|---|---|---|---|\n"
        "| wine | label | **0.600** / **0.850** | 0.300 / 0.500 |\n"
        "| diabetes | label | **0.100** / **0.600** | n/a |")


def test_small_formatters():
    assert markdown_table(["a", "b"], [["1", "2"]]) == "| a | b |\n|---|---|\n| 1 | 2 |"
    assert [format_duration(s) for s in (1.234, 90, 5400)] == ["1.23 s", "1.5 min", "1.50 h"]


def test_csv_rows_keeps_the_rows_and_renames_the_file_at_the_end(tmp_path):
    path = tmp_path / "out.csv"
    with csv_rows(path, ["a", "b"]) as write:
        write({"a": 1, "b": 0.5})
        assert not path.exists() and (tmp_path / "out.csv.tmp").exists()
    assert write.rows == [{"a": 1, "b": 0.5}]
    assert path.read_text().splitlines() == ["a,b", "1,0.5"]
