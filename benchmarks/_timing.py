"""Timed fits, each in a fresh Python process, so that peak RSS is the fit's own.

The parent calls :func:`run_fit` (and :func:`skval_batch_size`); they start
``python benchmarks/_timing.py ...`` (or ``python -c``), whose :func:`fit_once` fits once
and prints one JSON line of times and memory. The fit is skval's estimator, a plain skorch
net of the same network (:func:`fit_plain`) or a raw torch loop of it (:func:`fit_raw`,
the floor a user could write by hand). torch, skorch and skval are imported in the child
only (all three whatever the variant, so that the import baseline is the same), from
``PYTHONPATH`` when a source tree is given.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_EPOCHS = 30
# The estimators' defaults, copied so that the plain skorch net and the raw loop train the
# same network.
DEFAULTS = {
    "classification": dict(hidden=(100,) * 5, activation="relu"),
    "regression": dict(hidden=(90,) * 3, activation="tanh"),
}
LR = 0.01
CHILD_VARIANTS = ("skval", "plain", "raw")


def _env_with_src(src):
    """This process's environment, with ``src`` first on ``PYTHONPATH`` when given."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


# --------------------------------------------------------------------------- child side

def rss_mib(field):
    """``VmRSS`` (current) or ``VmHWM`` (peak) of this process, in MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _epoch_cpu_callback():
    """A skorch callback that records each epoch's process CPU time as ``history[:, 'cpu']``."""
    from skorch.callbacks import Callback

    class EpochCPUTime(Callback):
        """Records the process CPU time (all threads) of each epoch as ``history[:, 'cpu']``."""

        def on_epoch_begin(self, net, **kwargs):
            self.t0_ = time.process_time()

        def on_epoch_end(self, net, **kwargs):
            net.history.record("cpu", time.process_time() - self.t0_)

    return EpochCPUTime()


def _history_times(net):
    """The per-epoch wall (skorch's ``dur``) and CPU seconds of a fitted skorch net."""
    return ([float(d) for d in net.history[:, "dur"]],
            [float(c) for c in net.history[:, "cpu"]])


def fit_skval(X, y, task, epochs, batch_size):
    """Fit ``LossValClassifier`` / ``LossValRegressor`` (defaults, ``random_state=0``).

    Parameters
    ----------
    X : ndarray of shape (n, n_features), float32
        Features.
    y : ndarray of shape (n,)
        int64 labels or float32 targets.
    task : {"classification", "regression"}
        Which estimator.
    epochs : int
        ``max_epochs``.
    batch_size : int
        0: the estimator's default.

    Returns
    -------
    dict
        ``epoch_durs``, ``epoch_cpus`` (lists of seconds) and ``batch_size`` (the one used).
    """
    from skval import LossValClassifier, LossValRegressor

    cls = LossValClassifier if task == "classification" else LossValRegressor
    kwargs = {} if batch_size == 0 else {"batch_size": batch_size}
    est = cls(max_epochs=epochs, random_state=0,
              callbacks=[("cpu_time", _epoch_cpu_callback())], **kwargs).fit(X, y)
    durs, cpus = _history_times(est.net_)
    return {"epoch_durs": durs, "epoch_cpus": cpus, "batch_size": est.net_.batch_size}


def fit_plain(X, y, task, epochs, batch_size):
    """Fit a skorch ``NeuralNetClassifier`` / ``NeuralNetRegressor`` of skval's network.

    ``skval._mlp.MLP`` with the estimator's default hidden sizes and activation, Adam
    (lr 0.01), ``train_split=None``, shuffled batches, seed 0. Parameters and return value
    as :func:`fit_skval`; ``batch_size`` must be given.
    """
    import torch
    from skorch import NeuralNetClassifier, NeuralNetRegressor

    from skval._mlp import MLP

    torch.manual_seed(0)
    spec = DEFAULTS[task]
    common = dict(
        module=MLP,
        module__n_features=X.shape[1],
        module__hidden_layer_sizes=spec["hidden"],
        module__activation=spec["activation"],
        optimizer=torch.optim.Adam,
        lr=LR,
        batch_size=batch_size,
        max_epochs=epochs,
        train_split=None,
        iterator_train__shuffle=True,
        callbacks=[("cpu_time", _epoch_cpu_callback())],
        verbose=0,
    )
    if task == "classification":
        net = NeuralNetClassifier(criterion=torch.nn.CrossEntropyLoss,
                                  module__n_outputs=int(y.max()) + 1, **common)
        net.fit(X, y)
    else:
        net = NeuralNetRegressor(module__n_outputs=1, **common)
        net.fit(X, y.reshape(-1, 1))
    durs, cpus = _history_times(net)
    return {"epoch_durs": durs, "epoch_cpus": cpus, "batch_size": net.batch_size}


