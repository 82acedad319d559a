"""One LossVal fit trained on several processes with ``torch.distributed``.

The split (``../shared/DESIGN.md``, "Several processes"): the rows are shuffled once
with the fit's seed and cut into one fixed shard per process, sizes differing by at
most 1. A process owns its shard's data weights, their update state, their evidence
and clipping record, and never sends them anywhere during training. Only the network is
wrapped in ``DistributedDataParallel``, so a step all-reduces the network's gradients
and nothing else. The reference rows are drawn once, before the processes start (or
identically on every rank under ``torchrun``), and every process transports its own
batches to all of them. The OT factor scales the loss before ``backward``, so the
averaged gradients are those of the processes' mean loss and the replicas stay equal.
Each process shuffles only its own shard, every epoch. A step of the fit takes the
rows of a one-process step, shared by the processes (``batch_per_process``).

Uneven shards: every process runs the same number of steps per epoch, that of the
largest shard; a shorter shard adds extra batches drawn from its own rows
(``ShardBatches``). DDP's ``Join`` context was the other choice and is not used: a
process that has joined shadows the all-reduce but takes no optimizer step, and
``Join`` re-syncs only the parameters at the end (a broadcast from the last joiner),
not the optimizer's state (Adam's moments, its step count), so the replicas would
apply different updates from the next epoch on. With equal step counts every replica
applies the same averaged gradient to the same state, at every step. The cost: with
sizes differing by at most 1, at most one extra batch per epoch, of the size of the
largest shard's last batch (1 row when the step counts differ at all).

Two entries:

- ``fit_on_processes`` (``n_workers > 1``): the fitting process has prepared the data
  (``_BaseLossVal._prepare``); it writes each shard to a temporary folder, spawns the
  processes (a ``FileStore`` in that folder; gloo, or nccl on GPUs), and reads back
  each rank's results from a file there: rank 0's network and history, every rank's
  values with their row numbers.
- ``fit_in_group`` (``python -m skval.distributed`` under ``torchrun``): every rank of
  an initialised process group prepares the same data, trains its shard, and rank 0
  gathers the results.

Either way the results become an ordinary fitted estimator (``_assemble``): a
``LossValNet`` over all rows, in the user's row order, that predicts and pickles like
the net of a one-process fit.
"""

from __future__ import annotations

import hashlib
import numbers
import os
import pickle
import tempfile
import time
import traceback
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist
from sklearn.base import clone
from sklearn.utils import check_random_state
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.multiprocessing.spawn import ProcessException, start_processes
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Sampler

from ._base import _AUTO_BATCH_MAX, _Reference
from ._loss import LossValLoss
from ._net import LossValNet, RowDataset

# Seconds a collective may wait for the other processes before it fails (torch's own
# default for gloo). A hang (a process that stopped stepping) ends in an error, not a
# process blocked for ever; tests lower it.
_TIMEOUT_S = 1800
# Seconds the processes still running get to stop after one failed, before SIGTERM
# (and as long again before SIGKILL).
_GRACE_S = 5.0


# ----------------------------------------------------------------------------- the split

def shard_rows(n, n_shards, seed):
    """The rows of each process: one seeded shuffle of ``range(n)``, cut in ``n_shards``.

    Parameters
    ----------
    n : int
        Number of rows.
    n_shards : int
        Number of processes, at most ``n``.
    seed : int
        Seeds the shuffle (the fit's seed: every rank computes the same shards).

    Returns
    -------
    shards : list of ndarray of int64
        Sorted row numbers of each shard; together every row once, sizes differing
        by at most 1.
    """
    order = np.random.RandomState(seed).permutation(n)
    return [np.sort(part).astype(np.int64) for part in np.array_split(order, n_shards)]


