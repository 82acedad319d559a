"""skval as a classifier: ``LossValClassifier.predict`` against the same network trained plainly.

``LossValClassifier`` trains its network with the rows' LossVal weights in the loss, so rows
with wrong labels count less in the network it predicts with. This asks whether that network is
the better classifier when the training labels are noisy, and whether it costs anything when
they are clean. For every classification task of a task set (``benchmarks/_tasks.py``: the
same splits and preprocessing as ``quality.py``), seed and noise rate, the training labels get
uniform label flips (:func:`skval.evaluation.inject_noise`, ``kind="label"``), and three
classifiers are fitted on them and scored on the clean test labels:

- ``skval``: ``LossValClassifier(random_state=seed)``, defaults (30 epochs);
- ``skorch``: skorch's ``NeuralNetClassifier`` with the same module (``skval._mlp.MLP``, the
  default hidden sizes and activation), the same epochs, batch size (the one skval's
  ``batch_size="auto"`` chose), optimizer (Adam, lr 0.01), shuffling and seed, no validation
  split, cross-entropy on the plain mean over the batch;
- ``sklearn``: scikit-learn's ``MLPClassifier`` of the same shape (Adam, lr 0.01, the same
  epochs and batch size, no early stopping).

Scores: accuracy and balanced accuracy on the test split (never noisy). One torch thread.

Run from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/classifier.py --set dev --seeds 2
    OMP_NUM_THREADS=1 python benchmarks/classifier.py --set confirm --seeds 2
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

if not __package__:  # run as a script: import benchmarks/ as the package it is
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.neural_network import MLPClassifier

from benchmarks._tasks import CLF, SETS, TASKS, split_task
from skval import LossValClassifier
from skval.evaluation import inject_noise

METHODS = ("skval", "skorch", "sklearn")
HIDDEN = (100, 100, 100, 100, 100)  # LossValClassifier's default
LR = 0.01


def fit_skval(X, y, seed):
    """The default ``LossValClassifier``, and the batch size it chose."""
    est = LossValClassifier(random_state=seed).fit(X, y)
    return est, est.net_.batch_size, est.max_epochs


def fit_skorch(X, y, seed, batch_size, epochs):
    """skorch's ``NeuralNetClassifier`` of skval's network, trained plainly."""
    from skorch import NeuralNetClassifier

    from skval._mlp import MLP

    torch.manual_seed(seed)
    net = NeuralNetClassifier(
        MLP, module__n_features=X.shape[1], module__n_outputs=int(y.max()) + 1,
        module__hidden_layer_sizes=HIDDEN, module__activation="relu",
        criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.Adam, lr=LR,
        batch_size=batch_size, max_epochs=epochs, train_split=None,
        iterator_train__shuffle=True, verbose=0)
    return net.fit(X.astype(np.float32), y.astype(np.int64))


def fit_sklearn(X, y, seed, batch_size, epochs):
    """scikit-learn's ``MLPClassifier`` of the same shape, epochs and batch size."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is the epochs asked
        return MLPClassifier(HIDDEN, learning_rate_init=LR, batch_size=batch_size,
                             max_iter=epochs, random_state=seed).fit(X, y)


def run_one(task, seed, rate):
    """One row per method: scores on the clean test labels and seconds."""
    split = split_task(TASKS[task], seed)
    y = split.y
    if rate > 0:
        _, y, _ = inject_noise(split.X, split.y, kind="label", rate=rate, random_state=seed)
    rows = []
    start = time.perf_counter()
    skval, batch_size, epochs = fit_skval(split.X, y, seed)
    fits = {"skval": (skval, time.perf_counter() - start)}
    for name, fit in (("skorch", fit_skorch), ("sklearn", fit_sklearn)):
        start = time.perf_counter()
        fits[name] = (fit(split.X, y, seed, batch_size, epochs), time.perf_counter() - start)
    for name, (model, seconds) in fits.items():
        pred = np.asarray(model.predict(split.X_test.astype(np.float32)))
        rows.append(dict(task=task, seed=seed, rate=rate, method=name,
                         accuracy=accuracy_score(split.y_test, pred),
                         balanced_accuracy=balanced_accuracy_score(split.y_test, pred),
                         seconds=seconds))
    return rows


def markdown(frame, command):
    """Mean accuracy and balanced accuracy per task and rate, one column per method."""
    lines = [f"Command: `{command}`", ""]
    for metric in ("accuracy", "balanced_accuracy"):
        table = frame.pivot_table(index=["rate", "task"], columns="method", values=metric,
                                  aggfunc="mean", sort=False)[list(METHODS)]
        lines += [f"{metric.replace('_', ' ')} on the clean test labels (mean over seeds):", "",
                  "| noise | task | " + " | ".join(METHODS) + " | skval - skorch |",
                  "|---|---|" + "---|" * (len(METHODS) + 1)]
        for (rate, task), row in table.iterrows():
            best = row.max()
            cells = [f"**{v:.3f}**" if v == best else f"{v:.3f}" for v in row]
            lines.append(f"| {rate:.0%} | {task} | " + " | ".join(cells)
                         + f" | {row['skval'] - row['skorch']:+.3f} |")
        means = table.groupby(level="rate").mean()
        for rate, row in means.iterrows():
            lines.append(f"| {rate:.0%} | **mean** | " + " | ".join(f"{v:.3f}" for v in row)
                         + f" | {row['skval'] - row['skorch']:+.3f} |")
        lines.append("")
    seconds = frame.groupby("method")["seconds"].mean()[list(METHODS)]
    lines.append("Seconds per fit (mean): " + ", ".join(f"{m} {s:.1f}" for m, s in seconds.items()))
    return "\n".join(lines) + "\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", choices=list(SETS), default="dev")
    parser.add_argument("--tasks", default=None, help="comma list (default: the set's classification tasks)")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--rates", default="0,0.2", help="comma list of label-noise rates")
    parser.add_argument("--out", default=None, help="write <out>.csv and <out>.md")
    args = parser.parse_args(argv)
    tasks = args.tasks.split(",") if args.tasks else [t for t in SETS[args.set]
                                                      if TASKS[t].kind == CLF]
    unknown = [t for t in tasks if t not in TASKS or TASKS[t].kind != CLF]
    if unknown:
        parser.error(f"not classification tasks: {unknown}")
    return args, tasks, [float(r) for r in args.rates.split(",")]


def main(argv=None):
    args, tasks, rates = parse_args(argv)
    import pandas as pd

    torch.set_num_threads(1)
    rows = []
    for task in tasks:
        for seed in range(args.seeds):
            for rate in rates:
                start = time.perf_counter()
                rows += run_one(task, seed, rate)
                print(f"{task} seed {seed} rate {rate}: {time.perf_counter() - start:.0f} s",
                      file=sys.stderr)
    frame = pd.DataFrame(rows)
    command = "OMP_NUM_THREADS=1 python benchmarks/classifier.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    report = markdown(frame, command.strip())
    print(report)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(f"{args.out}.csv", index=False)
        Path(f"{args.out}.md").write_text(report)


if __name__ == "__main__":
    main()