def fused_adam(params):
    """``torch.optim.Adam(lr=0.01, fused=True)``, or unfused where torch refuses fused.

    Parameters
    ----------
    params : list of torch.nn.Parameter
        What to optimize.

    Returns
    -------
    optimizer : torch.optim.Adam
    fused : bool
        Whether the fused kernel is used.
    """
    import torch

    try:
        return torch.optim.Adam(params, lr=LR, fused=True), True
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=LR), False


def _raw_problem(X, y, task):
    """The tensors, output width and loss of the raw loop: float32 X, int64 or (n, 1) float y."""
    import torch

    X_t = torch.as_tensor(X, dtype=torch.float32)
    if task == "classification":
        return X_t, torch.as_tensor(y, dtype=torch.int64), int(y.max()) + 1, \
            torch.nn.CrossEntropyLoss()
    return X_t, torch.as_tensor(y, dtype=torch.float32).reshape(-1, 1), 1, torch.nn.MSELoss()


def fit_raw(X, y, task, epochs, batch_size):
    """Train skval's network with a bare torch loop: the floor a user could write by hand.

    ``skval._mlp.MLP`` as in :func:`fit_plain`, fused Adam (lr 0.01, see :func:`fused_adam`),
    ``CrossEntropyLoss`` or ``MSELoss``; each epoch shuffles with ``torch.randperm(n)`` and
    indexes the float32 tensors batch by batch (no DataLoader). Seed 0. Parameters and
    return value as :func:`fit_skval` (``batch_size`` must be given), plus ``fused`` and
    ``steps_per_epoch``.
    """
    import torch

    from skval._mlp import MLP

    torch.manual_seed(0)
    spec = DEFAULTS[task]
    X_t, y_t, n_outputs, loss_fn = _raw_problem(X, y, task)
    module = MLP(X_t.shape[1], n_outputs, spec["hidden"], spec["activation"])
    optimizer, fused = fused_adam(list(module.parameters()))
    module.train()
    durs, cpus, steps = [], [], 0
    for _ in range(epochs):
        t0, c0 = time.perf_counter(), time.process_time()
        batches = torch.randperm(len(X_t)).split(batch_size)
        for idx in batches:
            optimizer.zero_grad(set_to_none=True)
            loss_fn(module(X_t[idx]), y_t[idx]).backward()
            optimizer.step()
        durs.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        steps = len(batches)
    return {"epoch_durs": durs, "epoch_cpus": cpus, "batch_size": batch_size,
            "fused": fused, "steps_per_epoch": steps}


FITS = {"skval": fit_skval, "plain": fit_plain, "raw": fit_raw}


def fit_once(args):
    """Fit once and print one JSON line: times and memory.

    Parameters
    ----------
    args : argparse.Namespace
        ``which`` ("skval", "plain" or "raw"), ``task``, ``epochs``, ``data_X``, ``data_y``,
        ``threads`` (0: torch's default) and ``batch_size`` (0: skval's default; "skval"
        only).
    """
    import resource

    import skorch  # noqa: F401  (in the import baseline of every variant)
    import torch

    import skval

    if args.threads:
        torch.set_num_threads(args.threads)
    base_rss = rss_mib("VmRSS")  # python + numpy + torch + skorch + POT + skval imported
    X = np.load(args.data_X)
    y = np.load(args.data_y)
    t0 = time.perf_counter()
    res = FITS[args.which](X, y, args.task, args.epochs, args.batch_size)
    fit_s = time.perf_counter() - t0
    peak = rss_mib("VmHWM")
    ru_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "fit_s": fit_s, **res, "base_rss_mib": base_rss,
        "peak_rss_mib": max(peak, ru_peak), "threads": torch.get_num_threads(),
        "skval_file": skval.__file__,
    }))


