"""A pipeline and a grid search with a clean reference set
=======================================================

Metadata routing sends ``X_val`` / ``y_val`` to the LossVal step, and ``transform_input`` makes
the pipeline scale ``X_val`` like the training rows (without it, the reference would arrive
unscaled). 30 clean rows of ``wine`` are the reference; 20% of the other rows' labels are
flipped. :doc:`/user_guide/reference` says when a reference set is worth passing::

    python examples/pipeline_grid_search.py [--epochs N]
"""

import argparse

import sklearn
from sklearn.datasets import load_wine
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skval import LossValClassifier
from skval.evaluation import auroc, inject_noise

# %%
# The reference is split off before the noise is added; the search tunes the epochs and the
# hidden layers of the LossVal step inside the pipeline.


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[15, 30])
    args = parser.parse_args(argv)

    X, y = load_wine(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=30, random_state=0, stratify=y)
    X_train, y_noisy, noisy = inject_noise(X_train, y_train, kind="label", rate=0.2, random_state=0)

    with sklearn.config_context(enable_metadata_routing=True):
        lossval = LossValClassifier(random_state=0).set_fit_request(X_val=True, y_val=True)
        pipe = Pipeline([("scale", StandardScaler()), ("lossval", lossval)], transform_input=["X_val"])
        grid = GridSearchCV(
            pipe,
            {"lossval__max_epochs": args.epochs, "lossval__hidden_layer_sizes": [(32,), (64, 64)]},
            cv=3,
            n_jobs=2,
        )
        grid.fit(X_train, y_noisy, X_val=X_val, y_val=y_val)

    best = grid.best_estimator_.named_steps["lossval"]
    print(f"best parameters: {grid.best_params_} (cv accuracy on noisy labels {grid.best_score_:.3f})")
    print(f"{noisy.sum()} of {len(noisy)} labels flipped; AUROC of the values: "
          f"{auroc(best.data_values_, noisy):.3f}")
    return grid


# %%
# Run it with the script's defaults (15 and 30 epochs).

if __name__ == "__main__":
    main()
