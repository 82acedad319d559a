"""Quantile maps to a standard normal, fitted by one sort per column.

scikit-learn's ``QuantileTransformer`` learns its quantiles with
``np.nanpercentile``, which partitions a column once per requested quantile: at
3,000 rows and its 1,000 quantiles that is about 5 ms a column, 0.1 s of a
3,000 x 20 valuation (the OT cost's features are quantile-mapped). Sorting each
column once and interpolating gives the same numbers (numpy's "linear" method,
the same floating-point operations) in a fiftieth of the time.
"""

from __future__ import annotations

import numpy as np
from sklearn.preprocessing import QuantileTransformer


def sorted_quantiles(X, q):
    """The ``q``-quantiles of each column of ``X``, as ``np.percentile(X, 100 * q, axis=0)``.

    Numpy's default ("linear") method, with its floating-point operations: the
    virtual index ``(n - 1) * q``, and between the two neighbouring sorted
    values ``a + (b - a) * t``, or ``b - (b - a) * (1 - t)`` where ``t >= 0.5``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Finite values (no NaN), ``n_samples >= 1``.
    q : ndarray of shape (n_quantiles,)
        Quantiles in [0, 1].

    Returns
    -------
    quantiles : ndarray of shape (n_quantiles, n_features)
    """
    ordered = np.sort(X, axis=0)
    n = len(ordered)
    virtual = (n - 1) * q  # Hyndman & Fan's type 7
    below = np.floor(virtual)
    last = virtual >= n - 1
    lower = np.where(last, n - 1, below).astype(np.intp)
    upper = np.where(last, n - 1, below + 1).astype(np.intp)
    t = (virtual - np.where(last, -1, below))[:, None]  # numpy's t at the top: a == b there
    a, b = ordered[lower], ordered[upper]
    step = b - a
    return np.where(t >= 0.5, b - step * (1 - t), a + step * t)


class NormalQuantiles(QuantileTransformer):
    """``QuantileTransformer`` whose dense fit sorts each column once (``sorted_quantiles``).

    The same parameters, fitted attributes and transform as scikit-learn's; only
    the quantiles of a NaN-free dense input are computed differently (the same
    values). A scikit-learn without the private ``_dense_fit`` hook simply fits
    the slow way.
    """

    def _dense_fit(self, X, random_state):
        subsampled = self.subsample is not None and self.subsample < len(X)
        if subsampled or np.isnan(X).any():  # its own draw, or its NaN handling, as they are
            super()._dense_fit(X, random_state)
            return
        # the quantiles in percent and back, as np.nanpercentile receives and divides them
        self.quantiles_ = sorted_quantiles(X, (self.references_ * 100) / 100)
