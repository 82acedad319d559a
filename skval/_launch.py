"""The spawn launcher: ``n_workers`` processes of this machine, each training one shard.

The fitting process writes each shard to a temporary folder, spawns the processes (a
``FileStore`` in that folder; gloo, or nccl on GPUs) on a module entry of the package
(``_spawned_worker``), and reads back each rank's ``ShardResult`` from a file there.
A worker's failure stops every other worker and is raised here, with the worker's
traceback as its cause.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import time
import traceback
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.multiprocessing.spawn import ProcessException, start_processes

from ._shard import train_shard

# Seconds the processes still running get to stop after one failed, before SIGTERM
# (and as long again before SIGKILL).
_GRACE_S = 5.0


def limit_threads():
    """One torch thread in this process, unless the user set ``OMP_NUM_THREADS``."""
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)


def run_spawned(plan, shards):
    """Train ``shards`` (``shard_data`` of each rank) on spawned processes; their results.

    Raises
    ------
    Exception
        A worker's exception, of its own type when it can be unpickled here (else a
        ``RuntimeError``), caused by a ``RemoteTraceback`` holding the worker's
        traceback text; no process is left running.
    """
    with tempfile.TemporaryDirectory(prefix="skval-workers-") as folder:
        for rank, shard in enumerate(shards):
            torch.save(shard, _path(folder, "shard", rank))
        _launch(plan, folder)
        return [torch.load(_path(folder, "result", rank), weights_only=False)
                for rank in range(plan.world_size)]


def _path(folder, kind, rank):
    return os.path.join(folder, f"{kind}{rank}.pt")


def _spawned_worker(rank, pickled_plan, folder):
    """Entry of a spawned process: join the group, train the shard, write the results.

    The plan comes pickled, so that a failure to unpickle it (a module class the
    process cannot import) is reported like any other. An exception is written to
    ``error<rank>.pt`` (the time, the exception if it pickles, the traceback text)
    and raised again: the process exits with an error.
    """
    try:
        plan = pickle.loads(pickled_plan)
        limit_threads()
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
