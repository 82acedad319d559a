"""``python -m skval data.csv --target COLUMN``: value the rows of a CSV file."""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np

from ._classifier import LossValClassifier
from ._io import FileError, check_outputs, read_csv, write_atomically
from ._regressor import LossValRegressor
from ._selection import check_cut, check_share
from ._tabular import MIN_CATEGORY_ROWS, identifier_columns

_MAX_CLASSES_AUTO = 20

DESCRIPTION = f"""\
Value every row of a CSV file with LossVal: rows with a low value hurt the model
(wrong labels, corrupted features). The columns are encoded as the estimators
encode a DataFrame: numbers and booleans as they are, a missing number as the
column's median with a 0/1 column marking it; text columns one-hot, a missing
value being a category of its own and the categories of fewer than
{MIN_CATEGORY_ROWS} rows merged into one. Date columns are refused (turn them into
numbers first); a column with no value is left out. Writes a
CSV with one line per input row, the estimator's get_issues report: row (0-based
position in the file, header not counted), data_value and rank (1 = lowest value,
the most suspicious row), label_evidence and feature_evidence (what the run found
against the row's label and its features), source ("label", "feature" or "none":
the side that stands out), flagged (whether the guarded cut removes the row, see
--cut and --veto) and the network's suggestion (classification: given_proba, suggested_label,
suggested_proba; regression: prediction); and prints the lowest-valued rows as
they are in the file. With --kept-rows, also writes the rows of the CSV that are
not flagged, unchanged, all columns.

Identifier columns are not features: text with a distinct value in every row (a
customer ID), or whole numbers that count up by one from row to row (a row number).
They are left out of the features, with a message, unless --keep-id-columns is
given; the values CSV keeps them, after "row", to identify the rows.

Files written: the values CSV (--output), the plot (--plot) and the kept rows
(--kept-rows). None of them may be the input CSV (refused). An existing file is
replaced only with --overwrite. Each is written to a temporary file in the same
folder and renamed into place when complete, so an interrupted run leaves any
previous file as it was.
"""


