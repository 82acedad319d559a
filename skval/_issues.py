"""A per-row report a user can act on: ``get_issues`` and ``worst_rows``.

One line per training row, indexed like ``values_series``:

- ``value``, ``rank``: the row's data value and its rank (1 = lowest value);
- ``label_evidence``, ``feature_evidence``: the two columns of ``evidence_``;
- ``source``: the side the evidence against the row comes from: ``"label"`` or
  ``"feature"``, the side on which the row lies further above that side's
  median, in robust standard deviations (median absolute deviation x 1.4826);
  ``"none"`` when the row is at or below the median on both sides;
- ``flagged``: whether the default cut (``LossValCleaner``'s, with its strict veto) removes it;
- classification: ``given_label`` and ``given_proba`` (with ``y``),
  ``suggested_label`` (``predict``) and ``suggested_proba`` (its probability);
  regression: ``target`` (with ``y``) and ``prediction`` (``predict``), one
  column per target (``_0``, ``_1``, ...) for several targets.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._guard import guarded_cut
from ._io import import_pandas
from ._results import value_ranks
from ._selection import SOURCES, check_cut, check_share, class_groups, evidence_source
from ._veto import check_veto


def _columns(name, data):
    """``{name: data}`` for one column, ``{name_0: ..., name_1: ...}`` for several."""
    data = np.asarray(data)
    if data.ndim == 1:
        return {name: data}
    if data.shape[1] == 1:
        return {name: data[:, 0]}
    return {f"{name}_{j}": data[:, j] for j in range(data.shape[1])}


class IssuesMixin:
    """``get_issues`` and ``worst_rows`` for the LossVal estimators."""

    def _check_rows(self, X, y):
        """The values as a Series; raise unless ``X`` (and ``y``) have one row per value."""
        values = self.values_series()
        if len(X) != len(values):
            raise ValueError(f"X has {len(X)} rows but the estimator was fitted on "
                             f"{len(values)}; pass the training data.")
        if y is not None and len(y) != len(values):
            raise ValueError(f"y has {len(y)} rows, X has {len(values)}.")
        return values

    def _prediction_columns(self, prediction, y):
        """The suggestion per row from the network's ``prediction``: label and probability."""
        columns = {}
        if hasattr(self, "classes_"):
            proba = prediction
            best = proba.argmax(axis=1)
            if y is not None:
                y = np.asarray(y)
                columns["given_label"] = y
                known = np.isin(y, self.classes_)
                col = np.searchsorted(self.classes_, y).clip(0, len(self.classes_) - 1)
                columns["given_proba"] = np.where(known, proba[np.arange(len(y)), col], 0.0)
            columns["suggested_label"] = self.classes_[best]
            columns["suggested_proba"] = proba[np.arange(len(best)), best]
            return columns
        if y is not None:
            columns.update(_columns("target", np.asarray(y, dtype=np.float64)))
        columns.update(_columns("prediction", prediction))
        return columns

    def get_issues(self, X, y=None, *, cut="kmeans", max_class_share=0.5, veto="doubt"):
        """One line per training row: its value, evidence, flag and the network's suggestion.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The data passed to ``fit`` (same rows, same order).
        y : array-like of shape (n_samples,) or None, default=None
            Its targets. Without them ``flagged`` is missing (``pd.NA``): the
            guards need the given labels.
        cut : "kmeans", float or int, default="kmeans"
            The cut behind ``flagged`` (see ``LossValCleaner``).
        max_class_share : float, default=0.5
            Its cap per class (see ``LossValCleaner``).
        veto : {"doubt", "agree"} or None, default="doubt"
            Its veto (see ``LossValCleaner``): ``"doubt"`` flags only rows the
            network doubts, ``"agree"`` spares only rows it confidently agrees
            with, ``None`` none.

        Returns
        -------
        issues : pandas.DataFrame
            Indexed like ``values_series``, in the order of the rows, with the
            columns described in ``skval._issues`` (``value``, ``rank``,
            ``label_evidence``, ``feature_evidence``, ``source``, ``flagged``,
            then the given and suggested labels or the target and prediction).
        """
        pd = import_pandas()
        values = self._check_rows(X, y)
        check_share(max_class_share)
        check_cut(cut, len(values))
        check_veto(veto)
        report = pd.DataFrame({"value": values.to_numpy(), "rank": value_ranks(values),
                               "label_evidence": self.evidence_[:, 0],
                               "feature_evidence": self.evidence_[:, 1]}, index=values.index)
        report["source"] = pd.Categorical.from_codes(evidence_source(self.evidence_), SOURCES)
        # one pass of the network over X serves the suggestion and the guard's veto
        prediction = self.predict_proba(X) if hasattr(self, "classes_") else self.predict(X)
        if y is None:
            report["flagged"] = pd.array([pd.NA] * len(values), dtype="boolean")
        else:
            y = np.asarray(y)
            groups = class_groups(y, hasattr(self, "classes_"))
            report["flagged"] = guarded_cut(self, X, y, self.data_values_, groups, cut,
                                            max_class_share, veto, prediction=prediction)
        for name, column in self._prediction_columns(prediction, y).items():
            report[name] = column
        return report

    def worst_rows(self, X, y=None, k=10, issues=None):
        """The ``k`` lowest-valued rows of the training data, with their values.

        The first ``k`` lines of ``get_issues`` by rank, joined to the rows of ``X``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The data passed to ``fit`` (same rows, same order).
        y : array-like of shape (n_samples,) or None, default=None
            Its targets; added as a ``"target"`` column when given.
        k : int, default=10
            How many rows.
        issues : pandas.DataFrame or None, default=None
            A report from ``get_issues`` to take the lines from; ``None``:
            ``get_issues(X)``. Pass one when ``X`` is not what the estimator
            predicts from (the raw columns before a pipeline's encoding).

        Returns
        -------
        rows : pandas.DataFrame
            The ``k`` rows sorted from the lowest value, indexed like
            ``values_series``, with the features, ``"target"``, ``"data_value"``,
            ``"rank"`` (1 = lowest value) and the two columns of ``evidence_``,
            ``"label_evidence"`` and ``"feature_evidence"``, which tell a wrong
            label from a corrupted row.
        """
        pd = import_pandas()
        values = self._check_rows(X, y)
        if not (isinstance(k, numbers.Integral) and k > 0):
            raise ValueError(f"k must be a positive int, got {k!r}.")
        report = self.get_issues(X) if issues is None else issues
        frame = pd.DataFrame(X).copy() if hasattr(X, "columns") else pd.DataFrame(np.asarray(X))
        frame.index = values.index
        if y is not None:
            frame["target"] = np.asarray(y)
        frame["data_value"] = report["value"].to_numpy()
        for name in ("rank", "label_evidence", "feature_evidence"):
            frame[name] = report[name].to_numpy()
        return frame.sort_values("rank").head(k)
