"""The floor of an exact-OT step: the raw loop's step plus the network simplex alone.

Issue 23 asks a skval epoch for at most 2.0x the raw torch loop at 1k-3k rows and 1.5x
from 20k rows up. Whatever the glue around it, a LossVal step does the raw step's work
and solves its batch's OT problems; this measures the second part. For each size, in one
process and one torch thread (``make_classification``, 20 features, the batch size skval's
default gives): the raw loop of ``speed.py`` (``_timing.fit_raw``), then a default
``LossValClassifier`` whose network-simplex calls (``skval._ot._emd``) are timed. Prints
per step: the raw loop, the simplex, the floor ``(raw + simplex) / raw`` and skval's own
step (its epoch time over its steps, canary rows included).

    OMP_NUM_THREADS=1 python benchmarks/ot_floor.py --sizes 3000,20000,100000 --epochs 3
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

if not __package__:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks._timing import fit_raw, mean_after_warmup


def timed_simplex(ot_module):
    """Wrap ``ot_module._emd`` so that it adds its seconds and calls to the returned list."""
    clock = [0.0, 0]
    solve = ot_module._emd

    def timed(a, b, M):
        start = time.perf_counter()
        result = solve(a, b, M)
        clock[0] += time.perf_counter() - start
        clock[1] += 1
        return result
    ot_module._emd = timed
    return clock, solve


def floor_row(n, epochs):
    """One size's figures: raw, simplex and skval milliseconds per step, and the floor."""
    import torch
    from sklearn.datasets import make_classification

    from skval import LossValClassifier, _ot

    torch.set_num_threads(1)
    X, y = make_classification(n, 20, random_state=0)
    X = X.astype(np.float32)
    clock, solve = timed_simplex(_ot)
    try:
        est = LossValClassifier(max_epochs=epochs, random_state=0).fit(X, y)
    finally:
        _ot._emd = solve
    batch = est.net_.batch_size
    skval_steps = epochs * int(np.ceil(len(est.net_.rows_.evidence) / batch))
    raw = fit_raw(X, y.astype(np.int64), "classification", epochs, batch)
    raw_ms = mean_after_warmup(raw["epoch_durs"]) / raw["steps_per_epoch"] * 1e3
    skval_ms = mean_after_warmup(est.net_.history[:, "dur"]) * epochs / skval_steps * 1e3
    simplex_ms = clock[0] / skval_steps * 1e3
    return {"n": n, "batch": batch, "raw_ms": raw_ms, "simplex_ms": simplex_ms,
            "simplex_calls": clock[1] / skval_steps, "floor": (raw_ms + simplex_ms) / raw_ms,
            "skval_ms": skval_ms, "skval_ratio": skval_ms / raw_ms}


def page(rows, command):
    """The Markdown table of ``floor_row`` results."""
    lines = [f"Command: `{command}`", "",
             "| n | batch | raw ms/step | simplex ms/step (calls) | floor (raw + simplex) / raw "
             "| skval ms/step | skval / raw |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['n']:,} | {r['batch']} | {r['raw_ms']:.3f} | {r['simplex_ms']:.3f} "
                     f"({r['simplex_calls']:.1f}) | {r['floor']:.2f}x | {r['skval_ms']:.3f} "
                     f"| {r['skval_ratio']:.2f}x |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3000,20000,100000")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    rows = [floor_row(int(n), args.epochs) for n in args.sizes.split(",")]
    command = "python benchmarks/ot_floor.py " + " ".join(argv if argv is not None
                                                          else sys.argv[1:])
    text = page(rows, command.strip())
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    return rows


if __name__ == "__main__":
    main()
