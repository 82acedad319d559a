"""Warnings about what a fit's run did: fewer epochs than asked, values that never moved,
canaries that blend in with the rows."""

from __future__ import annotations

import warnings

import numpy as np

from ._callbacks import early_stopper
from ._selection import SOURCES


def warn_if_interrupted(net, max_epochs):
    """Warn when fewer epochs ran than asked: a callback stopped ``fit``, or an interrupt.

    Parameters
    ----------
    net : LossValNet
        The trained net.
    max_epochs : int
        The epochs asked for.
    """
    epochs_done = len(net.history)
    if epochs_done >= max_epochs:
        return
    stopper = early_stopper(net)  # EarlyStopping raises KeyboardInterrupt, as Ctrl-C
    if stopper is not None:
        message, category = (
            f"fit stopped early after {epochs_done} of {max_epochs} epochs by the "
            f"EarlyStopping callback {stopper!r}; data_values_ hold the weights of the "
            "epochs run."), UserWarning
    else:
        message, category = (
            f"fit stopped after {epochs_done} of {max_epochs} epochs (interrupted); "
            "data_values_ hold the weights reached so far."), RuntimeWarning
    warnings.warn(message, category, stacklevel=4)  # the user's fit: fit -> _fit -> here


def warn_if_flat(values, history):
    """Warn when every data value is the same (to 1e-9): the weights never moved.

    Parameters
    ----------
    values : ndarray of shape (n_samples,)
        The data values.
    history : skorch History
        The run's epochs (their ``train_loss`` says why nothing moved).
    """
    if len(values) < 2 or np.ptp(values) > 1e-9 * max(1.0, float(np.abs(values).max())):
        return
    losses = [epoch.get("train_loss") or 0.0 for epoch in history]
    why = (f"train_loss was about 0 in every epoch (at most {max(losses):.1e}): the loss is "
           "the task loss times OT(batch, reference)^2, and one of them vanished (batches "
           "that sit on the reference, e.g. X_val equal to X with one batch of all rows, or "
           "a target the network fits exactly)"
           if losses and max(losses) < 1e-8 else
           "the weights did not move although the loss did not vanish (a weight_lr too small "
           "to move them, or a gradient of 0)")
    warnings.warn(
        f"Every data value is the same ({values[0]:.6g}): {why}. The values rank nothing; "
        "use a reference set distinct from the batches, a smaller batch_size, more epochs "
        "or a larger weight_lr.",
        RuntimeWarning, stacklevel=5)  # fit -> _fit -> _store_results -> here


def warn_if_canaries_blend_in(estimate, kept):
    """Warn about the sides whose estimate was set to 0: their canaries blended in.

    The message names the sides only, never the estimate: Python shows a warning
    once per place and text, so a fixed text is shown once where a
    cross-validation or a grid search fits many valuers (on tables with few or
    discrete features it is common), not once per fit.

    Parameters
    ----------
    estimate : ndarray of shape (2,)
        The label and feature shares as estimated (``skval._canary.noise_shares``).
    kept : ndarray of shape (2,)
        The shares kept (``skval._canary.plausible_shares``).
    """
    dropped = np.flatnonzero(kept != estimate)
    if not len(dropped):
        return
    sides = [SOURCES[side] for side in dropped]  # evidence column order: label, feature
    warnings.warn(
        f"The {' and '.join(sides)} canaries did not stand out from the rows (more than "
        "half the rows estimated corrupted that way, which the run cannot tell apart): "
        "noise_shares_ for that side is set to 0 and data_values_ lean on the other side. "
        "On a table with few or discrete features the feature side may not separate "
        "corrupted rows; canaries=0 gives the LossVal weights.", UserWarning, stacklevel=5)
