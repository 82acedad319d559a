"""Guards of the default cut, compared offline by what dropping their rows does downstream.

Fits skval once per (task, noise, seed) of a task set (the quality benchmark's tasks,
noises and rate) and caches the fitted estimator with the noisy training rows and the
clean test split in ``--cache`` (``/tmp/skval_cut_rules`` by default; never tracked).
Then every rule of ``RULES`` (a boolean mask of the rows to remove, from the fitted
estimator and the rows) is scored: the share of rows it removes, the share of them that
are noisy, and the gain of a HistGradientBoosting and a linear model refitted without
them (``benchmarks/_metrics.py``), per cell (task kind x noise) and its worst task.

    python benchmarks/cut_rules.py [--set dev|confirm] [--seeds N] [--tasks a,b]
        [--rules a,b] [--cache DIR]
"""

from __future__ import annotations

import argparse
import pickle
import sys
import warnings
from pathlib import Path

import numpy as np

if not __package__:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._metrics import REFIT_MODELS, refit_score
from benchmarks._tasks import CLF, SETS, TASKS, split_task
from benchmarks.quality import RATES
from skval import LossValClassifier, LossValRegressor
from skval._guard import guarded_cut
from skval._selection import class_groups, robust_z
from skval.evaluation import inject_noise

CACHE = Path("/tmp/skval_cut_rules")


def _noises(kind):
    return ["label", "feature", "mixed"] + (["permute"] if kind == CLF else [])


def fit_all(names, seeds, cache):
    """Fit and cache every (task, noise, seed) not cached yet."""
    cache.mkdir(parents=True, exist_ok=True)
    for name in names:
        task = TASKS[name]
        for seed in seeds:
            data = None
            for noise in _noises(task.kind):
                path = cache / f"{name}__{noise}__{seed}.pkl"
                if path.exists():
                    continue
                data = data or split_task(task, seed)
                X, y, noisy = inject_noise(data.X, data.y, kind=noise, rate=RATES[0],
                                           task=task.kind, random_state=seed)
                est = (LossValClassifier if task.kind == CLF else LossValRegressor)(
                    random_state=seed).fit(X, y)
                run = {"estimator": est, "X": X, "y": y, "noisy": noisy, "kind": task.kind,
                       "X_test": data.X_test, "y_test": data.y_test,
                       "n_classes": len(np.unique(data.y)) if task.kind == CLF else 0}
                path.write_bytes(pickle.dumps(run))
                print(f"  fitted {path.name}", file=sys.stderr, flush=True)


def load(names, seeds, cache):
    """The cached runs as ``(task, noise, seed, dict)``."""
    for name in names:
        for path in sorted(cache.glob(f"{name}__*.pkl")):
            _, noise, seed = path.stem.split("__")
            if int(seed) in seeds:
                yield name, noise, int(seed), pickle.loads(path.read_bytes())


# ----------------------------------------------------------------------------- rules
# Each rule: the rows it removes, as a boolean mask. "current" is the default cut
# (``get_issues``' ``flagged``: the strict veto, "doubt"); the others start from the wide
# cut (``veto="agree"``, the default until issue 26 and still CleanedEstimator's
# candidates) and take rows back out of it; the figures of each are in BENCHMARKS section 2.

_TIE = 1 - 1e-6  # a probability counts as below a bar only below this share of it


def _issues(run):
    """``get_issues(X, y)`` of the cached fit, computed once per run."""
    if "issues" not in run:
        run["issues"] = run["estimator"].get_issues(run["X"], run["y"])
    return run["issues"]


def _column(run, name):
    return _issues(run)[name].to_numpy()


def _flagged(run):
    return _column(run, "flagged").astype(bool)


def _wide(run):
    """The cut under the wide veto (``"agree"``)."""
    if "wide" not in run:
        est, y = run["estimator"], np.asarray(run["y"])
        run["wide"] = guarded_cut(est, run["X"], y, est.data_values_,
                                  class_groups(y, run["kind"] == CLF), veto="agree")
    return run["wide"]


def _residual(run):
    return _column(run, "target") - _column(run, "prediction")


def _disagrees(run):
    """Classification: the network's class is not the given label; regression: the absolute
    residual lies more than 2 robust standard deviations above its median."""
    if run["kind"] == CLF:
        return _column(run, "suggested_label") != _column(run, "given_label")
    return robust_z(np.abs(_residual(run))) > 2.0


def _residual_outlier(run, z):
    """Regression: the residual lies more than ``z`` robust standard deviations from the
    median residual."""
    return np.abs(robust_z(_residual(run))) > z


def _central_target(run, share=0.9):
    """Regression: the target lies in the central ``share`` of the targets."""
    y = _column(run, "target")
    low, high = np.quantile(y, [(1 - share) / 2, (1 + share) / 2])
    return (y >= low) & (y <= high)


def _below_blind_guess(run):
    """Classification: the given label gets less probability than its share of the rows;
    regression: the prediction is further from the target than the median target is."""
    if run["kind"] == CLF:
        given = _column(run, "given_label")
        labels, inverse, counts = np.unique(given, return_inverse=True, return_counts=True)
        return _column(run, "given_proba") < (counts / len(given))[inverse] * _TIE
    y = _column(run, "target")
    return np.abs(_residual(run)) > np.abs(y - np.median(y))


