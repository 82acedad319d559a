"""What a fit builds: the prepared data, and the typed description of its net.

``_BaseLossVal._prepare`` gives a ``Prepared``; ``_BaseLossVal._net_spec`` describes the
net to train as a ``NetSpec`` (with a ``LossSpec`` for the criterion and a ``RowSpec``
for the per-row state); ``build_net`` turns a spec into an initialised ``LossValNet``.
A process of a several-process fit trains the spec of its shard, a
``dataclasses.replace`` of the fit's (``skval._shard.shard_spec``).
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field, fields, replace

import numpy as np
import torch

from ._loss import LossValLoss
from ._net import LossValNet, batch_collate
from ._progress import progress_bar

# batch_size="auto": this many rows per step up to 100 x AUTO_BATCH_MIN rows, then
# about 100 steps per epoch, at most AUTO_BATCH_MAX rows per step.
AUTO_BATCH_MIN, AUTO_BATCH_MAX = 32, 1024

# torch's global RNG seeds the module's initial parameters: hold it while seeding and
# building so that estimators fitted in parallel threads stay reproducible.
_INIT_LOCK = threading.Lock()


def batch_size_for(batch_size, n, self_reference, cap=AUTO_BATCH_MAX):
    """Rows per step of a one-process fit of ``n`` rows (``batch_size``: an int or "auto").

    ``self_reference``: the reference is drawn from ``X``, so a batch must leave some
    of it outside itself. ``cap=None``: "auto" without its cap.
    """
    if batch_size == "auto":
        # each weight's signal comes from many small steps: small batches up to a
        # few thousand rows, then about 100 steps per epoch, capped
        size = max(AUTO_BATCH_MIN, n // 100)
        size = size if cap is None else min(cap, size)
    else:
        size = batch_size
    if self_reference:
        size = min(size, max(1, n // 2))
    return size


@dataclass
class Reference:
    """The reference rows of the OT term, chosen once per fit."""

    X: np.ndarray                  # the OT cost's features (quantile features by default), float32
    targets: np.ndarray | None     # encoded targets (only from a user's y_val)
    training_rows: np.ndarray | None  # their row numbers when drawn from X itself


@dataclass
class Prepared:
    """What ``fit`` has ready before it builds the net (``_BaseLossVal._prepare``)."""

    Xt: object                     # the network's input rows, float32 on reading
                                   # (skval._features.StandardisedRows, or an array)
    Xc: object                     # the OT cost's features (``Xt`` itself with "standard")
    target: np.ndarray             # encoded targets
    n_outputs: int
    reference: Reference
    cost_scale: float
    seed: int                      # seeds the network, the shuffling and the OT blocks
    row_index: object              # a DataFrame's index, or None
    n_canaries: int = 0            # canaries of each kind after the rows (skval._canary)

    def without_rows(self):
        """The same, without the rows' features and targets (what the results need)."""
        return replace(self, Xt=None, Xc=None, target=None)


def reference_position(training_rows, rows):
    """For each of ``rows``: its place in the reference, or -1 (None: X_val is the reference).

    Parameters
    ----------
    training_rows : ndarray of int or None
        Row numbers of the reference rows, when they were drawn from ``X``.
    rows : ndarray of int
        The rows the net trains, in its own numbering's order.

    Returns
    -------
    position : torch.Tensor of int64 or None
        One entry per row of ``rows``.
    """
    if training_rows is None:
        return None
    order = np.argsort(training_rows)
    ranked = np.asarray(training_rows)[order]
    at = np.minimum(np.searchsorted(ranked, rows), len(ranked) - 1)
    hit = ranked[at] == rows
    return torch.from_numpy(np.where(hit, order[at], -1).astype(np.int64))


@dataclass
class LossSpec:
    """The keyword arguments of ``LossValLoss`` (see there)."""

    task: str
    reference: torch.Tensor
    cost_scale: float
    ot_method: str
    ot_reg: float
    ot_power: float
    reference_targets: torch.Tensor | None
    label_weight: float
    reference_position: torch.Tensor | None
    block_seed: int


@dataclass
class RowSpec:
    """The keyword arguments of ``RowState`` (see there)."""

    n_rows: int
    weight_update: str
    lr: float
    clip: bool
    n_classes: int | None
    record_history: bool
    optimizer: type
    optimizer_kwargs: dict


@dataclass
class NetSpec:
    """Everything ``build_net`` needs to build the net of a fit (or of one shard)."""

    module: object                 # an nn.Module class, or an instance (copied)
    module_kwargs: dict            # its keyword arguments
    loss: LossSpec
    rows: RowSpec
    optimizer: type
    optimizer_kwargs: dict         # the user's optimizer__* parameters, unprefixed
    lr: float
    max_epochs: int
    batch_size: int
    batch_rule: object             # the estimator's batch_size ("auto" or an int)
    init_seed: int                 # the network's initial parameters
    shuffle_seed: int | None       # the one-process shuffle; None with batch_sampler
    device: torch.device
    verbose: int
    callbacks: list = field(default_factory=list)  # the user's, already copied
    progress_bar: bool = False
    batch_sampler: object = None   # a shard's batches (``skval._shard.ShardBatches``)


def _prefixed(prefix, spec):
    return {f"{prefix}__{f.name}": getattr(spec, f.name) for f in fields(spec)}


def _net_kwargs(spec):
    """The keyword arguments of ``LossValNet`` described by ``spec``."""
    iterator = {}  # read by LossValNet.get_iterator (RowBatches)
    if spec.batch_sampler is not None:
        iterator["iterator_train__batch_sampler"] = spec.batch_sampler
    else:
        iterator.update(iterator_train__shuffle=True, iterator_train__generator=(
            torch.Generator().manual_seed(spec.shuffle_seed)))
    callbacks = list(spec.callbacks)
    if spec.progress_bar:
        callbacks.append(("progress_bar", progress_bar()))
    return dict(
        module=spec.module, criterion=LossValLoss, optimizer=spec.optimizer, lr=spec.lr,
        max_epochs=spec.max_epochs, batch_size=spec.batch_size, train_split=None,
        iterator_valid__collate_fn=batch_collate,
        callbacks=callbacks, predict_nonlinearity=None, device=spec.device,
        verbose=spec.verbose, row_state={f.name: getattr(spec.rows, f.name)
                                         for f in fields(spec.rows)},
        **iterator, **_prefixed("criterion", spec.loss),
        **{f"module__{k}": v for k, v in spec.module_kwargs.items()},
        **{f"optimizer__{k}": v for k, v in spec.optimizer_kwargs.items()},
    )


def build_net(spec):
    """The initialised ``LossValNet`` that ``spec`` describes (its network seeded)."""
    net = LossValNet(**_net_kwargs(spec))
    with _INIT_LOCK:
        if torch.device(spec.device).type == "cuda":
            torch.manual_seed(spec.init_seed)
        else:  # the CPU's generator alone: no CUDA seeding queued for later
            torch.default_generator.manual_seed(spec.init_seed)
        net.initialize()
    return net


@contextlib.contextmanager
def own_rng(device):
    """Run a fit on torch's global RNG and give the caller's state back after it.

    The fit seeds the global RNG (its network's initialisation, a user module's
    dropout); the user's own torch seed must survive the fit.
    """
    device = torch.device(device)
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        yield
