"""The canaries' noise shares with and without the clean rows' reach: where the value's gap lies.

A classifier's value (``skval._canary.calibrated_values``) weighs each side's odds by the
share of rows estimated corrupted that way (``noise_shares``): on each side, the rows
beyond the median of that side's canaries, solved against what each kind of canary
reaches there. The solve counts every row beyond a threshold as corrupted, so a clean row
whose evidence reaches it (a genuine outlier of the features, a hard label) inflates a
share. This measures what that costs: per (task, noise, seed) one default
``LossValClassifier`` fit, then the value's AUROC as fitted, and with the shares solved
again knowing the clean rows' own reach ``r0`` (an oracle: the noisy mask tells which rows
are clean), ``observed - r0 = R' s`` with ``R' = R - r0``; beside both sides alone.

    OMP_NUM_THREADS=1 python benchmarks/share_reach.py --set dev --seeds 2 \
        --out benchmarks/results/share_reach_dev.csv
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import nnls

if not __package__:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._tasks import CLF, SETS, TASKS, split_task
from skval import LossValClassifier
from skval._canary import LABEL, FEATURE, calibrated_values, noise_shares, plausible_shares
from skval.evaluation import auroc, inject_noise

NOISES = ("label", "feature", "mixed", "permute")


def beyond_rates(evidence, n_rows, count, clean):
    """``R`` (2 x 2: side x canary kind), the rows' and the clean rows' rates beyond each
    side's threshold (the median of its own canaries)."""
    rows = evidence[:n_rows]
    kinds = (evidence[n_rows:n_rows + count], evidence[n_rows + count:n_rows + 2 * count])
    sides = (LABEL, FEATURE)
    thresholds = [np.median(kinds[side][:, side]) for side in sides]
    reached = np.array([[np.mean(kind[:, side] > thresholds[side]) for kind in kinds]
                        for side in sides])
    observed = np.array([np.mean(rows[:, side] > thresholds[side]) for side in sides])
    clean_reach = np.array([np.mean(rows[clean, side] > thresholds[side]) for side in sides])
    return reached, observed, clean_reach


def shares_knowing_clean_reach(evidence, n_rows, count, clean):
    """``noise_shares`` solved with the clean rows' reach subtracted (the oracle)."""
    reached, observed, clean_reach = beyond_rates(evidence, n_rows, count, clean)
    shares, _ = nnls(reached - clean_reach[:, None], observed - clean_reach)
    return plausible_shares(np.clip(shares, 0.0, 1.0)), clean_reach


def fitted_evidence(name, noise, seed, cache=None):
    """One default fit's evidence (rows, then canaries), the noisy mask, the labels, the
    canaries of each kind and the fitted value; from ``cache`` (a folder) if there."""
    path = None if cache is None else Path(cache) / f"{name}_{noise}_{seed}.npz"
    if path is not None and path.exists():
        saved = np.load(path)
        return tuple(saved[key] for key in ("evidence", "noisy", "y", "count", "value"))
    data = split_task(TASKS[name], seed)
    if noise == "none":  # the clean run
        X, y, noisy = data.X, data.y, np.zeros(len(data.y), bool)
    else:
        X, y, noisy = inject_noise(data.X, data.y, kind=noise, rate=0.2, random_state=seed)
    est = LossValClassifier(random_state=seed).fit(X, y)
    evidence = est.net_.rows_.evidence.cpu().numpy().astype(np.float64)
    count = (len(evidence) - len(y)) // 2
    result = (evidence, noisy, np.asarray(y), np.int64(count), est.data_values_)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **dict(zip(("evidence", "noisy", "y", "count", "value"), result)))
    return result


def run_one(name, noise, seed, cache=None):
    """One fit: the shares and AUROCs of the value as fitted and with the oracle shares."""
    evidence, noisy, y, count, value = fitted_evidence(name, noise, seed, cache)
    n_rows, count = len(y), int(count)
    if count == 0:  # a table too small for canaries
        return None
    fitted = plausible_shares(noise_shares(evidence, n_rows, count))
    oracle, clean_reach = shares_knowing_clean_reach(evidence, n_rows, count, ~noisy)
    return dict(task=name, noise=noise, seed=seed,
                value=auroc(value, noisy),
                value_oracle=auroc(calibrated_values(evidence, n_rows, count, oracle), noisy),
                label_side=auroc(-evidence[:n_rows, LABEL], noisy),
                feature_side=auroc(-evidence[:n_rows, FEATURE], noisy),
                label_share=fitted[LABEL], feature_share=fitted[FEATURE],
                label_share_oracle=oracle[LABEL], feature_share_oracle=oracle[FEATURE],
                label_clean_reach=clean_reach[LABEL], feature_clean_reach=clean_reach[FEATURE])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="dev", choices=sorted(SETS))
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--tasks", default=None, help="comma-separated (default: the set's)")
    parser.add_argument("--out", default=None, help="CSV of the rows (never overwritten)")
    parser.add_argument("--cache", default=None,
                        help="folder for each fit's evidence (reused when there)")
    args = parser.parse_args(argv)
    names = args.tasks.split(",") if args.tasks else [
        name for name in SETS[args.set] if TASKS[name].kind == CLF]
    if args.out and Path(args.out).exists():
        parser.error(f"--out {args.out} exists; choose another path.")
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the canaries' blend-in warning
        for name in names:
            for noise in NOISES:
                for seed in range(args.seeds):
                    row = run_one(name, noise, seed, args.cache)
                    if row is not None:
                        rows.append(row)
                        print(name, noise, seed, f"value {row['value']:.4f} -> "
                              f"{row['value_oracle']:.4f}", flush=True)
    frame = pd.DataFrame(rows)
    if args.out:
        frame.to_csv(args.out, index=False)
    means = frame.groupby("noise")[["value", "value_oracle", "label_side", "feature_side"]]
    print(means.mean().round(4).loc[list(NOISES)].to_markdown())


if __name__ == "__main__":
    main()
