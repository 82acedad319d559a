"""Are two source trees' values the same? The check for a refactor of skval's core.

Fits a fixed set of small estimators (4,000 rows, batches split in OT blocks, both
weight updates, class-balanced, ``n_workers=2``, a reference set with labels, Sinkhorn,
batch 2048) with skval imported from each tree, in a fresh process per tree, one torch
thread, and prints per fit whether ``data_values_``, ``evidence_`` (and the predictions)
are bit-identical, or the largest difference. ``--perturb`` adds a third run of the first tree with the learning rate
moved by one part in a million: the spread that float rounding alone can cause, to
read a difference against.

    python benchmarks/compare_values.py BEFORE_SRC [AFTER_SRC] [--perturb]

``AFTER_SRC`` defaults to this checkout. Export a tree with, e.g.,
``git archive HEAD~1 | tar -x -C /tmp/before``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def fit_all(lr_factor):
    """Values and predictions of each fit, keyed by name."""
    import torch
    from sklearn.datasets import make_classification, make_regression

    from skval import LossValClassifier, LossValRegressor

    torch.set_num_threads(1)
    lr = 0.01 * lr_factor
    Xc, yc = make_classification(4000, 12, n_informative=6, n_classes=3, random_state=0)
    Xr, yr = make_regression(4000, 12, noise=5, random_state=0)
    out = {}
    for update in ["batch", "row"]:
        clf = LossValClassifier(max_epochs=3, lr=lr, weight_update=update, random_state=0)
        clf.fit(Xc, yc)
        out[f"clf_{update}"], out[f"clf_{update}_proba"] = clf.data_values_, clf.predict_proba(Xc[:50])
        out[f"clf_{update}_evidence"] = clf.evidence_
        reg = LossValRegressor(max_epochs=3, lr=lr, weight_update=update, random_state=0)
        reg.fit(Xr, yr)
        out[f"reg_{update}"], out[f"reg_{update}_pred"] = reg.data_values_, reg.predict(Xr[:50])
        out[f"reg_{update}_evidence"] = reg.evidence_
        for extra, kwargs in [("balanced", dict(class_balanced=True)), ("2workers", dict(n_workers=2))]:
            est = LossValClassifier(max_epochs=3, lr=lr, weight_update=update, random_state=0,
                                    **kwargs).fit(Xc, yc)
            out[f"clf_{update}_{extra}"] = est.data_values_
            out[f"clf_{update}_{extra}_evidence"] = est.evidence_
    out["clf_batch32"] = LossValClassifier(max_epochs=2, lr=lr, batch_size=32, random_state=1).fit(
        Xc[:1500], yc[:1500]).data_values_
    out["clf_X_val_labels"] = LossValClassifier(
        max_epochs=2, lr=lr, batch_size=200, label_weight=1.0, random_state=1).fit(
        Xc[:2000], yc[:2000], X_val=Xc[3000:3400], y_val=yc[3000:3400]).data_values_
    out["clf_sinkhorn"] = LossValClassifier(max_epochs=2, lr=lr, ot_method="sinkhorn",
                                            random_state=2).fit(Xc[:800], yc[:800]).data_values_
    out["reg_batch2048"] = LossValRegressor(max_epochs=2, lr=lr, batch_size=2048,
                                            random_state=3).fit(Xr, yr).data_values_
    return out


def run_tree(src, npz, lr_factor=1.0):
    """Run ``fit_all`` with skval imported from ``src``; results saved to ``npz``.

    The fits run from a script file with a main guard: the ``n_workers=2`` fits start
    worker processes, which must not re-run the fits.
    """
    script = Path(tempfile.mkdtemp()) / "fit_all.py"
    script.write_text(
        f"import sys, runpy\nsys.path.insert(0, {str(src)!r})\nimport numpy as np\n"
        f"if __name__ == '__main__':\n"
        f"    fit_all = runpy.run_path({str(Path(__file__).resolve())!r})['fit_all']\n"
        f"    np.savez({str(npz)!r}, **fit_all({lr_factor!r}))\n")
    subprocess.run([sys.executable, str(script)], check=True, cwd=tempfile.gettempdir())
    return dict(np.load(npz))


def describe(a, b):
    """``identical``, or the largest absolute difference."""
    return "identical" if np.array_equal(a, b) else f"max |diff| {np.abs(a - b).max():.3g}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path, help="source tree to compare against")
    parser.add_argument("after", type=Path, nargs="?", default=ROOT)
    parser.add_argument("--perturb", action="store_true",
                        help="also show the spread of a 1e-6 relative change of lr")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        before = run_tree(args.before, Path(tmp) / "before.npz")
        after = run_tree(args.after, Path(tmp) / "after.npz")
        nudged = run_tree(args.before, Path(tmp) / "nudged.npz", 1 + 1e-6) if args.perturb else None
    print(f"{'fit':28s} {'after vs before':24s}" + ("  lr x (1 + 1e-6) vs before" if nudged else ""))
    for name in before:
        line = f"{name:28s} {describe(after[name], before[name]):24s}"
        print(line + (f"  {describe(nudged[name], before[name])}" if nudged else ""))


if __name__ == "__main__":
    main()
