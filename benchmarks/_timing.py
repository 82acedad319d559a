"""Timed fits, each in a fresh Python process, so that peak RSS is the fit's own.

The parent calls :func:`run_fit` (and :func:`skval_batch_size`); they start
``python benchmarks/_timing.py ...`` (or ``python -c``), whose :func:`fit_once` fits
skval or a plain skorch net once and prints one JSON line of times and memory. torch,
skorch and skval are imported in the child only, from ``PYTHONPATH`` when a source tree
is given.
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
# The estimators' defaults, copied so that the plain skorch net trains the same network.
DEFAULTS = {
    "classification": dict(hidden=(100,) * 5, activation="relu"),
    "regression": dict(hidden=(90,) * 3, activation="tanh"),
}


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


def fit_once(args):
    """Fit once and print one JSON line: times and memory.

    Parameters
    ----------
    args : argparse.Namespace
        ``which`` ("skval" or "plain"), ``task``, ``epochs``, ``data_X``, ``data_y``,
        ``threads`` (0: torch's default) and ``batch_size`` (0: skval's default).
    """
    import resource

    import torch
    from skorch import NeuralNetClassifier, NeuralNetRegressor
    from skorch.callbacks import Callback

    class EpochCPUTime(Callback):
        """Records the process CPU time (all threads) of each epoch as ``history[:, 'cpu']``."""

        def on_epoch_begin(self, net, **kwargs):
            self.t0_ = time.process_time()

        def on_epoch_end(self, net, **kwargs):
            net.history.record("cpu", time.process_time() - self.t0_)

    import skval
    from skval import LossValClassifier, LossValRegressor
    from skval._mlp import MLP

    if args.threads:
        torch.set_num_threads(args.threads)
    base_rss = rss_mib("VmRSS")  # python + numpy + torch + skorch + POT + skval imported
    X = np.load(args.data_X)
    y = np.load(args.data_y)
    spec = DEFAULTS[args.task]
    t0 = time.perf_counter()
    if args.which == "skval":
        cls = LossValClassifier if args.task == "classification" else LossValRegressor
        kwargs = {} if args.batch_size == 0 else {"batch_size": args.batch_size}
        est = cls(max_epochs=args.epochs, random_state=0,
                  callbacks=[("cpu_time", EpochCPUTime())], **kwargs).fit(X, y)
        history = est.net_.history
        batch_size = est.net_.batch_size
    else:
        torch.manual_seed(0)
        common = dict(
            module=MLP,
            module__n_features=X.shape[1],
            module__hidden_layer_sizes=spec["hidden"],
            module__activation=spec["activation"],
            optimizer=torch.optim.Adam,
            lr=0.01,
            batch_size=args.batch_size,
            max_epochs=args.epochs,
            train_split=None,
            iterator_train__shuffle=True,
            callbacks=[("cpu_time", EpochCPUTime())],
            verbose=0,
        )
        if args.task == "classification":
            net = NeuralNetClassifier(criterion=torch.nn.CrossEntropyLoss,
                                      module__n_outputs=int(y.max()) + 1, **common)
            net.fit(X, y)
        else:
            net = NeuralNetRegressor(module__n_outputs=1, **common)
            net.fit(X, y.reshape(-1, 1))
        history = net.history
        batch_size = net.batch_size
    fit_s = time.perf_counter() - t0
    durs = [float(d) for d in history[:, "dur"]]
    cpus = [float(d) for d in history[:, "cpu"]]
    peak = rss_mib("VmHWM")
    ru_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "fit_s": fit_s, "epoch_durs": durs, "epoch_cpus": cpus, "base_rss_mib": base_rss,
        "peak_rss_mib": max(peak, ru_peak), "threads": torch.get_num_threads(),
        "batch_size": batch_size,
        "skval_file": skval.__file__,
    }))


def _child_args(argv):
    parser = argparse.ArgumentParser(description="One timed fit (internal to speed.py).")
    parser.add_argument("which", choices=("skval", "plain"))
    parser.add_argument("--task", required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--data-X", required=True)
    parser.add_argument("--data-y", required=True)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=0)
    return parser.parse_args(argv)


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
    code = ("import sys, skval; "
            f"est = skval.{estimator}(); "
            f"bs = est.batch_size; "
            f"print(est._batch_size({n}, True) if hasattr(est, '_batch_size') else bs)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=_env_with_src(src), check=True)
    return int(out.stdout.strip().splitlines()[-1])


def run_fit(which, task, n, epochs, paths, threads, timeout, batch_size, src=None):
    """Run one fit in a fresh interpreter and derive the per-epoch figures.

    Parameters
    ----------
    which : {"skval", "plain", "ref"}
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
        0: skval's default (skval variants only).
    src : str or None, default=None
        A source tree to import skval from.

    Returns
    -------
    dict
        The child's JSON plus ``s_per_epoch`` and ``cpu_per_epoch`` (without the first,
        warm-up epoch when at least 3 ran), ``fit30_s`` (the fit time extrapolated to 30
        epochs), ``extrapolated`` and ``epochs``.
    """
    cmd = [sys.executable, __file__, "plain" if which == "plain" else "skval",
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
    durs, cpus = res["epoch_durs"], res["epoch_cpus"]
    # the first epoch carries one-off warm-up costs: leave it out of the mean when it can
    res["s_per_epoch"] = float(np.mean(durs[1:] if len(durs) >= 3 else durs))
    res["cpu_per_epoch"] = float(np.mean(cpus[1:] if len(cpus) >= 3 else cpus))
    res["fit30_s"] = res["fit_s"] + (DEFAULT_EPOCHS - len(durs)) * res["s_per_epoch"]
    res["extrapolated"] = epochs < DEFAULT_EPOCHS
    res["epochs"] = epochs
    return res


if __name__ == "__main__":
    fit_once(_child_args(sys.argv[1:]))