def steps_per_epoch(shard_sizes, batch_size):
    """Steps every process runs per epoch, and the size of the largest shard's last batch.

    Parameters
    ----------
    shard_sizes : sequence of int
        Rows of each shard.
    batch_size : int
        Rows per step of each process.

    Returns
    -------
    n_batches : int
        Batches of the largest shard: every process runs this many.
    tail : int
        Rows of the largest shard's last batch: the size of a shorter shard's extra
        batches.
    """
    largest = max(shard_sizes)
    n_batches = -(-largest // batch_size)
    return n_batches, largest - (n_batches - 1) * batch_size


def _rank_seed(seed, rank, stream):
    """A seed for one random stream (``stream``) of one process, derived from the fit's."""
    return int(np.random.SeedSequence([seed, rank, stream]).generate_state(1)[0])


class ShardBatches(Sampler):
    """Batches of one shard's rows: a new shuffle every epoch, always ``n_batches`` of them.

    Parameters
    ----------
    n_rows : int
        Rows of the shard (local row numbers ``0 .. n_rows - 1``).
    batch_size : int
        Rows per batch (the last batch of the shuffle may be smaller).
    n_batches : int
        Batches per epoch. When the shuffle gives fewer (a shard shorter than the
        largest), extra batches of ``tail`` rows are drawn from the shard's own
        rows, distinct within a batch.
    tail : int
        Rows of an extra batch.
    seed : int
        Seeds the shuffles.
    """

    def __init__(self, n_rows, batch_size, n_batches, tail, seed):
        self.n_rows, self.batch_size = n_rows, batch_size
        self.n_batches, self.tail = n_batches, tail
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self):
        return self.n_batches

    def __iter__(self):
        batches = list(torch.randperm(self.n_rows, generator=self.generator).split(self.batch_size))
        while len(batches) < self.n_batches:
            extra = torch.randperm(self.n_rows, generator=self.generator)
            batches.append(extra[:min(self.tail, self.n_rows)])
        return iter([batch.tolist() for batch in batches])


def _reference_position(training_rows, rows):
    """For each of ``rows``: its place in the reference, or -1 (None: X_val is the reference).

    Parameters
    ----------
    training_rows : ndarray of int or None
        Row numbers of the reference rows, when they were drawn from ``X``.
    rows : ndarray of int
        The shard's row numbers.

    Returns
    -------
    position : torch.Tensor of int64 or None
        One entry per shard row.
    """
    if training_rows is None:
        return None
    order = np.argsort(training_rows)
    ranked = np.asarray(training_rows)[order]
    at = np.minimum(np.searchsorted(ranked, rows), len(ranked) - 1)
    hit = ranked[at] == rows
    return torch.from_numpy(np.where(hit, order[at], -1).astype(np.int64))


class _ShardLoss(LossValLoss):
    """``LossValLoss`` over one shard's rows, told directly where they sit in the reference.

    ``reference_position`` (one entry per shard row: the row's place in the reference
    or -1) replaces ``reference_rows``, which would have to name every reference row
    in the shard's own numbering.
    """

    def __init__(self, *args, reference_position=None, **kwargs):
        super().__init__(*args, **kwargs)
        if reference_position is not None:
            self.reference_position = torch.as_tensor(reference_position, dtype=torch.long)


class ShardNet(LossValNet):
    """``LossValNet`` of one process: its batches come from ``iterator_train__batch_sampler``.

    skorch's ``get_iterator`` adds ``batch_size`` to the loader's arguments, which a
    ``DataLoader`` refuses next to a ``batch_sampler``.
    """

    def get_iterator(self, dataset, training=False):
        if not training:
            return super().get_iterator(dataset, training)
        return self.iterator_train(dataset, **self.get_params_for("iterator_train"))


# ----------------------------------------------------------------------------- one process

@dataclass
class _Plan:
    """What every process needs besides its shard; small and picklable."""

    est: object                # an unfitted clone: the parameters, for ``_net_params``
    n_rows: int
    n_features: int
    n_outputs: int
    reference: _Reference
    cost_scale: float
    seed: int
    shard_sizes: list
    batch_size: int            # rows per step of each process (the fit's, divided)
    backend: str
    device_type: str
    timeout_s: float

    @property
    def world_size(self):
        return len(self.shard_sizes)


