"""The baselines skval is compared with: one value per training row, low = likely noisy.

Every peer takes a :class:`_tasks.Problem` and returns an array of one value per
training row (or ``None`` where it does not apply). Methods marked "(reimpl.)" are
written here from their paper because their reference package does not install beside
numpy 2; :data:`REIMPLEMENTED` lists them.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import BaggingClassifier, BaggingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import pairwise_distances
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from _tasks import CLF

try:  # optional: the benchmark falls back to a re-implementation without it
    import cleanlab
    from cleanlab.rank import get_label_quality_scores as cleanlab_class_scores
    from cleanlab.regression.rank import get_label_quality_scores as cleanlab_regression_scores
except ImportError:  # pragma: no cover - depends on the environment
    cleanlab = None

N_TREES = 200
KNN_K = 10
CV_FOLDS = 5


# ----------------------------------------------------------------------------- cleanlab

def out_of_fold(model, p, method):
    """``method`` of ``model`` on every row, from the fold that left the row out.

    Parameters
    ----------
    model : estimator
        Cloned and fitted once per fold.
    p : Problem
        The training rows; classification folds are stratified; ``p.seed`` shuffles them.
    method : {"predict_proba", "predict"}
        What to predict.

    Returns
    -------
    ndarray
        One prediction per row, in row order.
    """
    folds = StratifiedKFold if p.kind == CLF else KFold
    cv = folds(CV_FOLDS, shuffle=True, random_state=p.seed)
    return cross_val_predict(model, p.X, p.y, cv=cv, method=method)


def self_confidence_values(p):
    """Self-confidence (reimpl. of cleanlab's default label quality, Northcutt et al., 2021).

    The out-of-fold probability that a LogisticRegression gives the row's label.

    Parameters
    ----------
    p : Problem
        A classification problem with labels 0..K-1.

    Returns
    -------
    ndarray of shape (n_rows,)
    """
    proba = out_of_fold(LogisticRegression(max_iter=1000), p, "predict_proba")
    return proba[np.arange(len(p.y)), p.y]


def cleanlab_values(p):
    """cleanlab's label quality scores (Northcutt et al., 2021) on out-of-fold predictions.

    Classification: ``cleanlab.rank.get_label_quality_scores`` on 5-fold ``predict_proba``
    of a LogisticRegression; without cleanlab, :func:`self_confidence_values` (reimpl.).
    Regression: cleanlab's regression scores on 5-fold predictions of an MLPRegressor
    with 64 hidden units; without cleanlab, ``None``.

    Parameters
    ----------
    p : Problem
        The noisy training rows.

    Returns
    -------
    ndarray of shape (n_rows,) or None
    """
    if p.kind == CLF:
        if cleanlab is None:
            return self_confidence_values(p)
        proba = out_of_fold(LogisticRegression(max_iter=1000), p, "predict_proba")
        return cleanlab_class_scores(p.y, proba)
    if cleanlab is None:
        return None
    model = MLPRegressor(hidden_layer_sizes=(64,), max_iter=300, random_state=p.seed)
    return cleanlab_regression_scores(p.y, out_of_fold(model, p, "predict"))


# ----------------------------------------------------------------------------- Data-OOB

def fit_bagged_trees(p, n_trees=N_TREES):
    """Bagged, fully grown decision trees on the training rows, seeded by ``p.seed``.

    Parameters
    ----------
    p : Problem
        The training rows (classes already 0..K-1, so the trees predict them directly).
    n_trees : int, default=200
        Trees in the bag.

    Returns
    -------
    BaggingClassifier or BaggingRegressor
        Fitted.
    """
    if p.kind == CLF:
        bag = BaggingClassifier(DecisionTreeClassifier(), n_estimators=n_trees, random_state=p.seed)
    else:
        bag = BaggingRegressor(DecisionTreeRegressor(), n_estimators=n_trees, random_state=p.seed)
    return bag.fit(p.X, p.y)


def out_of_bag_scores(bag, X, y, kind):
    """Each row's mean score over the trees of ``bag`` that did not train on it.

    The score of a tree on a row is 1 / 0 for a right / wrong class (classification) or
    minus the squared error (regression). A row that every tree trained on gets the mean
    of the other rows' values: no evidence either way.

    Parameters
    ----------
    bag : fitted BaggingClassifier or BaggingRegressor
        Its ``estimators_samples_`` say which rows each tree trained on.
    X : ndarray of shape (n_rows, n_features)
        The rows the bag was fitted on.
    y : ndarray of shape (n_rows,)
        Their targets.
    kind : {"classification", "regression"}
        How a prediction is scored.

    Returns
    -------
    ndarray of shape (n_rows,)
    """
    n = len(y)
    total, count = np.zeros(n), np.zeros(n)
    trees = zip(bag.estimators_, bag.estimators_samples_, bag.estimators_features_)
    for tree, rows, features in trees:
        oob = np.ones(n, bool)
        oob[rows] = False
        pred = tree.predict(X[np.ix_(oob, features)])
        total[oob] += (pred == y[oob]) if kind == CLF else -(pred - y[oob]) ** 2
        count[oob] += 1
    values = total / np.maximum(count, 1)
    values[count == 0] = values[count > 0].mean()  # never out-of-bag: no evidence either way
    return values


def data_oob_values(p, n_trees=N_TREES):
    """Data-OOB (Kwon & Zou, 2023) (reimpl.): out-of-bag scores of 200 bagged trees.

    Parameters
    ----------
    p : Problem
        The noisy training rows.
    n_trees : int, default=200
        Trees in the bag.

    Returns
    -------
    ndarray of shape (n_rows,)
        See :func:`out_of_bag_scores`.
    """
    return out_of_bag_scores(fit_bagged_trees(p, n_trees), p.X, p.y, p.kind)


# ----------------------------------------------------------------------------- KNN-Shapley

def knn_shapley(X, y, X_test, y_test, k, utility):
    """Exact KNN-Shapley values (Jia et al., 2019) (reimpl.), averaged over the test rows.

    For one test row, the value of a set S of training rows is the sum of
    ``utility`` over the ``min(k, |S|)`` rows of S nearest to the test row, divided by
    ``k``; the Shapley values of that game follow from a recursion over the training
    rows sorted by distance (ties broken by row order).

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Training rows.
    y : ndarray of shape (n_rows,)
        Their targets.
    X_test : ndarray of shape (n_test, n_features)
        Rows that the training rows are valued on.
    y_test : ndarray of shape (n_test,)
        Their targets.
    k : int
        Neighbours.
    utility : callable
        ``utility(y_neighbours, y_test)`` with shapes ``(n_test, n_rows)`` and
        ``(n_test, 1)``: each training row's score as a neighbour of each test row.

    Returns
    -------
    ndarray of shape (n_rows,)
        The mean over the test rows of each training row's Shapley value.
    """
    n = len(y)
    order = np.argsort(pairwise_distances(X_test, X), axis=1, kind="stable")
    u = utility(y[order], y_test[:, None]).astype(np.float64)
    rank = np.arange(1, n)  # 1-based rank of the nearer row of each adjacent pair
    steps = (u[:, :-1] - u[:, 1:]) / k * np.minimum(k, rank) / rank
    shapley = np.empty_like(u)
    # the farthest row adds u / k to the sets of fewer than k rows: min(k, n) of its n sizes
    shapley[:, -1] = u[:, -1] / n if k <= n else u[:, -1] / k
    shapley[:, :-1] = shapley[:, -1:] + np.cumsum(steps[:, ::-1], axis=1)[:, ::-1]
    values = np.empty_like(shapley)
    np.put_along_axis(values, order, shapley, axis=1)
    return values.mean(axis=0)


def negative_squared_error(y_row, y_test):
    """Regression utility of a neighbour: minus its squared error on the test target."""
    return -(y_row - y_test) ** 2


def knn_shapley_values(p, k=KNN_K):
    """KNN-Shapley (Jia et al., 2019) (reimpl.) of the training rows on the validation rows.

    Classification uses the paper's label-match utility; regression the negative squared
    error of the neighbour's target (an additive top-K utility, for which the same
    recursion is exact).

    Parameters
    ----------
    p : Problem
        The noisy training rows and the clean validation rows.
    k : int, default=10
        Neighbours.

    Returns
    -------
    ndarray of shape (n_rows,)
    """
    utility = np.equal if p.kind == CLF else negative_squared_error
    return knn_shapley(p.X, p.y, p.X_val, p.y_val, k, utility)


# ----------------------------------------------------------------------------- the rest

def fit_mlp(p):
    """A default sklearn MLP (100 hidden units, seeded by ``p.seed``) on the training rows.

    Parameters
    ----------
    p : Problem
        The noisy training rows.

    Returns
    -------
    MLPClassifier or MLPRegressor
        Fitted.
    """
    model = MLPClassifier if p.kind == CLF else MLPRegressor
    return model(hidden_layer_sizes=(100,), random_state=p.seed).fit(p.X, p.y)


def mlp_loss_values(p):
    """Minus each row's training loss under a plain MLP fitted on the noisy rows.

    Classification: the log-probability of the given label (clipped at 1e-12);
    regression: minus the squared error.

    Parameters
    ----------
    p : Problem
        The noisy training rows.

    Returns
    -------
    ndarray of shape (n_rows,)
    """
    model = fit_mlp(p)
    if p.kind == CLF:
        proba = model.predict_proba(p.X)[np.arange(len(p.y)), np.searchsorted(model.classes_, p.y)]
        return np.log(np.clip(proba, 1e-12, None))
    return -(model.predict(p.X) - p.y) ** 2


def random_values(p):
    """Uniform random values seeded by ``p.seed``: the floor every method should beat.

    Parameters
    ----------
    p : Problem
        Only its size and seed are used.

    Returns
    -------
    ndarray of shape (n_rows,)
    """
    return np.random.RandomState(p.seed).rand(len(p.y))


PEERS = {
    "cleanlab": cleanlab_values,
    "data_oob": data_oob_values,
    "knn_shapley": knn_shapley_values,
    "mlp_loss": mlp_loss_values,
    "random": random_values,
}
REIMPLEMENTED = {"data_oob", "knn_shapley"} | (set() if cleanlab else {"cleanlab"})


def label(method):
    """The method's name in reports, with " (reimpl.)" for the reimplemented ones."""
    return f"{method} (reimpl.)" if method in REIMPLEMENTED else method
