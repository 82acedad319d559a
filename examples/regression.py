"""Regression: find corrupted targets in Friedman #1
=================================================

:class:`~skval.LossValRegressor` values 1,000 rows of Friedman #1 in which 15% of the targets
were replaced by another row's target (:func:`skval.evaluation.inject_noise` with
``task="regression"``). :func:`skval.evaluation.detection_scores` gives the 2-means F1, the
AUROC and the precision at k of the values against the known corrupted rows::

    python examples/regression.py [--epochs N]
"""

import argparse

from sklearn.datasets import make_friedman1

from skval import LossValRegressor
from skval.evaluation import detection_scores, inject_noise

# %%
# Corrupt, fit once, score the values; the R² is against the clean targets.


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args(argv)

    X, y = make_friedman1(n_samples=1000, noise=1.0, random_state=0)
    X, y_noisy, noisy = inject_noise(X, y, kind="label", rate=0.15, task="regression", random_state=0)
    reg = LossValRegressor(max_epochs=args.epochs, random_state=0).fit(X, y_noisy)
    scores = detection_scores(reg.data_values_, noisy)
    print(f"Friedman #1, {len(y)} rows, {noisy.sum()} targets replaced by another row's target")
    print("detection: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    print(f"R^2 against the clean targets: {reg.score(X, y):.3f}")
    return scores


# %%
# Run it with the script's defaults (30 epochs).

if __name__ == "__main__":
    main()
