"""What a fitted valuer shows of its values: a Series keyed by the user's rows, their ranks."""

from __future__ import annotations


from sklearn.utils.validation import check_is_fitted

from ._io import import_pandas


def value_ranks(values):
    """Rank of each value, 1 for the lowest; ties in the order of the rows."""
    return values.rank(method="first").astype(int).to_numpy()


class ValuesMixin:
    """``values_series`` of a fitted estimator with ``data_values_``."""

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
        pd = import_pandas()
        check_is_fitted(self, "data_values_")
        index = self._row_index if self._row_index is not None else pd.RangeIndex(len(self.data_values_))
        series = pd.Series(self.data_values_, index=index, name="data_value")
        return series.sort_values(kind="stable") if sort else series
