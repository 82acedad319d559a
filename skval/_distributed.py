"""One LossVal fit trained on several processes with ``torch.distributed``: the orchestrator.

One path serves both entries: cut the rows into shards (``skval._shard``), train each
shard on its process, and assemble the processes' results into the same ``FitResult``
as a one-process fit (``skval._train``): a ``LossValNet`` over all rows, in the user's
row order, that predicts, pickles and goes on training (``partial_fit``) like the net
of a one-process fit. Only the way the shards reach their processes differs:

- ``train_on_processes`` (``n_workers > 1``): the launcher (``skval._launch``) starts
  the processes on this machine (``python -m skval._worker``, not the user's main
  module) and collects their results;
- ``train_in_group`` (``python -m skval.distributed`` under ``torchrun``, through
  ``fit_in_group``): every rank of an initialised process group prepares the same data
  and trains its own shard; rank 0 gathers the results.
"""

from __future__ import annotations

import numbers
import os

import numpy as np
import torch.distributed as dist
from sklearn.utils import check_random_state

from ._launch import RemoteTraceback, limit_threads, run_spawned
from ._shard import Plan, batch_per_process, shard_data, shard_rows, train_shard
from ._spec import build_net, own_rng
from ._train import FitResult

__all__ = ["RemoteTraceback", "fit_in_group", "train_in_group", "train_on_processes"]

# Seconds a collective may wait for the other processes before it fails (torch's own
# default for gloo). A hang (a process that stopped stepping) ends in an error, not a
# process blocked for ever; tests lower it.
_TIMEOUT_S = 1800
_limit_threads = limit_threads  # the name skval.distributed imports


def make_plan(spec, prep, n_workers, backend):
    """The ``Plan`` of a fit of ``spec`` on ``prep`` with ``n_workers``, and its shards."""
    n = len(prep.Xt)
    if n_workers > n:
        raise ValueError(f"n_workers={n_workers} is more than the {n} rows; every process "
                         "needs at least one row.")
    shards = shard_rows(n, n_workers, prep.seed)
    self_reference = spec.loss.reference_position is not None
    plan = Plan(spec=spec, shard_sizes=[len(rows) for rows in shards],
                batch_size=batch_per_process(spec.batch_rule, n, self_reference, n_workers),
                backend=backend, timeout_s=_TIMEOUT_S)
    return plan, shards


def assemble(plan, results):
    """The ``FitResult`` of the processes' ``ShardResult``s.

    An ordinary net over all rows, built as a one-process fit builds it, given rank
    0's network and optimizer state (all replicas are equal), every shard's row state
    at its rows (``RowState.load``) and rank 0's history.
    """
    results = sorted(results, key=lambda r: r.rank)
    first = results[0]
    with own_rng(plan.spec.device):
        net = build_net(plan.spec)
    net.module_.load_state_dict(first.module_state)
    net.optimizer_.load_state_dict(first.optimizer_state)
    net.rows_.load([(r.rows.numpy(), r.state) for r in results])
    net.history = first.history
    net.iterator_train__generator = None  # as after a one-process fit
    stats = {"n_workers": plan.world_size, "shard_sizes": list(plan.shard_sizes),
             "batch_per_process": plan.batch_size, "backend": plan.backend,
             "steps": [r.steps for r in results],
             "allreduced_elements": [r.allreduced for r in results],
             "replica_digests": [r.digest for r in results]}
    return FitResult(net, stats)


def train_on_processes(spec, prep, n_workers):
    """Train ``spec`` on ``prep`` with ``n_workers`` worker processes of this machine.

    Returns
    -------
    result : FitResult
        Its ``stats`` tell what the processes did (tests and benchmarks read them).
    """
    backend = "nccl" if spec.device.type == "cuda" else "gloo"
    plan, shards = make_plan(spec, prep, n_workers, backend)
    return assemble(plan, run_spawned(plan, [shard_data(prep, rows) for rows in shards]))


def train_in_group(spec, prep):
    """Train ``spec`` on ``prep`` with every process of the initialised default group.

    Returns
    -------
    result : FitResult or None
        On rank 0; None on the other ranks.
    """
    rank, world = dist.get_rank(), dist.get_world_size()
    plan, shards = make_plan(spec, prep, world, dist.get_backend())
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    result = train_shard(plan, shard_data(prep, shards[rank]), rank, local_rank)
    results = [None] * world if rank == 0 else None
    dist.gather_object(result, results, dst=0)
    return assemble(plan, results) if rank == 0 else None


def fit_in_group(est, X, y, X_val=None, y_val=None):
    """Fit ``est`` with every process of the initialised default process group.

    Every rank calls it with the same data and parameters: each prepares the data
    the same way (when ``est.random_state`` is not an int, rank 0 draws a seed and
    shares it; ``est.random_state`` is left as it is), trains its shard, and rank 0
    gathers the results into an ordinary fitted estimator.

    Parameters
    ----------
    est : LossValClassifier or LossValRegressor
        Unfitted; its ``n_workers`` is not used (the group's size is).
    X, y, X_val, y_val
        As ``est.fit``.

    Returns
    -------
    est : estimator or None
        ``est``, fitted, on rank 0; None on the other ranks.
    """
    seed = None
    if not isinstance(est.random_state, numbers.Integral) or isinstance(est.random_state, bool):
        shared = [int(check_random_state(est.random_state).randint(np.iinfo(np.int32).max))]
        dist.broadcast_object_list(shared, src=0)
        seed = shared[0]
    return est._fit(X, y, X_val, y_val, trainer=train_in_group, random_state=seed)