def _child_args(argv):
    parser = argparse.ArgumentParser(description="One timed fit (internal to speed.py).")
    parser.add_argument("which", choices=CHILD_VARIANTS)
    parser.add_argument("--task", required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--data-X", required=True)
    parser.add_argument("--data-y", required=True)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=0)
    args = parser.parse_args(argv)
    if args.which != "skval" and args.batch_size <= 0:
        parser.error(f"{args.which} needs --batch-size")
    return args


# --------------------------------------------------------------------------- parent side

def skval_batch_size(task, n, src=None):
    """The batch size skval's default ``batch_size`` gives for ``n`` rows (no X_val).

    Parameters
    ----------
    task : {"classification", "regression"}
        Which estimator to ask.
    n : int
        Rows.
    src : str or None, default=None
        A source tree to import skval from, in a fresh process.

    Returns
    -------
    int
    """
    estimator = "LossValClassifier" if task == "classification" else "LossValRegressor"
    # the rule lives in skval._spec since the redesign; older trees (--compare-src) kept it
    # on the estimator
    code = ("import skval\n"
            f"est = skval.{estimator}()\n"
            "try:\n"
            "    from skval._spec import batch_size_for\n"
            f"    print(batch_size_for(est.batch_size, {n}, True))\n"
            "except ImportError:\n"
            f"    print(est._batch_size({n}, True))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=_env_with_src(src), check=True)
    return int(out.stdout.strip().splitlines()[-1])


def mean_after_warmup(seconds):
    """Mean of per-epoch ``seconds``, without the first epoch (one-off warm-up costs) when
    at least 3 ran."""
    return float(np.mean(seconds[1:] if len(seconds) >= 3 else seconds))


def run_fit(which, task, n, epochs, paths, threads, timeout, batch_size, src=None):
    """Run one fit in a fresh interpreter and derive the per-epoch figures.

    Parameters
    ----------
    which : {"skval", "plain", "raw", "ref"}
        "ref" fits skval imported from ``src``.
    task : {"classification", "regression"}
        The task.
    n : int
        Rows (for messages).
    epochs : int
        Epochs to run.
    paths : tuple of pathlib.Path
        The ``.npy`` files of X and y.
    threads : int
        torch threads (0: torch's default).
    timeout : float
        Seconds before the fit is killed.
    batch_size : int
        0: skval's default (skval variants only; "plain" and "raw" need one).
    src : str or None, default=None
        A source tree to import skval from.

    Returns
    -------
    dict
        The child's JSON plus ``s_per_epoch`` and ``cpu_per_epoch`` (without the first,
        warm-up epoch when at least 3 ran), ``fit30_s`` (the fit time extrapolated to 30
        epochs), ``extrapolated`` and ``epochs``.
    """
    cmd = [sys.executable, __file__, "skval" if which == "ref" else which,
           "--task", task, "--epochs", str(epochs), "--data-X", str(paths[0]),
           "--data-y", str(paths[1]), "--threads", str(threads), "--batch-size", str(batch_size)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                         env=_env_with_src(src), check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{which} {task} n={n} failed:\n{out.stderr[-4000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    imported_from = Path(res["skval_file"]).resolve()
    if src is not None and not imported_from.is_relative_to(Path(src).resolve()):
        raise RuntimeError(f"{which} imported skval from {res['skval_file']}, not from {src}")
    res["s_per_epoch"] = mean_after_warmup(res["epoch_durs"])
    res["cpu_per_epoch"] = mean_after_warmup(res["epoch_cpus"])
    res["fit30_s"] = res["fit_s"] + (DEFAULT_EPOCHS - len(res["epoch_durs"])) * res["s_per_epoch"]
    res["extrapolated"] = epochs < DEFAULT_EPOCHS
    res["epochs"] = epochs
    return res


if __name__ == "__main__":
    fit_once(_child_args(sys.argv[1:]))