def _parser():
    p = argparse.ArgumentParser(prog="python -m skval", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("csv", help="input CSV file with a header line")
    p.add_argument("--target", required=True, help="name of the target column")
    p.add_argument("--task", choices=["auto", "classification", "regression"], default="auto",
                   help="auto: classification for a non-numeric target or an integer target "
                        f"with at most {_MAX_CLASSES_AUTO} distinct values (default: auto)")
    p.add_argument("--output", "-o", default=None,
                   help="output CSV of row, data_value, rank, evidence, flagged, suggestion "
                        "(default: <csv>.values.csv)")
    p.add_argument("--plot", default=None, help="also save a histogram of the values to this PNG")
    p.add_argument("--epochs", type=int, default=30, help="training epochs (default: 30)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--top", type=int, default=10, help="lowest-valued rows to print (default: 10)")
    p.add_argument("--kept-rows", default=None, metavar="CSV",
                   help="also write the rows that survive the cut to this CSV (all columns)")
    p.add_argument("--cut", type=_cut, default="kmeans",
                   help="rows to remove for --kept-rows: 'kmeans' (the low cluster of a 2-means "
                        "split of the values), a fraction in (0, 1) or a count (default: kmeans)")
    p.add_argument("--max-class-share", type=float, default=0.5,
                   help="remove at most this share of a class of average size, less of a "
                        "smaller class (by the square of its size over the average); of all "
                        "rows for regression (default: 0.5)")
    p.add_argument("--veto", choices=["doubt", "agree", "none"], default="doubt",
                   help="which of the cut's rows the network keeps: 'doubt' removes only rows "
                        "it doubts (their label less likely than usual for it and than its "
                        "share; a residual beyond 3 robust SD), 'agree' keeps only rows it "
                        "confidently agrees with (a wider cut), 'none' (default: doubt)")
    p.add_argument("--keep-id-columns", action="store_true",
                   help="use identifier columns as features too (default: leave them out)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing output CSV, plot or kept-rows CSV (default: refuse; "
                        "the input CSV is never replaced)")
    return p


def _cut(text):
    """--cut: "kmeans", a fraction (with a decimal point) or a count."""
    if text == "kmeans":
        return text
    try:
        return float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'kmeans', a fraction in (0, 1) or a count, got {text!r}") from None


def _fail(message):
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _read(path, target):
    try:
        frame = read_csv(path, target)
    except FileError as error:
        _fail(str(error))
    if frame[target].isna().any():
        rows = np.flatnonzero(frame[target].isna().to_numpy())[:5].tolist()
        _fail(f"target column {target!r} has missing values (rows {rows})")
    if frame.shape[1] < 2:
        _fail(f"{path} has no feature columns besides {target!r}")
    return frame


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


def _value_rows(X, y, task, args):
    """Fit the estimator on the feature columns as they are (it encodes them); returns it."""
    est_cls = LossValClassifier if task == "classification" else LossValRegressor
    estimator = est_cls(max_epochs=args.epochs, random_state=args.seed)
    estimator._keep_identifiers = args.keep_id_columns  # the CLI has decided about them
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            estimator.fit(X, y.to_numpy())
        except ValueError as error:
            _fail(str(error))
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    return estimator


def _check_classes(y, task):
    """A classification needs two classes: one line, before any fitting."""
    if task == "classification" and y.nunique() < 2:
        _fail(f"target column {y.name!r} has one class ({y.iloc[0]!r}) in every row; "
              "there is nothing to tell apart: a classification needs at least 2 classes")


def _save_plot(values, args):
    import matplotlib

    matplotlib.use("Agg")
    from .plot import plot_values

    ax = plot_values(values)
    ax.set_title(f"LossVal values of {args.csv}")
    write_atomically(args.plot, lambda tmp: ax.figure.savefig(tmp, dpi=100, bbox_inches="tight"))
    print(f"plot -> {args.plot}")


def _check_args(args):
    if args.epochs < 1:
        _fail(f"--epochs must be >= 1, got {args.epochs}")
    try:
        check_share(args.max_class_share)
    except ValueError as error:
        _fail(f"--max-class-share: {error}")


def _features(frame, target, keep_ids):
    """The feature columns (all but the target and, unless ``keep_ids``, the identifiers),
    and the names of the identifier columns."""
    X = frame.drop(columns=[target])
    ids = identifier_columns(X)
    if ids and not keep_ids:
        if len(ids) == X.shape[1]:
            _fail(f"every feature column looks like an identifier ({', '.join(map(str, ids))}); "
                  "pass --keep-id-columns to use them anyway")
        print(f"identifier columns left out of the features: {', '.join(map(str, ids))} "
              "(a distinct text per row, or a row number); --keep-id-columns keeps them")
        X = X.drop(columns=ids)
    return X, ids


def _report(estimator, X, y, args):
    """The estimator's ``get_issues`` on the feature columns, with the CLI's cut."""
    return estimator.get_issues(X, y.to_numpy(), cut=args.cut, max_class_share=args.max_class_share,
                                veto=None if args.veto == "none" else args.veto)


def _save_values(report, frame, ids, output):
    """The values CSV: the report less the given target (it is in the file), one line per row."""
    table = report.drop(columns=["given_label", "target"], errors="ignore")
    table = table.rename(columns={"value": "data_value"}).rename_axis("row")
    for position, name in enumerate(ids):
        table.insert(position, name, frame[name].to_numpy())
    write_atomically(output, lambda tmp: table.to_csv(tmp))


def _save_kept_rows(report, frame, args):
    kept = frame.iloc[np.flatnonzero(~report["flagged"].to_numpy(dtype=bool))]
    write_atomically(args.kept_rows, lambda tmp: kept.to_csv(tmp, index=False))
    print(f"kept {len(kept)} of {len(frame)} rows -> {args.kept_rows}")


def main(argv=None):
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    _check_args(args)
    output = args.output or f"{args.csv}.values.csv"
    try:
        check_outputs(args.csv, [output, args.plot, args.kept_rows], args.overwrite)
    except FileError as error:
        _fail(str(error))
    frame = _read(args.csv, args.target)
    try:
        check_cut(args.cut, len(frame))
    except ValueError as error:
        _fail(f"--cut: {error}")
    X, ids = _features(frame, args.target, args.keep_id_columns)
    y = frame[args.target]
    task = _task(y, args.task)
    _check_classes(y, task)
    estimator = _value_rows(X, y, task, args)
    report = _report(estimator, X, y, args)  # indexed by the row's position in the file
    _save_values(report, frame, ids, output)
    print(f"{task}: valued {len(report)} rows of {args.csv} -> {output}")
    if estimator.noise_shares_ is not None:
        label_share, feature_share = estimator.noise_shares_
        labels = "labels wrong" if task == "classification" else "targets wrong (its residuals)"
        print(f"the run estimates {label_share:.0%} of the {labels} and {feature_share:.0%} "
              "of the rows' features corrupted (its canary rows)")
    worst = estimator.worst_rows(frame.drop(columns=[args.target]), y, k=args.top, issues=report)
    shown = list(report.columns[:4]) + ["given_label", "target"]  # already in worst
    extra = report.loc[worst.index].drop(columns=shown, errors="ignore")
    print(worst.join(extra).to_string(index_names=False))
    if args.kept_rows:
        _save_kept_rows(report, frame, args)
    if args.plot:
        _save_plot(report["value"].to_numpy(), args)
    return 0
