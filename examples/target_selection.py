"""Selecting training data for a target population
===============================================

A small reference set from the population the model is for values a large pool from mixed
sources. The pool mixes two sources of handwritten digits (scikit-learn's ``digits``): two thirds come
from the target population, one third from a worse source whose scans are noisy and whose labels
are wrong for 40 % of its rows. A reference set of 100 rows from the target population values
the pool (``fit(X_pool, y_pool, X_val=X_ref, y_val=y_ref)``); a model is then trained on the
highest-valued fraction of each class of the pool, on random fractions of the same size, and on
all of it, and scored on held-out target rows. Writes the curve to ``<out>/selection.png``
(default: a new temporary folder; ``--docs-images``: ``docs/images``, where this page takes it from)::

    python examples/target_selection.py [--epochs N] [--out DIR | --docs-images]

.. image:: /images/selection.png
   :alt: target accuracy against the share of the pool kept, by value and at random

:doc:`/user_guide/selection` puts this in context.
"""

# sphinx_gallery_thumbnail_path = "images/selection.png"

import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from skval import LossValClassifier  # noqa: E402
from skval.evaluation import selection_curve  # noqa: E402
from skval.plot import plot_selection  # noqa: E402

N_REFERENCE, N_TEST = 100, 500
WORSE_SHARE, WORSE_LABEL_ERRORS, WORSE_PIXEL_NOISE = 1 / 3, 0.4, 4.0

# %%
# The data: reference, test and pool rows from ``digits``; a third of the pool gets noisy scans
# and, for 40% of those rows, a wrong label.


def mixed_pool(random_state=0):
    """Pool (from two sources), reference and test rows; and which pool rows are the worse source."""
    X, y = load_digits(return_X_y=True)
    rng = np.random.RandomState(random_state)
    rows = rng.permutation(len(y))
    ref, test, pool = np.split(rows, [N_REFERENCE, N_REFERENCE + N_TEST])
    X_pool, y_pool = X[pool].copy(), y[pool].copy()
    worse = rng.rand(len(pool)) < WORSE_SHARE
    X_pool[worse] = np.clip(X_pool[worse] + rng.normal(0, WORSE_PIXEL_NOISE, X_pool[worse].shape), 0, 16)
    wrong = worse & (rng.rand(len(pool)) < WORSE_LABEL_ERRORS)
    y_pool[wrong] = (y_pool[wrong] + rng.randint(1, 10, wrong.sum())) % 10
    return (X_pool, y_pool, worse), (X[ref], y[ref]), (X[test], y[test])


# %%
# Value the pool against the reference (``label_weight=1.0``: the OT cost compares the labels
# too), then train on the best-valued fraction of each class with
# :func:`skval.evaluation.selection_curve`, against random fractions of the same size.


def _output_folder(args):
    """--out, or docs/images with --docs-images, or a new temporary folder: never a tracked file unasked."""
    if args.docs_images:
        out = Path(__file__).resolve().parents[1] / "docs" / "images"
    elif args.out is not None:
        out = Path(args.out)
    else:
        return Path(tempfile.mkdtemp(prefix="skval-target_selection-"))
    out.mkdir(parents=True, exist_ok=True)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default=None,
                        help="folder for the PNG files (default: a new temporary folder)")
    parser.add_argument("--docs-images", action="store_true",
                        help="write them into the repository's docs/images (regenerates the docs)")
    args = parser.parse_args(argv)
    out = _output_folder(args)

    (X_pool, y_pool, worse), (X_ref, y_ref), (X_test, y_test) = mixed_pool()
    valuer = LossValClassifier(max_epochs=args.epochs, label_weight=1.0, random_state=0)
    values = valuer.fit(X_pool, y_pool, X_val=X_ref, y_val=y_ref).data_values_
    kept_half = np.argsort(values)[len(values) // 2:]
    print(f"pool: {len(y_pool)} rows, {worse.sum()} from the worse source; "
          f"among the best-valued half: {worse[kept_half].sum()}")

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    fractions, by_value, random = selection_curve(model, X_pool, y_pool, values, X_test, y_test,
                                                  fractions=(0.2, 0.4, 0.6, 0.8, 1.0),
                                                  stratify=y_pool, n_random=5, random_state=0)
    for frac, v, r in zip(fractions, by_value, random):
        print(f"keep {frac:.0%}: by value {v:.3f}, random {r:.3f}")
    ax = plot_selection(fractions, by_value, random, metric="target test accuracy")
    ax.set_title("digits: a third of the pool from a worse source")
    ax.figure.savefig(out / "selection.png", dpi=80, bbox_inches="tight")
    plt.close("all")
    print(f"plot written to {out}/selection.png")
    return fractions, by_value, random


# %%
# Run it (in the gallery the picture goes into the build folder, not into ``docs/images``).

if __name__ == "__main__":
    main()
