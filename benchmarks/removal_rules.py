"""How ``CleanedEstimator`` chooses its amount, compared offline by the outer test score.

For every task, seed, outer fold and base model of ``benchmarks/cleaning.py``, fits the default
``CleanedEstimator`` once (its inner-CV scores per candidate amount), then fits the base model
on the outer training fold less each candidate's rows and scores it on the outer test fold
(clean labels). Every rule of ``RULES`` (which candidate to take from the inner scores) is then
scored without refitting: its mean outer score per task and model, beside removing nothing
(plain) and the best candidate in hindsight (``oracle``). The fits are cached in ``--cache``
(``/tmp/skval_removal_rules``; never tracked).

    OMP_NUM_THREADS=1 python benchmarks/removal_rules.py [--tasks a,b] [--seeds N] [--rules a,b]
        [--cache DIR] [--fractions 0,0.5,...] [--grid 0,0.5,...] [--doubted-first] [--repeats N]
        [--max-share K]

``--max-share K`` scores the rules on the candidates that remove at most ``K`` times the rows
the valuer's canaries estimate corrupted (``noise_shares_`` summed; all candidates where the
valuer has no canaries).
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

from sklearn.base import clone
from sklearn.utils import _safe_indexing

from benchmarks.cleaning import (TASKS, MemoClassifier, MemoRegressor, base_models, folds,
                                 is_regression, score, task_data)
from skval import CleanedEstimator, LossValCleaner
from skval._removal import (MIN_GAIN_SE, candidate_counts, choose_count, inner_splits,
                            score_counts)
from skval._veto import spared_rows

CACHE = Path("/tmp/skval_removal_rules")


def candidates(task, base, X, y, X_test, y_test, fractions=None, doubted_first=False, repeats=1):
    """A CleanedEstimator's candidates (``fractions``; None: the default's): counts, inner and
    outer scores. ``doubted_first``: the rows the strict veto would remove lead the order;
    ``repeats``: inner scores of that many shuffles of the inner folds, side by side."""
    valuer = (MemoRegressor if is_regression(task) else MemoClassifier)(random_state=0)
    options = {} if fractions is None else {"removal_fractions": fractions}
    model = CleanedEstimator(clone(base), valuer=valuer, random_state=0, **options).fit(X, y)
    counts = np.asarray(model.removal_scores_["n_removed"])
    cleaner = LossValCleaner(valuer, veto="agree").fit(X, y)  # the same (memoised) fit and cut
    n_cut = len(cleaner.removal_order())
    past_cut = int(np.ceil((max(model.removal_fractions) - 1) * n_cut))
    order = cleaner.removal_order(X, y, past_cut=past_cut)
    if doubted_first:
        doubted = ~spared_rows(cleaner.estimator_, X, y, "doubt")[order]
        order = np.concatenate([order[doubted], order[~doubted]])
    # every fold of every candidate (the library stops a candidate that cannot win most folds)
    inner = np.full((1, 0), np.nan)  # an empty cut: nothing to choose
    if len(counts) > 1:
        splits = [inner_splits(base, X, y, model.cv, model.random_state + r)
                  for r in range(repeats)]
        inner = np.hstack([score_counts(base, X, y, order, counts, fold_splits, None,
                                        stop_early=False) for fold_splits in splits])
    outer = []
    for count in counts:
        keep = np.ones(len(y), bool)
        keep[order[:count]] = False
        kept = np.flatnonzero(keep)
        outer.append(score(task, clone(base).fit(_safe_indexing(X, kept), y[kept]), X_test,
                           y_test))
    shares = getattr(model.valuer_, "noise_shares_", None)
    return {"counts": counts, "inner": inner, "outer": np.array(outer), "chosen": model.n_removed_,
            "n_cut": n_cut, "n_available": len(order), "n_rows": len(y),
            "noise_share": None if shares is None else float(np.sum(shares))}


def fit_all(names, seeds, cache, fractions=None, doubted_first=False, repeats=1, n_folds=5):
    """Cache one file per (task, seed) with every fold and model."""
    cache.mkdir(parents=True, exist_ok=True)
    for name in names:
        task = TASKS[name]
        for seed in seeds:
            path = cache / f"{name}__{seed}.pkl"
            if path.exists():
                continue
            X, y_train, y_true, _ = task_data(task, seed)
            runs = []
            for fold, (train, test) in enumerate(folds(task, y_train, n_folds, seed)):
                X_train, X_test = _safe_indexing(X, train), _safe_indexing(X, test)
                for model_name, base in base_models(task, X).items():
                    run = candidates(task, base, X_train, y_train[train], X_test, y_true[test],
                                     fractions, doubted_first, repeats)
                    runs.append({"task": name, "seed": seed, "fold": fold, "model": model_name,
                                 **run})
            path.write_bytes(pickle.dumps(runs))
            print(f"  fitted {path.name}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- rules
# Each rule: the index of the chosen candidate from the inner scores (candidates x folds,
# the smallest count first; a single column-less row when the cut was empty). "majority" is
# the library's for a classifier (``skval._removal.choose_count``), "majority_se" for a
# regressor (its candidates must also gain a standard error, since the eighth session); the
# cache's candidates were fitted with the rule of the code that built it, which does not
# change them (only which one is taken).

def _first_best(score):
    """Index of the best score, the smallest count on a tie."""
    return int(np.flatnonzero(score >= score.max())[0])


def _best_mean(inner):
    """The best mean (the library's rule until the majority)."""
    return _first_best(inner.mean(axis=1))


def _best_mean_among(inner, eligible):
    """Best mean among the ``eligible`` candidates and removing nothing (always eligible)."""
    eligible = eligible.copy()
    eligible[0] = True
    return _first_best(np.where(eligible, inner.mean(axis=1), -np.inf))


def _sign(inner):
    """Best mean among the candidates that beat removing nothing in more inner folds than they
    lose (ties aside)."""
    return _best_mean_among(inner, (inner > inner[0]).sum(axis=1) > (inner < inner[0]).sum(axis=1))


def _median(inner):
    return _first_best(np.median(inner, axis=1))


def _smooth(inner):
    """Best mean after averaging each candidate's mean with its neighbours' (1/4, 1/2, 1/4)."""
    means = inner.mean(axis=1)
    padded = np.r_[means[0], means, means[-1]]
    return _first_best(0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:])


