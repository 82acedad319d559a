"""skorch users' callbacks in a fit that has no validation split.

skval trains on every row (``train_split=None``), so skorch's ``valid_*`` scores never
exist. ``check_callbacks`` refuses, before the first epoch, a callback that would wait
for them; ``early_stopper`` tells an early stop from an interrupt (skorch's
``EarlyStopping`` raises ``KeyboardInterrupt``, as a Ctrl-C does).
"""

from __future__ import annotations

from skorch.callbacks import EarlyStopping, EpochScoring


def check_callbacks(callbacks):
    """Raise ``ValueError`` for a callback that reads a validation score skval never has.

    Parameters
    ----------
    callbacks : list of (str, skorch.callbacks.Callback)
        The net's initialised callbacks (``callbacks_``).
    """
    for name, cb in callbacks:
        monitor = getattr(cb, "monitor", None)
        if isinstance(monitor, str) and monitor.startswith("valid"):
            suggestion = "train" + monitor[len("valid"):]
            raise ValueError(
                f"Callback {name!r} ({type(cb).__name__}) monitors {monitor!r}, but skval "
                "trains on every row (train_split=None): there is no validation score. "
                f"Monitor the training loss instead, e.g. "
                f"{type(cb).__name__}(monitor={suggestion!r}).")
        if isinstance(cb, EpochScoring) and not cb.on_train:
            raise ValueError(
                f"Callback {name!r} (EpochScoring) scores the validation data, but skval "
                "trains on every row (train_split=None): there is none. Score the training "
                f"rows with EpochScoring({cb.scoring!r}, on_train=True).")


def early_stopper(net):
    """The name of the ``EarlyStopping`` callback that ended ``net``'s fit, or None.

    skorch's ``EarlyStopping`` raises ``KeyboardInterrupt``, as a Ctrl-C does; it
    raises exactly when its count of epochs without improvement reaches its patience,
    and starts the count again at every fit. Any other callback that raises one is
    taken for an interrupt.
    """
    for name, cb in getattr(net, "callbacks_", []):
        if isinstance(cb, EarlyStopping) and getattr(cb, "misses_", 0) >= cb.patience:
            return name
    return None