def _below_class_mean(run):
    """Classification: the given label gets less probability than its class's mean."""
    proba = _column(run, "given_proba")
    _, inverse = np.unique(_column(run, "given_label"), return_inverse=True)
    mean = np.bincount(inverse, weights=proba) / np.bincount(inverse)
    return proba < mean[inverse] * _TIE


def _other_class_confident(run):
    """Classification: some other class gets at least its own mean probability over the rows
    labelled with it (confident learning's off-diagonal condition)."""
    est = run["estimator"]
    proba = est.predict_proba(run["X"])
    labels = np.searchsorted(est.classes_, np.asarray(run["y"]))
    counts = np.bincount(labels, minlength=proba.shape[1])
    own = proba[np.arange(len(labels)), labels]
    mean = np.bincount(labels, weights=own, minlength=proba.shape[1]) / np.maximum(counts, 1)
    confident = proba >= mean
    confident[np.arange(len(labels)), labels] = False
    return confident.any(axis=1)


def _doubted_target(run, z=3.0):
    """Regression: a residual outlier with a target in the central 90 %."""
    return _residual_outlier(run, z) & _central_target(run)


RULES = {
    # the default cut as it stands (the strict veto)
    "current": _flagged,
    # the wide veto alone (the default cut before issue 26)
    "agree": _wide,
    # only rows the network disagrees with (cleanlab's rule), whatever the evidence's side
    "all_need_disagreement": lambda run: _wide(run) & _disagrees(run),
    # rows flagged for their features are never removed
    "no_feature_source": lambda run: _wide(run) & (_column(run, "source") != "feature"),
    # only rows whose label (target) the network finds less likely than a blind guess
    "prior_all": lambda run: _wide(run) & _below_blind_guess(run),
    # classification: below the class mean; regression: a doubted target
    "class_mean": lambda run: _wide(run) & (
        _below_class_mean(run) if run["kind"] == CLF else _doubted_target(run)),
    # prior_all; regression also needs a central target and a residual beyond 2 robust SD
    "resid2": lambda run: _wide(run) & _below_blind_guess(run) & (
        True if run["kind"] == CLF else _doubted_target(run, z=2.0)),
    # the default cut, and some other class as likely as usual for its own rows
    "other_class": lambda run: _flagged(run) & (
        _other_class_confident(run) if run["kind"] == CLF else True),
    # regression: a residual beyond 3 robust SD, whatever the target
    "r3_only": lambda run: _wide(run) & (
        True if run["kind"] == CLF else _residual_outlier(run, 3.0)),
}


# ----------------------------------------------------------------------------- scoring

def score(names, seeds, cache, rules):
    """Rows ``(task, kind, noise, seed, rule, share, precision, hgb gain, linear gain)``."""
    out = []
    for name, noise, seed, run in load(names, seeds, cache):
        refits = {}

        def scores(keep):
            key = keep.tobytes()
            if key not in refits:
                refits[key] = {m: refit_score(m, run["X"], run["y"], keep, run["X_test"],
                                              run["y_test"], run["kind"], run["n_classes"],
                                              seed) for m in REFIT_MODELS}
            return refits[key]

        base = scores(np.ones(len(run["y"]), bool))
        for r in rules:
            removed = RULES[r](run)
            after = scores(~removed)
            n = int(removed.sum())
            out.append((name, run["kind"], noise, seed, r, n / len(removed),
                        (removed & run["noisy"]).sum() / n if n else np.nan,
                        *(after[m] - base[m] for m in REFIT_MODELS)))
        print(f"  scored {name} {noise} {seed}", file=sys.stderr, flush=True)
    return out


def report(rows):
    """Per rule and cell: removed share, precision, mean gains and the worst task's."""
    import pandas as pd

    d = pd.DataFrame(rows, columns=["task", "kind", "noise", "seed", "rule", "removed",
                                    "noisy", "hgb", "linear"])
    d["cell"] = np.where(d.kind == CLF, "clf ", "reg ") + d.noise
    cell = d.groupby(["rule", "cell"])[["removed", "noisy", "hgb", "linear"]].mean()
    task = d.groupby(["rule", "cell", "task"])[["hgb", "linear"]].mean()
    worst = task.groupby(["rule", "cell"]).min().add_prefix("worst_")
    table = cell.join(worst).round(4)
    print(table.to_string())
    fails = task[(task < -0.005).any(axis=1)].round(4)
    print("\ntasks below -0.005:\n" + fails.to_string())
    return d


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=list(SETS), default="dev")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tasks", default=None)
    parser.add_argument("--rules", default=",".join(RULES))
    parser.add_argument("--cache", type=Path, default=CACHE)
    args = parser.parse_args(argv)
    names = args.tasks.split(",") if args.tasks else list(SETS[args.set])
    seeds = range(args.seeds)
    warnings.filterwarnings("ignore")
    import torch
    torch.set_num_threads(1)
    fit_all(names, seeds, args.cache)
    return report(score(names, seeds, args.cache, args.rules.split(",")))


if __name__ == "__main__":
    main()
