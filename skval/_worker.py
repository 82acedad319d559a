"""``python -m skval._worker FOLDER RANK``: one process of an ``n_workers`` fit.

Started by ``skval._launch`` (never by a user): it reads the fit's plan and its
shard from ``FOLDER``, joins the group, trains the shard and writes its
``ShardResult`` there. It imports skval and what the plan names, never the user's
main module.
"""

from __future__ import annotations

import os
import pickle
import sys
from datetime import timedelta

import torch
import torch.distributed as dist

from ._launch import limit_threads, path_of, save_error
from ._shard import train_shard


def _read_plan(folder):
    """The plan, unpickled after the caller's ``sys.path`` is in place."""
    with open(os.path.join(folder, "plan.pkl"), "rb") as f:
        caller_path, pickled_plan = pickle.load(f)
    sys.path[:] = list(dict.fromkeys(sys.path + caller_path))
    return pickle.loads(pickled_plan)


def run_worker(folder, rank):
    """Join the group, train process ``rank``'s shard, write its result to ``folder``.

    An exception is written to ``error<rank>.pt`` (the time, the exception if it
    pickles, the traceback text) and raised again: the process exits with an error.
    A failure to unpickle the plan (a module class the process cannot import) is
    reported like any other.
    """
    try:
        plan = _read_plan(folder)
        limit_threads()
        store = dist.FileStore(os.path.join(folder, "store"), plan.world_size)
        dist.init_process_group(plan.backend, store=store, rank=rank,
                                world_size=plan.world_size,
                                timeout=timedelta(seconds=plan.timeout_s))
        shard = torch.load(path_of(folder, "shard", rank), weights_only=True)
        result = train_shard(plan, shard, rank, rank)
        torch.save(result, path_of(folder, "result", rank))
        dist.barrier()  # no process leaves while another still talks to it
        dist.destroy_process_group()
    except Exception as exc:
        save_error(folder, rank, exc)
        raise


if __name__ == "__main__":
    run_worker(sys.argv[1], int(sys.argv[2]))
