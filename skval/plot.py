"""Plots of data values (matplotlib, an optional extra: ``pip install 'skval[plot]'``).

Every function draws on ``ax`` (a new figure when ``None``) and returns the Axes;
none calls ``plt.show``, so they work headless and in notebooks alike. Functions
that take ``values`` also accept a fitted skval estimator.
"""

from __future__ import annotations

import numpy as np

from ._selection import check_values_mask
from .evaluation import discovery_curve

__all__ = ["plot_values", "plot_history", "plot_discovery", "plot_removal", "plot_addition",
           "plot_selection"]


def _two_curves(ax, fractions, first, second, xlabel, metric):
    """Draw ``first`` (red) and, when its scores are not None, ``second`` (green): (scores, label)."""
    fractions = np.asarray(fractions, dtype=np.float64)
    ax = _axes(ax)
    for (scores, label), color in zip((first, second), ("tab:red", "tab:green")):
        if scores is not None:
            ax.plot(fractions, scores, marker="o", color=color, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(metric)
    ax.legend()
    return ax


def _axes(ax):
    if ax is not None:
        return ax
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is an optional extra
        raise ImportError("skval.plot needs matplotlib: pip install 'skval[plot]'.") from None
    return plt.subplots(figsize=(6, 4))[1]


def _values_of(values):
    values = getattr(values, "data_values_", values)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {values.shape}.")
    return values


def plot_values(values, noisy=None, *, bins=40, ax=None):
    """Histogram of the data values, split into clean and noisy rows when known.

    Parameters
    ----------
    values : array-like of shape (n_samples,) or fitted skval estimator
        Data values.
    noisy : array-like of bool, shape (n_samples,), default=None
        Known noisy rows; drawn as a second histogram.
    bins : int, default=40
        Number of bins (shared by both histograms).
    ax : matplotlib Axes, default=None
        Where to draw.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on.
    """
    values = _values_of(values)
    ax = _axes(ax)
    edges = np.histogram_bin_edges(values, bins=bins)
    if noisy is None:
        ax.hist(values, bins=edges, color="tab:blue", alpha=0.8, label="all rows")
    else:
        values, noisy = check_values_mask(values, noisy)
        ax.hist(values[~noisy], bins=edges, color="tab:blue", alpha=0.6, label="clean rows")
        ax.hist(values[noisy], bins=edges, color="tab:red", alpha=0.6, label="noisy rows")
    ax.set_xlabel("data value (low = harmful)")
    ax.set_ylabel("rows")
    ax.legend()
    return ax


def plot_history(history, noisy=None, *, max_rows=200, random_state=0, ax=None):
    """Draw the trajectories of the data weights over the epochs.

    Parameters
    ----------
    history : ndarray of shape (n_epochs, n_samples) or fitted skval estimator
        ``weight_history_`` (fit with ``record_history=True``).
    noisy : array-like of bool, shape (n_samples,), default=None
        Known noisy rows, drawn in red.
    max_rows : int, default=200
        Rows drawn at most (a random subset), to keep the plot legible.
    random_state : int, default=0
        Seeds the subset.
    ax : matplotlib Axes, default=None
        Where to draw.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on.
    """
    if hasattr(history, "data_values_"):
        if not hasattr(history, "weight_history_"):
            raise ValueError("The estimator has no weight_history_: fit it with record_history=True.")
        history = history.weight_history_
    history = np.asarray(history, dtype=np.float64)
    if history.ndim != 2:
        raise ValueError(f"history must be 2-D (n_epochs, n_samples), got shape {history.shape}.")
    n_epochs, n = history.shape
    noisy = np.zeros(n, bool) if noisy is None else check_values_mask(history[-1], noisy)[1]
    rows = np.random.RandomState(random_state).permutation(n)[:max_rows]
    epochs = np.arange(1, n_epochs + 1)
    ax = _axes(ax)
    for is_noisy, color, label in ((False, "tab:blue", "clean rows"), (True, "tab:red", "noisy rows")):
        chosen = rows[noisy[rows] == is_noisy]
        if len(chosen):
            lines = ax.plot(epochs, history[:, chosen], color=color, alpha=0.3, lw=0.8)
            lines[0].set_label(label if noisy.any() else "rows")
    ax.set_xlabel("epoch")
    ax.set_ylabel("data weight")
    ax.legend()
    return ax


def plot_discovery(values, noisy, *, ax=None, label="skval"):
    """Corrupted-sample discovery curve, with the random and the optimal curves.

    Parameters
    ----------
    values : array-like of shape (n_samples,) or fitted skval estimator
        Data values.
    noisy : array-like of bool, shape (n_samples,)
        Known noisy rows.
    ax : matplotlib Axes, default=None
        Where to draw.
    label : str, default="skval"
        Legend label of the curve.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on.
    """
    values = _values_of(values)
    inspected, found = discovery_curve(values, noisy)
    share = np.mean(noisy)
    ax = _axes(ax)
    ax.plot(inspected, found, color="tab:blue", label=label)
    ax.plot([0, 1], [0, 1], color="gray", ls="--", label="random")
    ax.plot([0, share, 1], [0, 1, 1], color="gray", ls=":", label="optimal")
    ax.set_xlabel("fraction of rows inspected (lowest value first)")
    ax.set_ylabel("fraction of noisy rows found")
    ax.legend()
    return ax


def plot_removal(fractions, scores_high, scores_low=None, *, ax=None, metric="test score"):
    """Test score after removing the highest- and lowest-valued rows.

    Parameters
    ----------
    fractions : array-like of shape (n_fractions,)
        Fractions of rows removed, from :func:`skval.evaluation.removal_curve`.
    scores_high : array-like of shape (n_fractions,)
        Scores when the highest-valued rows are removed first.
    scores_low : array-like of shape (n_fractions,), default=None
        Scores when the lowest-valued rows are removed first.
    ax : matplotlib Axes, default=None
        Where to draw.
    metric : str, default="test score"
        Label of the y axis.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on.
    """
    return _two_curves(ax, fractions, (scores_high, "remove high values first"),
                       (scores_low, "remove low values first"),
                       "fraction of training rows removed", metric)


def plot_addition(fractions, scores_low, scores_high=None, *, ax=None, metric="test score"):
    """Test score of models trained on the lowest- and highest-valued rows only.

    Parameters
    ----------
    fractions : array-like of shape (n_fractions,)
        Fractions of rows trained on, from :func:`skval.evaluation.addition_curve`.
    scores_low : array-like of shape (n_fractions,)
        Scores when the lowest-valued rows are added first.
    scores_high : array-like of shape (n_fractions,), default=None
        Scores when the highest-valued rows are added first.
    ax : matplotlib Axes, default=None
        Where to draw.
    metric : str, default="test score"
        Label of the y axis.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skval.plot import plot_addition
    >>> ax = plot_addition([0.5, 1.0], [0.4, 0.9], [0.95, 0.9])
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['add low values first', 'add high values first']
    """
    return _two_curves(ax, fractions, (scores_low, "add low values first"),
                       (scores_high, "add high values first"),
                       "fraction of training rows used", metric)


def plot_selection(fractions, scores_by_value, scores_random, *, ax=None, metric="test score",
                   label="skval"):
    """Test score against the fraction of a pool kept: by value, at random, and all rows.

    Parameters
    ----------
    fractions : array-like of shape (n_fractions,)
        Fractions of the pool kept, from :func:`skval.evaluation.selection_curve`.
    scores_by_value : array-like of shape (n_fractions,)
        Scores when the highest-valued rows are kept.
    scores_random : array-like of shape (n_fractions,)
        Mean scores of random subsets of the same sizes.
    ax : matplotlib Axes, default=None
        Where to draw.
    metric : str, default="test score"
        Label of the y axis.
    label : str, default="skval"
        Legend label of the by-value curve.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on; a dashed line marks the score with all rows, when
        ``fractions`` includes 1.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skval.plot import plot_selection
    >>> ax = plot_selection([0.5, 1.0], [0.95, 0.9], [0.85, 0.9])
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['skval', 'random', 'all rows']
    """
    fractions = np.asarray(fractions, dtype=np.float64)
    ax = _axes(ax)
    ax.plot(fractions, scores_by_value, marker="o", color="tab:blue", label=f"{label}")
    ax.plot(fractions, scores_random, marker="o", color="gray", label="random")
    full = np.flatnonzero(fractions == 1.0)
    if len(full):
        ax.axhline(np.asarray(scores_by_value)[full[0]], color="black", ls="--", lw=1,
                   label="all rows")
    ax.set_xlabel("fraction of the pool kept (highest values first)")
    ax.set_ylabel(metric)
    ax.legend()
    return ax
