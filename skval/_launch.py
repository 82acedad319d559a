"""The process launcher: ``n_workers`` processes of this machine, each training one shard.

The fitting process writes each shard and the fit's plan to a temporary folder and
starts every process as ``python -m skval._worker FOLDER RANK`` (``subprocess``), which
joins the group (a ``FileStore`` in that folder; gloo, or nccl on GPUs), trains its
shard and writes its ``ShardResult`` there. No process re-imports the user's main
module (multiprocessing's ``spawn`` does), so a script without an
``if __name__ == "__main__":`` guard, a script read from standard input and a
notebook all work. The plan travels through ``cloudpickle``: a module class, a
callback or a function defined in ``__main__`` (a notebook cell, the script) travels
by value; anything importable travels by reference, as with ``pickle``. The workers
see the caller's ``sys.path``. A worker's failure stops every other worker and is
raised here, with the worker's traceback as its cause; Ctrl-C here stops them all.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import time
import traceback

import cloudpickle
import torch

# Seconds the processes still running get to stop after one failed, before SIGTERM
# (and as long again before SIGKILL).
_GRACE_S = 5.0
# Seconds between two looks at the processes.
_POLL_S = 0.05


def limit_threads():
    """One torch thread in this process, unless the user set ``OMP_NUM_THREADS``."""
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)


def run_spawned(plan, shards):
    """Train ``shards`` (``shard_data`` of each rank) on worker processes; their results.

    Raises
    ------
    Exception
        A worker's exception, of its own type when it can be unpickled here (else a
        ``RuntimeError``), caused by a ``RemoteTraceback`` holding the worker's
        traceback text; no process is left running.
    """
    with tempfile.TemporaryDirectory(prefix="skval-workers-") as folder:
        for rank, shard in enumerate(shards):
            torch.save(shard, path_of(folder, "shard", rank))
        with open(os.path.join(folder, "plan.pkl"), "wb") as f:
            # sys.path first: the worker sets it before it unpickles the plan
            pickle.dump((list(sys.path), cloudpickle.dumps(plan)), f)
        _launch(plan, folder)
        return [torch.load(path_of(folder, "result", rank), weights_only=False)
                for rank in range(plan.world_size)]


def path_of(folder, kind, rank):
    """The file of ``kind`` ("shard", "result", "error") of process ``rank`` in ``folder``."""
    return os.path.join(folder, f"{kind}{rank}.pt")


def save_error(folder, rank, exc):
    """Write ``exc`` of process ``rank`` to ``error<rank>.pt``: the time, it, its traceback.

    The exception travels by ``cloudpickle`` when it survives the round trip (an
    exception class of the user's ``__main__`` included), else as text only.
    """
    try:
        pickled = cloudpickle.dumps(exc)
        pickle.loads(pickled)
    except Exception:  # an exception that does not survive pickling travels as text only
        pickled = None
    with open(path_of(folder, "error", rank), "wb") as f:
        pickle.dump((time.time(), pickled, traceback.format_exc()), f)


def _worker_env():
    """The workers' environment: the caller's, with this copy of skval importable first."""
    env = dict(os.environ)
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(
        [package_root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def _start(plan, folder):
    """Start the ``plan.world_size`` worker processes; their ``Popen`` objects."""
    env = _worker_env()
    return [subprocess.Popen([sys.executable, "-m", "skval._worker", folder, str(rank)],
                             env=env, stdin=subprocess.DEVNULL)
            for rank in range(plan.world_size)]


def _launch(plan, folder):
    """Run the workers until all end; raise the first failure.

    On any failure, or Ctrl-C here, every process still running is stopped before
    this returns.
    """
    processes = []
    try:
        processes = _start(plan, folder)
        while True:
            codes = [p.poll() for p in processes]
            failed = [rank for rank, code in enumerate(codes) if code not in (None, 0)]
            if failed:
                error, remote = _worker_error(folder, plan.world_size, failed, codes)
                raise error from remote
            if all(code == 0 for code in codes):
                return
            time.sleep(_POLL_S)
    finally:
        _stop(processes)


def _stop(processes):
    """Terminate, then kill, every process still alive; wait for all."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker process, as text."""


def _worker_error(folder, n_workers, failed, codes):
    """The exception to raise for a failed fit, and its cause (the worker's traceback).

    The first error in time is the one reported: a worker that fails makes the
    others' collectives fail after it. ``failed``: the ranks that exited with an
    error; ``codes``: every rank's exit code (None: still running).
    """
    errors = []
    for rank in range(n_workers):
        path = path_of(folder, "error", rank)
        if os.path.exists(path):
            with open(path, "rb") as f:
                errors.append((rank, *pickle.load(f)))
    if not errors:  # killed (out of memory?) or exited without a Python exception
        rank = failed[0]
        return RuntimeError(f"Worker {rank} of the n_workers={n_workers} fit died "
                            f"(exit code {codes[rank]})."), None
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
