"""``torchrun ... -m skval.distributed DATA ...``: one valuation trained on many processes.

The command line of ``skval._distributed.fit_in_group``; run ``python -m
skval.distributed --help`` for its options.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

from ._classifier import LossValClassifier
from ._distributed import _limit_threads, fit_in_group
from ._io import FileError, check_outputs, read_csv, require_file, write_atomically
from ._regressor import LossValRegressor

__all__ = ["main"]

DESCRIPTION = """\
Value the rows of a data file with one LossVal fit trained on every process that
torchrun starts, on one machine or several (torch.distributed: gloo on CPUs; nccl
with "device": "cuda" in --params, one GPU per process). The rows are shuffled once
and cut into one shard per process; each process trains its shard's data weights
and a replica of the network, whose gradients are averaged at every step.

Run the same command on every machine, e.g. 2 machines with 4 processes each:

  torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d \\
      --rdzv-endpoint HOST0:29500 --rdzv-id valuation1 \\
      -m skval.distributed data.npy --target -1 --task classification \\
      --params '{"max_epochs": 30, "random_state": 0}' \\
      --values values.csv --model model.pkl

Without torchrun it runs as a single process.

The data: a CSV file with a header line and numeric feature columns, or a .npy file
of a 2-D numeric array (--target is then a column number, negative from the end).
Every process reads the whole file and prepares all of it the same way, then trains
its own shard: the file must be at the same path on every machine and fit in the
memory of every process.

Rank 0 writes the values (--values: a CSV of row, data_value, label_evidence,
feature_evidence, one line per row of the file, in its order) and, with --model, the
fitted estimator (a pickle: pickle.load it where skval is installed; it predicts and
holds data_values_). An existing file is replaced only with --overwrite.
"""


def _parser():
    p = argparse.ArgumentParser(prog="python -m skval.distributed", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="a CSV file with a header line, or a .npy file (2-D array)")
    p.add_argument("--target", required=True,
                   help="the target: a column name (CSV) or a column number (.npy)")
    p.add_argument("--task", required=True, choices=["classification", "regression"])
    p.add_argument("--params", default="{}",
                   help="estimator parameters as a JSON object, e.g. "
                        "'{\"max_epochs\": 30, \"random_state\": 0}' (default: {}); without "
                        "random_state, rank 0 draws one and the saved estimator keeps it")
    p.add_argument("--values", required=True, help="output CSV of the values")
    p.add_argument("--model", default=None, help="also pickle the fitted estimator here")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--timeout", type=float, default=1800.0,
                   help="seconds a process waits for the others before failing (default: 1800)")
    return p


def _fail(message, rank=0):
    if rank == 0:
        print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _params(text, rank):
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(f"--params is not JSON: {exc}", rank)
    if not isinstance(params, dict):
        _fail(f"--params must be a JSON object, got {text!r}", rank)
    if "n_workers" in params:
        _fail("n_workers is not a parameter here: torchrun's processes train the fit", rank)
    return params


def _refusal(args):
    """Why rank 0 must not write the outputs, or None."""
    try:
        check_outputs(args.data, [args.values, args.model], args.overwrite)
    except FileError as error:
        return str(error)
    return None


def _init_group(params, timeout, under_torchrun):
    """Join torchrun's process group (``env://``), or make a group of this process alone."""
    cuda = torch.device(params.get("device", "cpu")).type == "cuda"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    backend, timeout = ("nccl" if cuda else "gloo"), timedelta(seconds=timeout)
    if under_torchrun:
        dist.init_process_group(backend, timeout=timeout)
    else:
        dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1,
                                timeout=timeout)


def _read(path, target, rank):
    """Features and target of the data file."""
    try:
        if path.endswith(".npy"):
            require_file(path)
            return _read_npy(path, target, rank)
        frame = read_csv(path, target)
    except FileError as error:
        _fail(str(error), rank)
    return frame.drop(columns=[target]), frame[target].to_numpy()


def _read_npy(path, target, rank):
    """Features and target of a .npy file; ``target`` is a column number."""
    data = np.load(path)
    try:
        column = int(target)
    except ValueError:
        _fail(f"--target must be a column number for a .npy file, got {target!r}", rank)
    if data.ndim != 2 or not -data.shape[1] <= column < data.shape[1]:
        _fail(f"{path} holds an array of shape {data.shape}; --target {column} is not "
              "one of its columns", rank)
    return np.delete(data, column, axis=1), data[:, column]


def _write(args, est):
    """Rank 0's outputs: the values CSV and, with --model, the pickled estimator."""
    table = np.column_stack([np.arange(len(est.data_values_)), est.data_values_, est.evidence_])

    def values(tmp):
        np.savetxt(tmp, table, delimiter=",", fmt=["%d", "%.9g", "%.9g", "%.9g"], comments="",
                   header="row,data_value,label_evidence,feature_evidence")

    def model(tmp):
        with open(tmp, "wb") as f:
            pickle.dump(est, f)

    write_atomically(args.values, values)
    if args.model:
        write_atomically(args.model, model)


def main(argv=None):
    """Run the command line: fit on torchrun's processes; rank 0 writes the results.

    Parameters
    ----------
    argv : list of str or None, default=None
        The arguments (``None``: ``sys.argv[1:]``); ``--help`` describes them.

    Returns
    -------
    code : int
        0 when the values were written, 1 when an output was refused.
    """
    args = _parser().parse_args(argv)
    under_torchrun = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    rank = int(os.environ.get("RANK", "0")) if under_torchrun else 0
    params = _params(args.params, rank)
    refusal = _refusal(args) if rank == 0 else None
    if refusal and not under_torchrun:
        print(f"error: {refusal}", file=sys.stderr)
        return 1
    _limit_threads()
    _init_group(params, args.timeout, under_torchrun)
    try:
        shared = [refusal]
        dist.broadcast_object_list(shared, src=0)  # every rank stops if rank 0 may not write
        if shared[0]:
            if rank == 0:
                print(f"error: {shared[0]}", file=sys.stderr)
            return 1
        X, y = _read(args.data, args.target, rank)
        estimator = LossValClassifier if args.task == "classification" else LossValRegressor
        start = time.perf_counter()
        fitted = fit_in_group(estimator(**params), X, y)
        if fitted is not None:
            _write(args, fitted)
            world = dist.get_world_size()
            print(f"valued {len(fitted.data_values_)} rows on {world} process"
                  f"{'es' if world > 1 else ''} "
                  f"in {time.perf_counter() - start:.1f} s ({fitted.n_epochs_} epochs); values: "
                  f"{args.values}" + (f"; model: {args.model}" if args.model else ""))
        dist.barrier()  # no process leaves while another still talks to it
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":  # importing the module (doctest collection, tools) runs nothing
    raise SystemExit(main())
