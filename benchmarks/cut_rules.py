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

def rule_current(run):
    """The guarded default cut as it stands (``get_issues()["flagged"]``)."""
    est = run["estimator"]
    return est.get_issues(run["X"], run["y"])["flagged"].to_numpy(dtype=bool)


RULES = {"current": rule_current}


def rule(fn):
    """Register ``fn`` as a rule under its name less ``rule_``."""
    RULES[fn.__name__.removeprefix("rule_")] = fn
    return fn


def _issues(run):
    if "issues" not in run:
        run["issues"] = run["estimator"].get_issues(run["X"], run["y"])
    return run["issues"]


def _disagrees(run, z=2.0):
    """Classification: the network's class is not the given label; regression: the
    absolute residual lies more than ``z`` robust standard deviations above its median."""
    issues = _issues(run)
    if run["kind"] == CLF:
        return (issues["suggested_label"] != issues["given_label"]).to_numpy()
    residual = np.abs(issues["target"].to_numpy() - issues["prediction"].to_numpy())
    med = np.median(residual)
    mad = 1.4826 * np.median(np.abs(residual - med)) or 1.0
    return (residual - med) / mad > z


@rule
def rule_feature_needs_disagreement(run):
    """Rows flagged for their features only where the network disagrees with the label."""
    issues = _issues(run)
    flagged = issues["flagged"].to_numpy(dtype=bool)
    feature = (issues["source"] == "feature").to_numpy()
    return flagged & ~(feature & ~_disagrees(run))


@rule
def rule_all_need_disagreement(run):
    """Only flagged rows the network disagrees with (any source)."""
    return _issues(run)["flagged"].to_numpy(dtype=bool) & _disagrees(run)


@rule
def rule_no_feature_source(run):
    """Rows flagged for their features are never removed."""
    issues = _issues(run)
    return issues["flagged"].to_numpy(dtype=bool) & (issues["source"] != "feature").to_numpy()


def _below_blind_guess(run):
    """Classification: the network gives the given label less probability than the label's
    share of the rows; regression: the prediction is further from the target than the
    median target is."""
    issues = _issues(run)
    if run["kind"] == CLF:
        given = issues["given_label"].to_numpy()
        labels, counts = np.unique(given, return_counts=True)
        prior = (counts / counts.sum())[np.searchsorted(labels, given)]
        return issues["given_proba"].to_numpy() < prior * (1 - 1e-6)
    y = issues["target"].to_numpy()
    pred = issues["prediction"].to_numpy()
    return np.abs(y - pred) > np.abs(y - np.median(y))


@rule
def rule_prior_all(run):
    """Only flagged rows whose label the network finds less likely than a blind guess."""
    return _issues(run)["flagged"].to_numpy(dtype=bool) & _below_blind_guess(run)


@rule
def rule_prior_feature(run):
    """Feature-source rows only where the network finds the label less likely than a
    blind guess; label-source rows as today."""
    issues = _issues(run)
    feature = (issues["source"] == "feature").to_numpy()
    return issues["flagged"].to_numpy(dtype=bool) & ~(feature & ~_below_blind_guess(run))


def _central_target(run, share=0.9):
    """Regression rows whose target lies in the central ``share`` of the targets."""
    y = _issues(run)["target"].to_numpy()
    low, high = np.quantile(y, [(1 - share) / 2, (1 + share) / 2])
    return (y >= low) & (y <= high)


@rule
def rule_strict(run):
    """prior_all; regression also keeps the tails of the target and feature-source rows."""
    removed = rule_prior_all(run)
    if run["kind"] == CLF:
        return removed
    return removed & _central_target(run) & (_issues(run)["source"] != "feature").to_numpy()


@rule
def rule_strict_tails(run):
    """prior_all; regression also keeps the tails of the target."""
    removed = rule_prior_all(run)
    return removed if run["kind"] == CLF else removed & _central_target(run)


def _residual_outlier(run, z):
    """Regression rows whose residual lies more than ``z`` robust standard deviations from
    the median residual."""
    issues = _issues(run)
    r = issues["target"].to_numpy() - issues["prediction"].to_numpy()
    med = np.median(r)
    mad = 1.4826 * np.median(np.abs(r - med)) or 1.0
    return np.abs(r - med) / mad > z


def _strict_residual(z):
    def fn(run):
        removed = rule_strict_tails(run)
        return removed if run["kind"] == CLF else removed & _residual_outlier(run, z)
    return fn


RULES["resid2"] = _strict_residual(2.0)
RULES["resid3"] = _strict_residual(3.0)


def _flagged(run):
    return _issues(run)["flagged"].to_numpy(dtype=bool)


def _below_class_mean(run):
    issues = _issues(run)
    given = issues["given_label"].to_numpy()
    proba = issues["given_proba"].to_numpy()
    labels, inverse = np.unique(given, return_inverse=True)
    mean = np.bincount(inverse, weights=proba) / np.bincount(inverse)
    return proba < mean[inverse] * (1 - 1e-6)


def rule_class_mean(run):
    """Classification: flagged rows whose given-label probability is below its class's mean;
    regression: r3_tails."""
    if run["kind"] == CLF:
        return _flagged(run) & _below_class_mean(run)
    return _flagged(run) & _residual_outlier(run, 3.0) & _central_target(run)


RULES["class_mean"] = rule_class_mean
RULES["class_mean_prior"] = lambda run: rule_class_mean(run) & (
    _below_blind_guess(run) if run["kind"] == CLF else True)
# the guard tried in issue 26 (BENCHMARKS section 2): the network must doubt the label or target
RULES["doubt"] = lambda run: _flagged(run) & (
    _below_class_mean(run) & _below_blind_guess(run) if run["kind"] == CLF
    else _residual_outlier(run, 3.0) & _central_target(run))
RULES["r3_label"] = lambda run: (_flagged(run) & _residual_outlier(run, 3.0) & _central_target(run)
                                 & (_issues(run)["source"] == "label").to_numpy())
RULES["r3_only"] = lambda run: _flagged(run) & _residual_outlier(run, 3.0)
RULES["r3_tails"] = lambda run: _flagged(run) & _residual_outlier(run, 3.0) & _central_target(run)


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