def _plan(est, prep, shards, backend):
    """The ``_Plan`` of a fit of ``est`` on ``prep`` (``_Prepared``) cut into ``shards``."""
    self_reference = prep.reference.training_rows is not None
    return _Plan(
        est=clone(est), n_rows=len(prep.Xt), n_features=prep.Xt.shape[1],
        n_outputs=prep.n_outputs, reference=prep.reference, cost_scale=prep.cost_scale,
        seed=prep.seed, shard_sizes=[len(rows) for rows in shards],
        batch_size=batch_per_process(est, len(prep.Xt), self_reference, len(shards)),
        backend=backend, device_type=torch.device(est.device).type, timeout_s=_TIMEOUT_S,
    )


def batch_per_process(est, n, self_reference, n_workers):
    """Rows per step of each process: the fit's batch, shared by the processes.

    The weights' signal comes from many steps, so a step of the whole fit takes the
    rows of a one-process step, ``batch_size`` (an int, or what ``"auto"`` picks
    before its cap), divided among the processes: an epoch keeps its number of steps.
    (Each process taking the whole batch, half the steps with two processes, valued
    flipped labels worse: breast_cancer, AUROC 0.78-0.84 against 0.91-0.92 at 10
    epochs.) ``"auto"``'s cap bounds one OT problem, so it applies per process: above
    ``100 * _AUTO_BATCH_MAX`` rows a step trains up to ``n_workers * _AUTO_BATCH_MAX``
    rows, and an epoch keeps at least about 100 steps (one process: ``n / 1024``).

    Parameters
    ----------
    est : _BaseLossVal
        The estimator (its ``batch_size``).
    n : int
        Rows of the whole fit.
    self_reference : bool
        Whether the reference rows are drawn from ``X`` (a one-process batch is then
        at most ``n // 2`` rows).
    n_workers : int
        Processes.

    Returns
    -------
    batch_size : int
        Rows per step of each process.
    """
    per_process = -(-est._batch_size(n, self_reference, cap=None) // n_workers)
    return per_process if est.batch_size != "auto" else min(_AUTO_BATCH_MAX, per_process)


def shard_data(prep, rows):
    """One shard's tensors: ``rows`` (global row numbers), ``X``, ``target``, ``X_cost``.

    Parameters
    ----------
    prep : _Prepared
        The prepared data of the whole fit.
    rows : ndarray of int
        The shard's row numbers.

    Returns
    -------
    shard : dict of torch.Tensor
        ``X_cost`` only when the OT cost has features of its own (``ot_scaling``).
    """
    shard = {"rows": torch.from_numpy(rows), "X": torch.from_numpy(prep.Xt[rows]),
             "target": torch.from_numpy(prep.target[rows])}
    if prep.Xc is not prep.Xt:
        shard["X_cost"] = torch.from_numpy(prep.Xc[rows])
    return shard


def build_shard_net(plan, shard, rank, device="cpu"):
    """The initialised net of process ``rank`` (not yet wrapped in DDP) and its dataset.

    Parameters
    ----------
    plan : _Plan
        The fit.
    shard : dict of torch.Tensor
        From ``shard_data``.
    rank : int
        The process.
    device : str or torch.device, default="cpu"
        Where it trains.

    Returns
    -------
    net : ShardNet
        Same network initialisation on every rank; data weights of the shard's rows.
    dataset : RowDataset
        The shard's rows, numbered ``0 .. len(shard) - 1``.
    """
    rows = shard["rows"]
    params = plan.est._net_params(len(rows), plan.n_features, plan.n_outputs, plan.reference,
                                  plan.cost_scale, plan.seed)
    del params["iterator_train__shuffle"], params["iterator_train__generator"]
    n_batches, tail = steps_per_epoch(plan.shard_sizes, plan.batch_size)
    callbacks = params["callbacks"]
    params.update(
        criterion=_ShardLoss,
        criterion__reference_rows=None,
        criterion__reference_position=_reference_position(plan.reference.training_rows,
                                                          rows.numpy()),
        criterion__random_state=_rank_seed(plan.seed, rank, 0),
        batch_size=plan.batch_size,
        iterator_train__batch_sampler=ShardBatches(len(rows), plan.batch_size, n_batches, tail,
                                                   _rank_seed(plan.seed, rank, 1)),
        device=device,
        # one progress bar and log, from rank 0
        verbose=params["verbose"] if rank == 0 else 0,
        callbacks=callbacks if rank == 0 else [c for c in callbacks if c[0] != "progress_bar"],
    )
    net = ShardNet(**params)
    torch.manual_seed(plan.seed)  # DDP broadcasts rank 0's parameters anyway
    net.initialize()
    return net, RowDataset(shard["X"], shard["target"], shard.get("X_cost"))


class _CommCount:
    """State of the comm hook: the gradient elements this process has all-reduced."""

    def __init__(self):
        self.elements = 0


def _count_and_allreduce(state, bucket):
    """DDP's default all-reduce (``allreduce_hook``), counting the bucket's elements."""
    state.elements += bucket.buffer().numel()
    return default_hooks.allreduce_hook(None, bucket)


def _wrap_ddp(net, device):
    """Wrap ``net.module_`` (the network alone) in DDP; the hook's ``_CommCount``.

    The optimizer keeps the same parameter objects: DDP does not copy them.
    """
    device = torch.device(device)
    ddp = DistributedDataParallel(net.module_,
                                  device_ids=[device.index] if device.type == "cuda" else None)
    count = _CommCount()
    ddp.register_comm_hook(count, _count_and_allreduce)
    net.module_ = ddp
    return count


def _digest(module):
    """SHA-256 of the module's parameters: equal on every rank when the replicas are."""
    digest = hashlib.sha256()
    for p in module.parameters():
        digest.update(p.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def train_shard(plan, shard, rank, local_rank):
    """Train process ``rank`` on its shard (the process group is initialised); its results.

    Parameters
    ----------
    plan : _Plan
        The fit.
    shard : dict of torch.Tensor
        This process's rows (``shard_data``).
    rank : int
        This process in the group.
    local_rank : int
        This process on its machine (its GPU with ``device="cuda"``).

    Returns
    -------
    result : dict
        ``rows`` (global row numbers) and their ``weights``, ``clipped``, ``evidence``
        and ``weight_history`` (or None); ``digest`` of the network, ``allreduced``
        (gradient elements all-reduced) and ``steps``; on rank 0 also
        ``module_state`` and ``history``.
    """
    device = torch.device("cuda", local_rank) if plan.device_type == "cuda" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    net, dataset = build_shard_net(plan, shard, rank, device)
    count = _wrap_ddp(net, device)
    net.partial_fit(dataset, None)
    return _result(net, shard["rows"], rank, count)


def _result(net, rows, rank, count):
    """What process ``rank`` sends back after training (see ``train_shard``)."""
    criterion, module = net.criterion_, net.module_.module
    callbacks = dict(net.callbacks_)
    result = {
        "rank": rank, "rows": rows,
        "weights": criterion.data_weights.detach().cpu(), "clipped": criterion.clipped.cpu(),
        "evidence": criterion.evidence.cpu(),
        "weight_history": (torch.from_numpy(callbacks["weight_history"].as_array())
                           if "weight_history" in callbacks else None),
        "digest": _digest(module), "allreduced": count.elements,
        "steps": int(sum(net.history[:, "train_batch_count"])) if len(net.history) else 0,
    }
    if rank == 0:
        result["module_state"] = {k: v.detach().cpu() for k, v in module.state_dict().items()}
        result["history"] = net.history
    return result


# ----------------------------------------------------------------------------- the results

def _assemble(est, prep, plan, results):
    """An ordinary ``LossValNet`` over all rows, holding the processes' results.

    Built as a one-process fit builds it, then given rank 0's network (all replicas
    are equal), every shard's weights, clipping record and evidence at their rows,
    rank 0's history and, with ``record_history``, the weights of every epoch.
    """
    net = est._build_net(plan.n_rows, plan.n_features, plan.n_outputs, plan.reference,
                         plan.cost_scale, plan.seed)
    first = min(results, key=lambda r: r["rank"])
    net.module_.load_state_dict(first["module_state"])
    criterion = net.criterion_
    history = None
    with torch.no_grad():
        for r in results:
            rows = torch.as_tensor(r["rows"], device=criterion.data_weights.device)
            criterion.data_weights[rows] = r["weights"].to(criterion.data_weights.device)
            criterion.clipped[rows] = r["clipped"].to(criterion.clipped.device)
            criterion.evidence[rows] = r["evidence"].to(criterion.evidence.device)
            if r["weight_history"] is not None:
                if history is None:
                    history = np.zeros((len(r["weight_history"]), plan.n_rows), np.float32)
                history[:, r["rows"].numpy()] = r["weight_history"].numpy()
    net.history = first["history"]
    if history is not None:
        dict(net.callbacks_)["weight_history"].history_ = list(history)
    return net


def _stats(plan, results):
    """What the processes did, per rank: for tests and benchmarks (``_distributed_stats``)."""
    results = sorted(results, key=lambda r: r["rank"])
    return {"n_workers": plan.world_size, "shard_sizes": list(plan.shard_sizes),
            "batch_per_process": plan.batch_size, "backend": plan.backend,
            "steps": [r["steps"] for r in results],
            "allreduced_elements": [r["allreduced"] for r in results],
            "replica_digests": [r["digest"] for r in results]}


def _check_rows(n, n_workers):
    if n_workers > n:
        raise ValueError(f"n_workers={n_workers} is more than the {n} rows; every process "
                         "needs at least one row.")


# ----------------------------------------------------------------------------- spawned processes

def fit_on_processes(est, prep):
    """Train ``est``'s net on ``est.n_workers`` processes of this machine; the assembled net.

    Parameters
    ----------
    est : _BaseLossVal
        The estimator being fitted, with ``n_workers > 1``.
    prep : _Prepared
        Its prepared data (``_BaseLossVal._prepare``).

    Returns
    -------
    net : LossValNet
        An ordinary net over all rows (see ``_assemble``). ``est._distributed_stats``
        is set.

    Raises
    ------
    Exception
        A worker's exception, of its own type when it can be unpickled here (else a
        ``RuntimeError``), caused by a ``RemoteTraceback`` holding the worker's
        traceback text; no process is left running.
    """
    n_workers = est.n_workers
    _check_rows(len(prep.Xt), n_workers)
    shards = shard_rows(len(prep.Xt), n_workers, prep.seed)
    device_type = torch.device(est.device).type
    plan = _plan(est, prep, shards, "nccl" if device_type == "cuda" else "gloo")
    with tempfile.TemporaryDirectory(prefix="skval-workers-") as folder:
        for rank, rows in enumerate(shards):
            torch.save(shard_data(prep, rows), _path(folder, "shard", rank))
        _launch(plan, folder)
        results = [torch.load(_path(folder, "result", rank), weights_only=False)
                   for rank in range(n_workers)]
    net = _assemble(est, prep, plan, results)
    est._distributed_stats = _stats(plan, results)
    est._warn_if_interrupted(net)
    return net


def _path(folder, kind, rank):
    return os.path.join(folder, f"{kind}{rank}.pt")


def _limit_threads():
    """One torch thread in this process, unless the user set ``OMP_NUM_THREADS``."""
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)


def _spawned_worker(rank, pickled_plan, folder):
    """Entry of a spawned process: join the group, train the shard, write the results.

    The plan comes pickled, so that a failure to unpickle it (a module class the
    process cannot import) is reported like any other. An exception is written to
    ``error<rank>.pt`` (the time, the exception if it pickles, the traceback text)
    and raised again: the process exits with an error.
    """
    try:
        plan = pickle.loads(pickled_plan)
        _limit_threads()
        store = dist.FileStore(os.path.join(folder, "store"), plan.world_size)
        dist.init_process_group(plan.backend, store=store, rank=rank,
                                world_size=plan.world_size,
                                timeout=timedelta(seconds=plan.timeout_s))
        shard = torch.load(_path(folder, "shard", rank), weights_only=True)
        result = train_shard(plan, shard, rank, rank)
        torch.save(result, _path(folder, "result", rank))
        dist.barrier()  # no process leaves while another still talks to it
        dist.destroy_process_group()
    except Exception as exc:
        _save_error(folder, rank, exc)
        raise


def _save_error(folder, rank, exc):
    try:
        pickled = pickle.dumps(exc)
        pickle.loads(pickled)
    except Exception:  # an exception that does not survive pickling travels as text only
        pickled = None
    with open(_path(folder, "error", rank), "wb") as f:
        pickle.dump((time.time(), pickled, traceback.format_exc()), f)


def _launch(plan, folder):
    """Run ``_spawned_worker`` on ``plan.world_size`` processes until all end; raise a failure.

    On any failure, or Ctrl-C here, every process still running is stopped before
    this returns.
    """
    context = start_processes(
        _spawned_worker, args=(pickle.dumps(plan), folder), nprocs=plan.world_size, join=False,
        start_method="spawn")
    try:
        while not context.join(timeout=1.0, grace_period=_GRACE_S):
            pass
    except ProcessException as exc:
        error, remote = _worker_error(folder, plan.world_size, exc)
        raise error from remote
    finally:
        _stop(context.processes)


def _stop(processes):
    """Terminate, then kill, every process still alive; wait for all."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(_GRACE_S)
        if process.is_alive():
            process.kill()
            process.join()


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker process, as text."""


def _worker_error(folder, n_workers, exc):
    """The exception to raise for a failed fit, and its cause (the worker's traceback).

    The first error in time is the one reported: a worker that fails makes the
    others' collectives fail after it.
    """
    errors = []
    for rank in range(n_workers):
        path = _path(folder, "error", rank)
        if os.path.exists(path):
            with open(path, "rb") as f:
                errors.append((rank, *pickle.load(f)))
    if not errors:  # killed (out of memory?) or exited without a Python exception
        return RuntimeError(f"A worker of the n_workers={n_workers} fit died: {exc}."), None
    rank, _, pickled, text = min(errors, key=lambda e: e[1])
    remote = RemoteTraceback(f"\nWorker {rank} of {n_workers}:\n{text}")
    try:
        error = pickle.loads(pickled)
    except Exception:  # not picklable there, or its class not importable here
        return RuntimeError(f"Worker {rank} of {n_workers} failed:\n{text}"), remote
    if hasattr(error, "add_note"):
        error.add_note(f"(raised in worker {rank} of the n_workers={n_workers} fit; its "
                       "traceback is above)")
    return error, remote


# ----------------------------------------------------------------------------- torchrun

def fit_in_group(est, X, y, X_val=None, y_val=None):
    """Fit ``est`` with every process of the initialised default process group.

    Every rank calls it with the same data and parameters: each prepares the data
    the same way (an int ``random_state`` is drawn on rank 0 and shared when
    ``est.random_state`` is not one, and set on ``est``), trains its shard, and rank 0
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
    rank, world = dist.get_rank(), dist.get_world_size()
    if not isinstance(est.random_state, numbers.Integral) or isinstance(est.random_state, bool):
        seed = [int(check_random_state(est.random_state).randint(np.iinfo(np.int32).max))]
        dist.broadcast_object_list(seed, src=0)
        est.random_state = seed[0]
    vars(est).pop("_distributed_stats", None)
    prep = est._prepare(X, y, X_val, y_val)
    _check_rows(len(prep.Xt), world)
    shards = shard_rows(len(prep.Xt), world, prep.seed)
    plan = _plan(est, prep, shards, dist.get_backend())
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    result = train_shard(plan, shard_data(prep, shards[rank]), rank, local_rank)
    results = [None] * world if rank == 0 else None
    dist.gather_object(result, results, dst=0)
    if rank != 0:
        return None
    net = _assemble(est, prep, plan, results)
    est._store_results(net, prep.row_index, len(prep.reference.X))
    est._distributed_stats = _stats(plan, results)
    return est