def _rank(inner):
    """Best mean rank across the inner folds (each fold ranks the candidates)."""
    return _first_best(np.argsort(np.argsort(inner, axis=0, kind="stable"), axis=0).mean(axis=1))


def _majority_first_split(inner):
    """The library's rule on the first shuffle's 5 folds only (of a ``--repeats`` cache)."""
    return choose_count(inner[:, :5])


def _winning_in(n_folds):
    """Best mean among the candidates that beat removing nothing in at least ``n_folds``."""
    def rule(inner):
        return _best_mean_among(inner, (inner > inner[0]).sum(axis=1) >= n_folds)
    return rule


def _majority_se(inner):
    """The majority rule, and a mean gain of at least ``MIN_GAIN_SE`` standard errors."""
    return choose_count(inner, MIN_GAIN_SE)


RULES = {"mean": _best_mean, "majority": choose_count, "majority_se": _majority_se,
         "sign": _sign, "median": _median,
         "smooth": _smooth, "rank": _rank, "majority_first_split": _majority_first_split,
         "four_folds": _winning_in(4), "all_folds": _winning_in(5)}


def on_grid(run, grid):
    """The run restricted to the candidates of the shares ``grid`` (None: all of them)."""
    if grid is None or run["inner"].size == 0:
        return run
    wanted = candidate_counts(run["n_cut"], grid, run["n_available"])
    return _restricted(run, np.isin(run["counts"], wanted))


def within_share(run, max_share):
    """The run restricted to the candidates removing at most ``max_share`` times the rows its
    valuer's canaries estimate corrupted (None, or a valuer without canaries: all)."""
    if max_share is None or run.get("noise_share") is None or run["inner"].size == 0:
        return run
    return _restricted(run, run["counts"] <= max_share * run["noise_share"] * run["n_rows"])


def _restricted(run, kept):
    """The run with only the candidates ``kept`` (a boolean mask over them)."""
    rows = np.flatnonzero(kept)
    return {**run, "counts": run["counts"][rows], "inner": run["inner"][rows],
            "outer": run["outer"][rows]}


def report(names, seeds, cache, rules, grid=None, max_share=None):
    import pandas as pd

    rows = []
    for name in names:
        for seed in seeds:
            for run in pickle.loads((cache / f"{name}__{seed}.pkl").read_bytes()):
                run = within_share(on_grid(run, grid), max_share)
                if run["inner"].size == 0 or len(run["counts"]) == 1:
                    picks = {r: 0 for r in rules}
                else:
                    picks = {r: RULES[r](run["inner"]) for r in rules}
                row = {"task": name, "model": run["model"], "plain": run["outer"][0],
                       "oracle": run["outer"].max()}
                row.update({r: run["outer"][i] for r, i in picks.items()})
                rows.append(row)
    table = pd.DataFrame(rows).groupby(["task", "model"], sort=False).mean().round(4)
    print(table.to_string())
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--rules", default=",".join(RULES))
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--fractions", default=None,
                        help="the shares the cached fits try (default: the library's)")
    parser.add_argument("--doubted-first", action="store_true",
                        help="the cached fits order the candidates' rows with the rows the "
                             "strict veto would remove first")
    parser.add_argument("--repeats", type=int, default=1,
                        help="the cached fits score this many shuffles of the inner folds")
    parser.add_argument("--grid", default=None,
                        help="score the rules on these shares only (a subset of the cache's)")
    parser.add_argument("--max-share", type=float, default=None,
                        help="score the rules on the candidates removing at most this many "
                             "times the rows the canaries estimate corrupted")
    args = parser.parse_args(argv)
    names, seeds = args.tasks.split(","), range(args.seeds)
    fractions, grid = (None if v is None else tuple(map(float, v.split(",")))
                       for v in (args.fractions, args.grid))
    warnings.filterwarnings("ignore")
    import torch
    torch.set_num_threads(1)
    fit_all(names, seeds, args.cache, fractions, args.doubted_first, args.repeats)
    return report(names, seeds, args.cache, args.rules.split(","), grid, args.max_share)


if __name__ == "__main__":
    main()
