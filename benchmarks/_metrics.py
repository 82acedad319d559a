"""What the values are worth to a user: clean-and-refit scores and minority harm.

Clean-and-refit: drop the ``k`` lowest-valued training rows (``k`` = the number of noisy
rows), refit a downstream model on the rest and score it on the clean test split. Two
models: a HistGradientBoosting model (scikit-learn defaults, no early stopping, seeded)
and a linear one (LogisticRegression with ``max_iter=1000`` / Ridge with ``alpha=1``).
Scores: ROC AUC for binary tasks, balanced accuracy for multiclass tasks (so a dropped
rare class shows), R^2 for regression. The gain of a method is its score minus the score
with no drop; the oracle drops exactly the noisy rows.

Minority harm: on an imbalanced task without injected noise, the smallest class's share
among the 10 % lowest-valued rows divided by its share of all rows (1 = no different
from its share; 10 = the whole lowest decile is the minority, when it is 10 % or less).
"""

from __future__ import annotations

import numpy as np
from benchmarks._tasks import CLF
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import balanced_accuracy_score, r2_score, roc_auc_score

REFIT_MODELS = ("hgb", "linear")
HGB_PARAMS = {"max_iter": 50, "learning_rate": 0.2, "max_leaf_nodes": 15, "early_stopping": False}
LOWEST_SHARE = 0.1


def downstream_model(name, kind, seed):
    """A fresh downstream model: ``"hgb"`` or ``"linear"``, for ``kind``."""
    if name == "hgb":
        model = HistGradientBoostingClassifier if kind == CLF else HistGradientBoostingRegressor
        return model(random_state=seed, **HGB_PARAMS)
    return LogisticRegression(max_iter=1000) if kind == CLF else Ridge(alpha=1.0)


def score_name(kind, n_classes):
    """The downstream score used for a task: "roc_auc", "balanced_accuracy" or "r2"."""
    if kind != CLF:
        return "r2"
    return "roc_auc" if n_classes == 2 else "balanced_accuracy"


def downstream_score(model, X_test, y_test, kind, n_classes):
    """The fitted model's :func:`score_name` score on the test rows.

    Parameters
    ----------
    model : fitted estimator
    X_test, y_test : ndarray
        The clean test split.
    kind : {"classification", "regression"}
    n_classes : int
        Classes of the task (2: ROC AUC of the positive class's probability).

    Returns
    -------
    float
    """
    name = score_name(kind, n_classes)
    if name == "r2":
        return float(r2_score(y_test, model.predict(X_test)))
    if name == "roc_auc":
        return float(roc_auc_score(y_test, model.predict_proba(X_test)[:, 1]))
    return float(balanced_accuracy_score(y_test, model.predict(X_test)))


def keep_mask(values, k):
    """Boolean mask of the rows kept after dropping the ``k`` lowest values (ties by row)."""
    keep = np.ones(len(values), bool)
    keep[np.argsort(values, kind="stable")[:k]] = False
    return keep


def refit_score(model_name, X, y, keep, X_test, y_test, kind, n_classes, seed):
    """Score of a downstream model refitted on the kept training rows.

    Parameters
    ----------
    model_name : {"hgb", "linear"}
    X, y : ndarray
        The (noisy) training rows.
    keep : ndarray of bool
        Rows to train on.
    X_test, y_test : ndarray
        The clean test split.
    kind : {"classification", "regression"}
    n_classes : int
    seed : int
        Seeds the model.

    Returns
    -------
    float
        When the kept rows hold a single class, the score of a constant prediction
        (ROC AUC 0.5, balanced accuracy ``1 / n_classes``).
    """
    if kind == CLF and len(np.unique(y[keep])) < 2:
        return 0.5 if n_classes == 2 else 1 / n_classes
    model = downstream_model(model_name, kind, seed).fit(X[keep], y[keep])
    return downstream_score(model, X_test, y_test, kind, n_classes)


def minority_harm(values, y, share=LOWEST_SHARE):
    """The smallest class's share among the lowest values over its share of all rows.

    Parameters
    ----------
    values : ndarray of shape (n_rows,)
        Low = likely noisy.
    y : ndarray of int, shape (n_rows,)
        Classes.
    share : float, default=0.1
        Fraction of the rows with the lowest values that is looked at.

    Returns
    -------
    float
        1 when the minority is as frequent among the lowest rows as in the data.
    """
    counts = np.bincount(y)
    minority = np.flatnonzero(counts)[np.argmin(counts[counts > 0])]
    n_low = max(1, round(share * len(y)))
    lowest = np.argsort(values, kind="stable")[:n_low]
    return float(np.mean(y[lowest] == minority) / np.mean(y == minority))
