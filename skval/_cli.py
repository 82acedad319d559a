"""``python -m skval data.csv --target COLUMN``: value the rows of a CSV file."""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from ._base import value_ranks
from ._classifier import LossValClassifier
from ._regressor import LossValRegressor

_MAX_CLASSES_AUTO = 20

DESCRIPTION = """\
Value every row of a CSV file with LossVal: rows with a low value hurt the model
(wrong labels, corrupted features). Numeric columns are imputed (median) and
standardised, other columns imputed (most frequent) and one-hot encoded. Writes a
CSV with one line per input row: row (0-based position in the file, header not
counted), data_value and rank (1 = lowest value, the most suspicious row), and
prints the lowest-valued rows as they are in the file. An existing output file is
never replaced unless --overwrite is given.
"""


def _parser():
    p = argparse.ArgumentParser(prog="python -m skval", description=DESCRIPTION)
    p.add_argument("csv", help="input CSV file with a header line")
    p.add_argument("--target", required=True, help="name of the target column")
    p.add_argument("--task", choices=["auto", "classification", "regression"], default="auto",
                   help="auto: classification for a non-numeric target or an integer target "
                        f"with at most {_MAX_CLASSES_AUTO} distinct values (default: auto)")
    p.add_argument("--output", "-o", default=None,
                   help="output CSV of row, data_value, rank (default: <csv>.values.csv)")
    p.add_argument("--plot", default=None, help="also save a histogram of the values to this PNG")
    p.add_argument("--epochs", type=int, default=30, help="training epochs (default: 30)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--top", type=int, default=10, help="lowest-valued rows to print (default: 10)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the output CSV or plot if it exists (default: refuse)")
    return p


def _fail(message):
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _read(path, target):
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        _fail(f"no such file: {path}")
    except pd.errors.EmptyDataError:
        _fail(f"{path} is empty")
    if frame.empty:
        _fail(f"{path} has a header but no rows")
    if target not in frame.columns:
        _fail(f"column {target!r} not in {path}; columns: {', '.join(map(str, frame.columns))}")
    if frame[target].isna().any():
        rows = np.flatnonzero(frame[target].isna().to_numpy())[:5].tolist()
        _fail(f"target column {target!r} has missing values (rows {rows})")
    if frame.shape[1] < 2:
        _fail(f"{path} has no feature columns besides {target!r}")
    return frame.drop(columns=[target]), frame[target]


def _task(y, asked):
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    numeric = is_numeric_dtype(y.dtype) and not is_bool_dtype(y.dtype)
    if asked == "regression" and not numeric:
        _fail(f"--task regression needs a numeric target; {y.name!r} has values like {y.iloc[0]!r}")
    if asked != "auto":
        return asked
    if not numeric:
        return "classification"
    integral = np.all(np.mod(y.to_numpy(dtype=float), 1) == 0)
    return "classification" if integral and y.nunique() <= _MAX_CLASSES_AUTO else "regression"


def _preprocessor(X):
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    categorical = make_pipeline(
        SimpleImputer(strategy="most_frequent"),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
    )
    return ColumnTransformer([
        ("numeric", numeric, make_column_selector(dtype_include=np.number)),
        ("categorical", categorical, make_column_selector(dtype_exclude=np.number)),
    ])


def _refuse_to_overwrite(paths, overwrite):
    for path in paths:
        if path and not overwrite and os.path.exists(path):
            _fail(f"{path} exists; pass --overwrite to replace it, or choose another path")


def _value_rows(X, y, task, args):
    """Fit the one-hot / impute / LossVal pipeline; returns the fitted estimator."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype
    from sklearn.pipeline import make_pipeline

    est_cls = LossValClassifier if task == "classification" else LossValRegressor
    estimator = est_cls(max_epochs=args.epochs, random_state=args.seed, standardize=False)
    # every non-numeric column (strings, booleans, categories) becomes a one-hot category
    X = X.apply(lambda col: col if is_numeric_dtype(col.dtype) and not is_bool_dtype(col.dtype)
                else col.astype(object))
    pipe = make_pipeline(_preprocessor(X), estimator)
    pipe.fit(X, y.to_numpy())
    return pipe[-1]


def _save_plot(values, args):
    import matplotlib

    matplotlib.use("Agg")
    from .plot import plot_values

    ax = plot_values(values)
    ax.set_title(f"LossVal values of {args.csv}")
    ax.figure.savefig(args.plot, dpi=100, bbox_inches="tight")
    print(f"plot -> {args.plot}")


def main(argv=None):
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.epochs < 1:
        _fail(f"--epochs must be >= 1, got {args.epochs}")
    output = args.output or f"{args.csv}.values.csv"
    _refuse_to_overwrite([output, args.plot], args.overwrite)
    X, y = _read(args.csv, args.target)
    task = _task(y, args.task)
    estimator = _value_rows(X, y, task, args)

    values = estimator.values_series()  # indexed by the row's position in the file
    table = values.rename_axis("row").to_frame().assign(rank=value_ranks(values))
    table.to_csv(output)
    print(f"{task}: valued {len(values)} rows of {args.csv} -> {output}")
    worst = estimator.worst_rows(X, y, k=args.top)
    print(worst.to_string(index_names=False))
    if args.plot:
        _save_plot(values.to_numpy(), args)
    return 0
