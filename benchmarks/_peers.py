"""The baselines skval is compared with: one value per training row, low = likely noisy.

Every peer takes a :class:`_tasks.Problem` ``p`` (the noisy training rows, and the
validation rows where it uses them) and returns an array of one value per training row, or
``None`` where it does not apply. ``cleanlab`` and the ``datalab*`` peers
are cleanlab itself (``cleanlab[datalab]``, the benchmarks extra; n/a without it). Methods
marked "(reimpl.)" (:data:`REIMPLEMENTED`) are written here from their paper because no
package computes them beside numpy 2 (checked for this benchmark): pyDVL 0.10 (Data-OOB,
KNN-Shapley) requires numpy < 2 and 0.9.2 fails to import under it (``np.float_``);
opendataval (those and LAVA) pins numpy < 1.26 and torch 2.1; cleanlab's
``data_shapley_knn`` values the rows on themselves over the k nearest only, not the exact
KNN-Shapley on the validation rows, and for classification only; the ``aum`` package
(2020) keeps the running mean of margins that the training loop here hands it, and has no
regression statistic. The brute-force tests in ``benchmarks/tests`` check these.
"""

from __future__ import annotations

import time

import numpy as np
import ot
import torch
from benchmarks._tasks import CLF
from sklearn.ensemble import (
    BaggingClassifier,
    BaggingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import pairwise_distances
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

try:  # the benchmarks extra; without it the cleanlab and datalab* peers are n/a
    import cleanlab
    from cleanlab.rank import get_label_quality_scores as cleanlab_class_scores
    from cleanlab.regression.rank import (
        get_label_quality_scores as cleanlab_regression_scores,
    )
except ImportError:  # pragma: no cover - depends on the environment
    cleanlab = None
try:  # cleanlab[datalab]: needs HuggingFace's ``datasets`` (no local folder may shadow it)
    from cleanlab import Datalab
except ImportError:  # pragma: no cover - depends on the environment
    Datalab = None

N_TREES = 200
KNN_K = 10
CV_FOLDS = 5
# Datalab's out-of-fold model: HistGradientBoosting, cheaper than the defaults (a 10-class
# task fits 10 trees per iteration in each of 5 folds)
OOF_HGB = {"max_iter": 50, "learning_rate": 0.2, "max_leaf_nodes": 15, "early_stopping": False}


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


def cleanlab_values(p):
    """cleanlab's label quality scores (Northcutt et al., 2021) on out-of-fold predictions.

    Classification: ``cleanlab.rank.get_label_quality_scores`` on 5-fold ``predict_proba``
    of a LogisticRegression. Regression: cleanlab's regression scores on 5-fold
    predictions of an MLPRegressor with 64 hidden units. n/a without cleanlab.
    """
    if cleanlab is None:
        return None
    if p.kind == CLF:
        proba = out_of_fold(LogisticRegression(max_iter=1000), p, "predict_proba")
        return cleanlab_class_scores(p.y, proba)
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


# ----------------------------------------------------------------------------- shared work

def shared(p, key, compute):
    """``compute()`` once per problem; later calls reuse it and are charged its seconds.

    The seconds of a reused result are added to ``p.cache["reused_seconds"]``, which the
    runner adds to the method's own time, so each method's time is what it would take
    alone.

    Parameters
    ----------
    p : Problem
        Its ``cache`` dict keeps the result.
    key : str
        The result's name.
    compute : callable
        No arguments.

    Returns
    -------
    object
        What ``compute()`` returned.
    """
    if key in p.cache:
        result, seconds = p.cache[key]
        p.cache["reused_seconds"] = p.cache.get("reused_seconds", 0.0) + seconds
        return result
    start = time.perf_counter()
    result = compute()
    p.cache[key] = (result, time.perf_counter() - start)
    return result


# ----------------------------------------------------------------------------- AUM

AUM_HIDDEN = (100, 100)
AUM_EPOCHS = 30
AUM_BATCH = 64
AUM_LR = 1e-3


def aum_margin(logits, y):
    """The margin of Pleiss et al. (2020): the given label's logit minus the largest other.

    Parameters
    ----------
    logits : Tensor of shape (n_rows, n_classes)
    y : LongTensor of shape (n_rows,)

    Returns
    -------
    Tensor of shape (n_rows,)
        Negative where another class has a larger logit than the given label.
    """
    rows = torch.arange(len(y))
    given = logits[rows, y]
    others = logits.clone()
    others[rows, y] = -torch.inf
    return given - others.max(dim=1).values


def aum_network(n_in, n_out, seed):
    """The MLP that AUM trains: ReLU layers of :data:`AUM_HIDDEN` units, seeded."""
    torch.manual_seed(seed)
    layers, width = [], n_in
    for hidden in AUM_HIDDEN:
        layers += [torch.nn.Linear(width, hidden), torch.nn.ReLU()]
        width = hidden
    return torch.nn.Sequential(*layers, torch.nn.Linear(width, n_out))


def training_dynamics(p, epochs=None, lr=AUM_LR, batch_size=AUM_BATCH):
    """Each row's statistic in each epoch of one ordinary training run (reimpl.).

    An MLP (:func:`aum_network`) is trained with Adam on the noisy rows in shuffled
    mini-batches; when a row's batch is forwarded, its statistic is recorded from that
    forward pass, as in Pleiss et al.: the :func:`aum_margin` (classification, cross-entropy
    training) or minus the squared error (regression, squared-error training).

    Parameters
    ----------
    p : Problem
        The noisy training rows; ``p.seed`` seeds the network and the batches;
        ``p.max_epochs`` (when set) the number of epochs.
    epochs : int, optional
        Epochs; default ``p.max_epochs`` or :data:`AUM_EPOCHS`.
    lr : float, default=1e-3
        Adam's learning rate.
    batch_size : int, default=64

    Returns
    -------
    ndarray of shape (epochs, n_rows)
    """
    epochs = epochs or p.max_epochs or AUM_EPOCHS
    X = torch.as_tensor(p.X, dtype=torch.float32)
    clf = p.kind == CLF
    y = torch.as_tensor(p.y, dtype=torch.long if clf else torch.float32)
    net = aum_network(X.shape[1], int(y.max()) + 1 if clf else 1, p.seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(p.seed)
    record = np.empty((epochs, len(y)))
    for epoch in range(epochs):
        for idx in torch.randperm(len(y), generator=generator).split(batch_size):
            out = net(X[idx])
            if clf:
                losses = torch.nn.functional.cross_entropy(out, y[idx], reduction="none")
                stat = aum_margin(out.detach(), y[idx])
            else:
                losses = (out[:, 0] - y[idx]) ** 2
                stat = -losses.detach()
            optimizer.zero_grad()
            losses.mean().backward()
            optimizer.step()
            record[epoch, idx.numpy()] = stat.numpy()
    return record


def aum_values(p, **kwargs):
    """AUM, the area under the margin (Pleiss et al., 2020) (reimpl.).

    The mean over the epochs of :func:`training_dynamics`: the margin for
    classification; for regression minus the mean squared error over the epochs.

    Parameters
    ----------
    p : Problem
        The noisy training rows.
    **kwargs
        Passed to :func:`training_dynamics`.

    Returns
    -------
    ndarray of shape (n_rows,)
    """
    return training_dynamics(p, **kwargs).mean(axis=0)


# ----------------------------------------------------------------------------- Datalab

def out_of_fold_hgb(p):
    """Out-of-fold ``predict_proba`` (classification) or ``predict`` (regression) of a
    HistGradientBoosting model (:data:`OOF_HGB`), 5 folds, shared by the Datalab peers of
    one problem."""
    def compute():
        if p.kind == CLF:
            model = HistGradientBoostingClassifier(random_state=p.seed, **OOF_HGB)
            return out_of_fold(model, p, "predict_proba")
        model = HistGradientBoostingRegressor(random_state=p.seed, **OOF_HGB)
        return out_of_fold(model, p, "predict")
    return shared(p, "oof_hgb", compute)


def _datalab(p, issue_type):
    lab = Datalab(data={"y": p.y}, label_name="y",
                  task="classification" if p.kind == CLF else "regression", verbosity=0)
    if issue_type == "label":
        kwargs = {"clean_learning_kwargs": {"find_label_issues_kwargs": {"n_jobs": 1}}} \
            if p.kind == CLF else {}
        lab.find_issues(pred_probs=out_of_fold_hgb(p), issue_types={"label": kwargs})
    else:
        lab.find_issues(features=p.X, issue_types={"outlier": {}})
    return lab.get_issues(issue_type)[f"{issue_type}_score"].to_numpy(np.float64)


def datalab_label_values(p):
    """cleanlab ``Datalab``'s label issue score (confident learning, Northcutt et al., 2021).

    From 5-fold out-of-fold predictions of a HistGradientBoosting model (:data:`OOF_HGB`;
    probabilities for classification, predictions for regression); n/a without
    ``cleanlab[datalab]``.

    Parameters
    ----------
    p : Problem
        The noisy training rows.

    Returns
    -------
    ndarray of shape (n_rows,) or None
        In [0, 1], low = likely mislabelled.
    """
    if Datalab is None:
        return None
    return shared(p, "datalab_label", lambda: _datalab(p, "label"))


def datalab_outlier_values(p):
    """cleanlab ``Datalab``'s outlier issue score on the features.

    ``exp(-d / median d)``-style score of each row's mean distance ``d`` to its 10
    nearest rows (cleanlab's defaults: cosine distance above 3 features); n/a without
    ``cleanlab[datalab]``.

    Parameters
    ----------
    p : Problem
        The noisy training rows.

    Returns
    -------
    ndarray of shape (n_rows,) or None
        In [0, 1], low = outlying.
    """
    if Datalab is None:
        return None
    return shared(p, "datalab_outlier", lambda: _datalab(p, "outlier"))


def datalab_values(p):
    """The minimum of :func:`datalab_label_values` and :func:`datalab_outlier_values`.
    """
    if Datalab is None:
        return None
    return np.minimum(datalab_label_values(p), datalab_outlier_values(p))


# ----------------------------------------------------------------------------- LAVA

LAVA_REG = 0.1


def class_distances(X, y, X_ref, y_ref):
    """Squared 2-Wasserstein distances between the classes of two labelled sets.

    Entry ``(c, d)`` is the exact OT cost, with squared Euclidean ground cost and uniform
    weights, between the rows of ``X`` labelled ``c`` and the rows of ``X_ref`` labelled
    ``d`` (the label distance of Alvarez-Melis & Fusi, 2020, that LAVA uses).

    Parameters
    ----------
    X, X_ref : ndarray of shape (n_rows, n_features)
    y, y_ref : ndarray of int
        Classes 0..K-1.

    Returns
    -------
    ndarray of shape (K, K)
        NaN for a class absent from either set.
    """
    k = int(max(y.max(), y_ref.max())) + 1
    dist = np.full((k, k), np.nan)
    for c in np.unique(y):
        A = X[y == c]
        for d in np.unique(y_ref):
            B = X_ref[y_ref == d]
            dist[c, d] = ot.emd2(np.full(len(A), 1 / len(A)), np.full(len(B), 1 / len(B)),
                                 ot.dist(A, B))
    return dist


def lava_cost(p):
    """LAVA's ground cost between the training and the reference rows.

    Squared feature distance plus, for classification, the class-to-class distance of
    the two rows' labels (:func:`class_distances`), or, for regression, the squared
    target difference scaled so that its mean over the pairs equals the feature term's.

    Parameters
    ----------
    p : Problem
        Training rows ``X, y`` and reference rows ``X_val, y_val``.

    Returns
    -------
    ndarray of shape (n_rows, n_reference)
    """
    cost = ot.dist(p.X, p.X_val)
    if p.kind == CLF:
        return cost + class_distances(p.X, p.y, p.X_val, p.y_val)[p.y][:, p.y_val]
    target = (p.y[:, None] - p.y_val[None, :]) ** 2
    return cost + target * (cost.mean() / max(target.mean(), 1e-12))


def calibrated_gradient(f):
    """LAVA's calibrated gradient ``f_i (1 + 1/(N-1)) - sum(f) / (N-1)``.

    The derivative of the OT distance when mass moves to row i from all the other rows
    evenly.

    Parameters
    ----------
    f : ndarray of shape (N,)
        Dual potentials of the training rows.

    Returns
    -------
    ndarray of shape (N,)
    """
    n = len(f)
    return f * (1 + 1 / (n - 1)) - f.sum() / (n - 1)


def entropic_potentials(cost, reg=LAVA_REG):
    """Dual potential of the rows of ``cost`` in entropic OT between uniform weights.

    Log-domain Sinkhorn on the cost divided by its mean, with ``reg`` relative to that
    mean; the potential ``reg * log u`` is returned in the cost's own units.

    Parameters
    ----------
    cost : ndarray of shape (n_rows, n_reference)
    reg : float, default=0.1

    Returns
    -------
    ndarray of shape (n_rows,)
    """
    scale = cost.mean()
    a, b = np.full(cost.shape[0], 1 / cost.shape[0]), np.full(cost.shape[1], 1 / cost.shape[1])
    _, log = ot.sinkhorn(a, b, cost / scale, reg, method="sinkhorn_log", log=True,
                         numItermax=5000, stopThr=1e-7)
    return reg * scale * log["log_u"]


def lava_values(p, reg=LAVA_REG):
    """LAVA (Just et al., 2023) (reimpl., POT instead of geomloss).

    Minus the calibrated gradient (:func:`calibrated_gradient`) of the entropic OT
    between the training and the reference rows, on the cost of :func:`lava_cost`:
    a row whose extra mass would raise the distance to the reference gets a low value.

    Parameters
    ----------
    p : Problem
        The noisy training rows and the reference (validation) rows.
    reg : float, default=0.1
        Entropic regularisation relative to the mean cost.

    Returns
    -------
    ndarray of shape (n_rows,)
    """
    return -calibrated_gradient(entropic_potentials(lava_cost(p), reg))


PEERS = {
    "aum": aum_values,
    "datalab": datalab_values,
    "datalab_label": datalab_label_values,
    "datalab_outlier": datalab_outlier_values,
    "lava": lava_values,
    "cleanlab": cleanlab_values,
    "data_oob": data_oob_values,
    "knn_shapley": knn_shapley_values,
    "mlp_loss": mlp_loss_values,
    "random": random_values,
}
REIMPLEMENTED = {"aum", "lava", "data_oob", "knn_shapley"}


def label(method):
    """The method's name in reports, with " (reimpl.)" for the reimplemented ones."""
    return f"{method} (reimpl.)" if method in REIMPLEMENTED else method
