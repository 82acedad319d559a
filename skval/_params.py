"""Validation of the estimators' parameters: one table of what each accepts.

``check_params`` runs at the start of ``fit`` (never in ``__init__``, as scikit-learn
requires). Each bad value gets a message naming the parameter, what was expected and
what was given; a wrong type raises ``TypeError``, a value of the right type out of
range ``ValueError``. ``True`` is never accepted where a number is expected.

scikit-learn's declarative ``_parameter_constraints`` / ``_fit_context`` were
considered and not used: they are private API, raise one ``InvalidParameterError``
(both a ``ValueError`` and a ``TypeError``) for every kind of fault, and their
generic messages would replace the precise ones users and tests rely on.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from torch import nn

from ._mlp import resolve_activation

# Prefixes of the extra keyword parameters routed to the module and the optimizer.
EXTRA_PREFIXES = ("module__", "optimizer__")
OT_METHODS = ("exact", "sinkhorn")
WEIGHT_UPDATES = ("batch", "row")
OT_SCALINGS = ("quantile", "standard")
TARGET_SCALINGS = ("quantile", "standard")


def _positive(name, value, kind=numbers.Real, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, kind):
        expected = "an int" if kind is numbers.Integral else "a number"
        raise TypeError(f"{name} must be {expected} > 0, got {value!r}.")
    if not value > 0 or not np.isfinite(value):
        raise ValueError(f"{name} must be > 0, got {value!r}.")


def _one_of(name, value, options):
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}.")


def _check_batch_size(value):
    if not (isinstance(value, str) and value == "auto"):
        _positive("batch_size", value, numbers.Integral)


def _check_label_weight(value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"label_weight must be a number >= 0, got {value!r}.")
    if not 0 <= value < np.inf:
        raise ValueError(f"label_weight must be a number >= 0, got {value!r}.")


def hidden_sizes(value):
    """``hidden_layer_sizes`` as a tuple of ints (an int is one layer)."""
    if isinstance(value, numbers.Integral):
        return (value,)
    try:
        return tuple(value)
    except TypeError:
        raise TypeError(f"hidden_layer_sizes must be a sequence of ints, got {value!r}.") from None


def _check_network(est):
    if est.module is None:
        for size in hidden_sizes(est.hidden_layer_sizes):
            _positive("each of hidden_layer_sizes", size, numbers.Integral)
        resolve_activation(est.activation)
    elif not (isinstance(est.module, nn.Module)
              or (isinstance(est.module, type) and issubclass(est.module, nn.Module))):
        raise TypeError(
            f"module must be None, a torch.nn.Module class or instance, got {est.module!r}.")


def _check_optimizer(value):
    if not (isinstance(value, type) and issubclass(value, torch.optim.Optimizer)):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer class, got {value!r}.")


def resolve_device(value):
    """``device`` as a ``torch.device``; a ``ValueError`` for a bad name or a missing GPU."""
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device must be a torch device such as 'cpu' or 'cuda', got {value!r}.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={value!r} was asked for but CUDA is not available.")
    return device


def _check_workers(est):
    """``n_workers``: a count, and with more than 1 a device that many processes can share."""
    _positive("n_workers", est.n_workers, numbers.Integral)
    if est.n_workers == 1:
        return
    if not torch.distributed.is_available():
        raise ValueError("n_workers > 1 needs torch.distributed, which this build of torch lacks.")
    device = resolve_device(est.device)
    if device.type == "cuda":
        if device.index is not None:
            raise ValueError(f"With n_workers > 1 give device='cuda' (process i trains on "
                             f"cuda:i), got device={est.device!r}.")
        if torch.cuda.device_count() < est.n_workers:
            raise ValueError(f"n_workers={est.n_workers} with device='cuda' needs one GPU per "
                             f"process, but {torch.cuda.device_count()} are visible.")
    elif device.type != "cpu":
        raise ValueError(f"n_workers > 1 trains on device='cpu' (gloo) or 'cuda' (nccl), got "
                         f"device={est.device!r}.")


def _check_canaries(value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"canaries must be a number in [0, 0.5], got {value!r}.")
    if not 0 <= value <= 0.5:
        raise ValueError(f"canaries must be a number in [0, 0.5], got {value!r}.")


def _check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}.")


def _check_callbacks(value):
    if value is not None and not isinstance(value, (list, tuple)):
        raise TypeError(f"callbacks must be None or a list of skorch callbacks, got {value!r}.")


def _check_extra_params(est, extra):
    for key in extra:
        if not key.startswith(EXTRA_PREFIXES):
            raise TypeError(
                f"{type(est).__name__} got an unexpected parameter {key!r}; extra "
                f"parameters must start with one of {EXTRA_PREFIXES}."
            )


def check_params(est, extra):
    """Raise a ``TypeError`` / ``ValueError`` for the first bad parameter of ``est``.

    Parameters
    ----------
    est : _BaseLossVal
        The estimator whose parameters are checked, in the order of its signature.
    extra : iterable of str
        Names of its extra keyword parameters (``module__*`` / ``optimizer__*``).
    """
    _check_extra_params(est, extra)
    _check_network(est)
    _positive("max_epochs", est.max_epochs, numbers.Integral)
    _positive("lr", est.lr)
    _check_batch_size(est.batch_size)
    _check_optimizer(est.optimizer)
    _positive("weight_lr", est.weight_lr, allow_none=True)
    _one_of("weight_update", est.weight_update, WEIGHT_UPDATES)
    _one_of("ot_method", est.ot_method, OT_METHODS)
    _one_of("ot_scaling", est.ot_scaling, OT_SCALINGS)
    if hasattr(est, "target_scaling"):  # the regressor's
        _one_of("target_scaling", est.target_scaling, TARGET_SCALINGS)
    if est.ot_method == "sinkhorn":
        _positive("ot_reg", est.ot_reg)
    _positive("ot_power", est.ot_power)
    _check_label_weight(est.label_weight)
    if hasattr(est, "class_balanced"):  # the classifier's
        _check_bool("class_balanced", est.class_balanced)
    _positive("n_reference", est.n_reference, numbers.Integral)
    _check_canaries(est.canaries)
    resolve_device(est.device)
    _check_workers(est)
    _check_callbacks(est.callbacks)
