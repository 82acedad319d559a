"""A fit's feature arrays, built without full-size copies of ``X``.

``StandardisedRows``: the network's input rows, standardised as they are read.
``fill_rows``: a row-wise transform (the OT cost's features) written chunk by chunk
into one array.

A fit trains on the user's rows and, after them, the canaries. Holding the
standardised float32 features of every row would copy ``X`` (80 MB at a million rows
of 20 features); ``StandardisedRows`` keeps ``X`` itself and standardises the rows a
batch asks for, with the same arithmetic as a whole-array transform.
"""

from __future__ import annotations

import numpy as np
import torch

# Rows a feature transform works on at a time in fit (its temporaries stay small).
_FILL_CHUNK = 65_536


class StandardisedRows:
    """Rows of ``X`` standardised on reading, then ``extra`` rows already standardised.

    Indexing with an array of row numbers (numpy, or a CPU int64 tensor) returns
    those rows as float32, ``(X[r] - mean) / scale`` for a row of ``X`` and
    ``extra[r - len(X)]`` after them (a tensor for a tensor index). It has ``shape``,
    ``dtype`` and ``len`` like the stacked array.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        The rows (float32 or float64; kept, not copied, never modified).
    mean, scale : ndarray of shape (n_features,) or float
        The standardisation.
    extra : ndarray of shape (n_extra, n_features), float32
        Rows after those of ``X``, already standardised (the canaries).
    """

    dtype = np.dtype(np.float32)

    def __init__(self, X, mean, scale, extra):
        self.X, self.mean, self.scale = X, mean, scale
        self.extra = np.asarray(extra, dtype=np.float32)
        self.shape = (len(X) + len(self.extra), X.shape[1])

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, rows):
        if isinstance(rows, torch.Tensor):
            return torch.from_numpy(self[rows.numpy()])
        rows = np.arange(len(self))[rows] if isinstance(rows, slice) else np.asarray(rows)
        n = len(self.X)
        # every row read from X (an extra row's place is filled from X's last row, then
        # overwritten): one gather and one transform for the batch
        out = ((self.X[np.minimum(rows, n - 1)] - self.mean) / self.scale).astype(np.float32)
        extra = rows >= n
        if extra.any():
            out[extra] = self.extra[rows[extra] - n]
        return out


def fill_rows(parts, transform, chunk=_FILL_CHUNK):
    """``transform`` of each of ``parts`` (row-wise, keeping the columns), stacked into one
    float32 array.

    Written chunk by chunk into the result, so that no full-size temporary of the
    transform's own (float64 arithmetic, say) is ever held.
    """
    out = np.empty((sum(len(part) for part in parts), parts[0].shape[1]), dtype=np.float32)
    row = 0
    for part in parts:
        for start in range(0, len(part), chunk):
            block = part[start:start + chunk]
            out[row:row + len(block)] = transform(block)
            row += len(block)
    return out
