"""Hyperparameter search beyond one process: GridSearchCV on joblib or on Dask
===========================================================================

scikit-learn parallelises through joblib; ``joblib.parallel_backend("dask")`` sends the
same work to a Dask cluster. Here a ``LocalCluster`` on loopback stands in for a real
one; to use a real cluster, pass its scheduler address to ``Client("tcp://host:8786")``
(or, for Ray, ``from ray.util.joblib import register_ray; register_ray()`` and
``parallel_backend("ray")``). Needs ``pip install 'skval[dask]'``. Both searches find the same best parameters and the
same scores (``tests/test_examples.py`` checks it)::

    python examples/dask_grid_search.py [--epochs N] [--workers N]
"""

import argparse

import joblib
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import GridSearchCV

from skval import LossValClassifier

# %%
# One grid search over the learning rate and the number of epochs, three folds.


def search(X, y, epochs, n_jobs):
    grid = GridSearchCV(
        LossValClassifier(random_state=0),
        {"lr": [0.01, 0.003], "max_epochs": epochs},
        cv=3,
        n_jobs=n_jobs,
    )
    return grid.fit(X, y)


# %%
# The same search twice: on joblib's default backend, then on a local Dask cluster of two
# worker processes.


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[10, 30])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    X, y = load_breast_cancer(return_X_y=True)

    local = search(X, y, args.epochs, n_jobs=2)  # joblib's default (loky) backend
    print(f"joblib: best {local.best_params_}, score {local.best_score_:.3f}")

    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=args.workers, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None, processes=True) as cluster, Client(cluster):
        with joblib.parallel_backend("dask"):
            distributed = search(X, y, args.epochs, n_jobs=-1)
    print(f"dask:   best {distributed.best_params_}, score {distributed.best_score_:.3f}")
    return local, distributed


# %%
# Run it with the script's defaults (10 and 30 epochs, 2 workers).

if __name__ == "__main__":
    main()
