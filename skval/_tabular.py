"""Tables as users have them: text, category, boolean columns and missing values as numbers.

The one encoding of ``python -m skval`` and of the estimators' ``fit`` on a
DataFrame that is not all numbers (or has missing values). Fitted on the training
rows, applied unchanged to ``X_val`` and at predict time:

- identifier columns are left out (with a warning): text with a distinct value in
  every row (a customer ID), or whole numbers that count up by one (a row number);
- numeric and boolean columns: missing values become the column's training median,
  and a 0/1 column beside it says which rows were missing (only for a column with
  missing training values);
- text, ``category`` and object columns: one 0/1 column per category, a missing
  value being a category of its own; a category seen in fewer than
  ``MIN_CATEGORY_ROWS`` training rows joins one "infrequent" column (as do the
  categories past the ``MAX_CATEGORIES`` most frequent), and a category first
  seen at predict time counts as infrequent;
- datetime and timedelta columns are refused, by name (turn them into numbers
  first); a column with no value in any training row is left out, with a warning.

A leaf module: it imports nothing from the rest of skval. The estimators use it through
:class:`TableInputMixin`.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.utils.validation import check_array, validate_data

__all__ = ["MIN_CATEGORY_ROWS", "MAX_CATEGORIES", "TableEncoder", "TableInputMixin", "identifier_columns",
           "is_identifier", "needs_encoding"]

# A category needs this many training rows for a column of its own: one-hot columns
# of a handful of rows are identifiers in disguise (the network learns those rows).
MIN_CATEGORY_ROWS = 5
MAX_CATEGORIES = 50
_MISSING = "<missing>"


def needs_encoding(X):
    """Whether ``X`` is a DataFrame with a column that is not numbers, or a missing value.

    Parameters
    ----------
    X : object
        The data passed to ``fit``.

    Returns
    -------
    bool
        False for arrays and all-numeric frames without missing values (they keep
        scikit-learn's validation, unchanged).
    """
    if not hasattr(X, "columns") or not hasattr(X, "dtypes"):
        return False
    from pandas.api.types import is_numeric_dtype

    if not all(is_numeric_dtype(dtype) for dtype in X.dtypes):
        return True
    return bool(X.isna().to_numpy().any())


def is_identifier(column):
    """Text with a distinct value in every row, or whole numbers counting up by one (row numbers).

    Parameters
    ----------
    column : pandas.Series
        One column of a table.

    Returns
    -------
    bool
        Whether the column identifies rows rather than describes them.
    """
    from pandas.api.types import is_bool_dtype, is_integer_dtype, is_numeric_dtype

    values = column.dropna()
    if len(values) < len(column) or len(column) < 2:
        return False
    if not is_numeric_dtype(column.dtype) and not is_bool_dtype(column.dtype):
        return values.nunique() == len(column)
    return is_integer_dtype(column.dtype) and bool(np.all(np.diff(values.to_numpy()) == 1))


def identifier_columns(frame):
    """The names of the identifier columns of ``frame`` (see :func:`is_identifier`).

    Parameters
    ----------
    frame : pandas.DataFrame
        A table.

    Returns
    -------
    list
        Column names, in the table's order.
    """
    return [name for name in frame.columns if is_identifier(frame[name])]


def _kind(name, column):
    """ "numeric" or "categorical"; raise for a column that cannot be encoded."""
    from pandas.api.types import (is_bool_dtype, is_datetime64_any_dtype, is_numeric_dtype,
                                  is_timedelta64_dtype)

    if is_datetime64_any_dtype(column.dtype) or is_timedelta64_dtype(column.dtype):
        raise ValueError(
            f"Column {name!r} holds dates or durations ({column.dtype}), which skval cannot "
            "use as they are; turn it into numbers (e.g. days since a date, or the month) "
            "or drop it.")
    if (is_numeric_dtype(column.dtype) or is_bool_dtype(column.dtype)) \
            and not hasattr(column.dtype, "categories"):
        return "numeric"
    return "categorical"


def _as_text(column):
    """A categorical column as strings, a missing value as a category of its own."""
    values = column.astype(object)
    return values.where(values.notna(), _MISSING).astype(str).to_numpy()


class TableEncoder:
    """Encode a DataFrame's columns as numbers, by the rules of this module.

    Parameters
    ----------
    drop_identifiers : bool, default=True
        Leave identifier columns out (with a warning naming them).
    """

    def __init__(self, drop_identifiers=True):
        self.drop_identifiers = drop_identifiers

    def fit(self, frame):
        """Learn the encoding of each column from the training rows.

        Parameters
        ----------
        frame : pandas.DataFrame
            The training table.

        Returns
        -------
        self : TableEncoder
            Fitted: ``columns_`` (the input columns, in order), ``used_`` (those
            encoded) and ``left_out_`` (name -> reason).
        """
        self.columns_ = list(frame.columns)
        self.left_out_ = {}
        kinds = {name: _kind(name, frame[name]) for name in self.columns_}
        for name in self.columns_:
            if frame[name].isna().all():
                self.left_out_[name] = "no value in any training row"
        if self.drop_identifiers:
            for name in identifier_columns(frame.drop(columns=list(self.left_out_))):
                self.left_out_[name] = "an identifier (a distinct text per row, or a row number)"
        self._warn_left_out()
        self.used_ = [name for name in self.columns_ if name not in self.left_out_]
        if not self.used_:
            raise ValueError("No column of X can be used: " + self._left_out_text())
        self._steps = [self._fit_column(name, kinds[name], frame[name]) for name in self.used_]
        return self

    def _left_out_text(self):
        return "; ".join(f"{name!r}: {why}" for name, why in self.left_out_.items())

    def _warn_left_out(self):
        if self.left_out_ and len(self.left_out_) < len(self.columns_):
            warnings.warn("Columns left out of the features: " + self._left_out_text()
                          + ". Drop them from X to silence this warning.", UserWarning,
                          stacklevel=8)

    @staticmethod
    def _fit_column(name, kind, column):
        if kind == "numeric":
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            return name, kind, (float(np.nanmedian(values)), bool(np.isnan(values).any()))
        from sklearn.preprocessing import OneHotEncoder

        encoder = OneHotEncoder(handle_unknown="infrequent_if_exist", sparse_output=False,
                                min_frequency=MIN_CATEGORY_ROWS, max_categories=MAX_CATEGORIES)
        return name, kind, encoder.fit(_as_text(column).reshape(-1, 1))

    def transform(self, frame):
        """The encoded table, float64, one or more columns per used column.

        Parameters
        ----------
        frame : pandas.DataFrame
            Rows with the training table's columns (any order).

        Returns
        -------
        X : ndarray of shape (n_rows, n_encoded)
            The numbers the estimator trains or predicts on.
        """
        blocks = []
        for name, kind, state in self._steps:
            column = frame[name]
            if kind == "categorical":
                blocks.append(state.transform(_as_text(column).reshape(-1, 1)))
                continue
            try:
                values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            except (TypeError, ValueError):
                raise ValueError(f"Column {name!r} held numbers in fit but now holds values "
                                 f"like {column.dropna().iloc[0]!r}.") from None
            median, indicator = state
            missing = np.isnan(values)
            blocks.append(np.where(missing, median, values)[:, None])
            if indicator:
                blocks.append(missing[:, None].astype(np.float64))
        return np.hstack(blocks)

    def fit_transform(self, frame):
        """``fit(frame).transform(frame)``.

        Parameters
        ----------
        frame : pandas.DataFrame
            The training table.

        Returns
        -------
        X : ndarray of shape (n_rows, n_encoded)
            The encoded training rows.
        """
        return self.fit(frame).transform(frame)


class TableInputMixin:
    """The estimators' side of a table: encode it in ``fit``, check and encode it after.

    The estimator using it sets ``_table`` (a fitted :class:`TableEncoder`, or None
    for arrays and all-numeric frames, which keep scikit-learn's validation) and
    ``_y_check_params``.
    """

    def _validate_table(self, X, y):
        """A DataFrame with text, category, boolean columns or missing values, encoded."""
        keep_ids = getattr(self, "_keep_identifiers", False)  # set by python -m skval
        self._table = TableEncoder(drop_identifiers=not keep_ids).fit(X)
        X, y = validate_data(self, self._table.transform(X), y, dtype=(np.float64, np.float32),
                             ensure_min_samples=2, **self._y_check_params)
        self._n_encoded = X.shape[1]
        self.n_features_in_ = len(self._table.columns_)
        self.feature_names_in_ = np.asarray(self._table.columns_, dtype=object)
        return X, y

    def _match_columns(self, frame, name):
        """``frame``'s columns in ``X``'s order; raise naming the missing and extra ones."""
        expected, given = list(self.feature_names_in_), list(frame.columns)
        if given == expected:
            return frame
        missing = [c for c in expected if c not in given]
        extra = [c for c in given if c not in expected]
        if missing or extra or len(given) != len(expected):
            raise ValueError(f"{name} must have the columns of the X passed to fit; missing: "
                             f"{missing}, not in X: {extra}.")
        return frame[expected]

    def _encoded_rows(self, X, name):
        """Rows of a table fitted through ``TableEncoder``, encoded the same way."""
        if not hasattr(X, "columns"):
            raise ValueError(
                f"X was a table with columns {list(self.feature_names_in_)[:5]}... (text, "
                f"category or missing values, encoded inside the estimator); {name} must be a "
                "DataFrame with the same columns.")
        return self._table.transform(self._match_columns(X, name))

    def _predict_input(self, X):
        """``X`` at predict time, checked (and encoded) as the training rows were."""
        if getattr(self, "_table", None) is None:
            return validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        return check_array(self._encoded_rows(X, "X"), dtype=(np.float64, np.float32),
                           estimator=self)

