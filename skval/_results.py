"""What a fitted valuer shows of its values: a Series, the lowest rows with their evidence."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils.validation import check_is_fitted


def _import_pandas():
    try:
        import pandas
    except ImportError:  # pragma: no cover - pandas is an optional extra
        raise ImportError("This needs pandas: pip install 'skval[pandas]'.") from None
    return pandas


def value_ranks(values):
    """Rank of each value, 1 for the lowest; ties in the order of the rows."""
    return values.rank(method="first").astype(int).to_numpy()


class ValuesMixin:
    """``values_series`` and ``worst_rows`` of a fitted estimator with ``data_values_``."""

    def values_series(self, sort=False):
        """The data values as a pandas Series keyed by the rows of ``X``.

        Parameters
        ----------
        sort : bool, default=False
            Sort from the lowest (most harmful) value up.

        Returns
        -------
        values : pandas.Series
            Named ``"data_value"``; its index is ``X``'s index when ``X`` was a
            DataFrame, else the row numbers.
        """
        pd = _import_pandas()
        check_is_fitted(self, "data_values_")
        index = self._row_index if self._row_index is not None else pd.RangeIndex(len(self.data_values_))
        series = pd.Series(self.data_values_, index=index, name="data_value")
        return series.sort_values(kind="stable") if sort else series

    def worst_rows(self, X, y=None, k=10):
        """The ``k`` lowest-valued rows of the training data, with their values.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The data passed to ``fit`` (same rows, same order).
        y : array-like of shape (n_samples,) or None, default=None
            Its targets; added as a ``"target"`` column when given.
        k : int, default=10
            How many rows.

        Returns
        -------
        rows : pandas.DataFrame
            The ``k`` rows sorted from the lowest value, indexed like
            ``values_series``, with the features, ``"target"``, ``"data_value"``,
            ``"rank"`` (1 = lowest value) and the two columns of ``evidence_``,
            ``"label_evidence"`` and ``"feature_evidence"``, which tell a wrong
            label from a corrupted row.
        """
        pd = _import_pandas()
        values = self.values_series()
        if len(X) != len(values):
            raise ValueError(
                f"X has {len(X)} rows but the estimator was fitted on {len(values)}; "
                "pass the training data."
            )
        if not (isinstance(k, numbers.Integral) and k > 0):
            raise ValueError(f"k must be a positive int, got {k!r}.")
        frame = pd.DataFrame(X).copy() if hasattr(X, "columns") else pd.DataFrame(np.asarray(X))
        frame.index = values.index
        if y is not None:
            if len(y) != len(values):
                raise ValueError(f"y has {len(y)} rows, X has {len(values)}.")
            frame["target"] = np.asarray(y)
        frame["data_value"] = values.to_numpy()
        frame["rank"] = value_ranks(values)
        frame["label_evidence"], frame["feature_evidence"] = self.evidence_.T
        return frame.sort_values("rank").head(k)
