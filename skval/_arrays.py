"""Small array operations that read the same on numpy arrays and torch tensors.

The per-step work on the data weights is a few dozen operations on batch-sized
arrays. On the CPU each torch operation costs several microseconds of dispatch, a
numpy one about one, so the training step does that work on numpy views of the CPU
tensors (the same memory) and on the tensors themselves on any other device: one
piece of code, written with the operators both share and the helpers below.
"""

from __future__ import annotations

import numpy as np
import torch


def host_views(*values, host=True):
    """numpy views (the same memory) of CPU tensors; anything else as it is.

    ``host=False`` keeps tensors as tensors (the device path, also on the CPU).
    """
    return [_host_view(v) for v in values] if host else list(values)


def _host_view(value):
    if isinstance(value, torch.Tensor) and value.device.type == "cpu":
        return (value.detach() if value.requires_grad else value).numpy()
    return value


def lower_median(values):
    """The lower of the two middle values (torch's ``median``), a float; 0 when empty."""
    if len(values) == 0:
        return 0.0
    if isinstance(values, np.ndarray):
        k = (len(values) - 1) // 2
        return float(np.partition(values, k)[k])
    return values.median().item()


def cast(values, like):
    """``values`` in the dtype of ``like``."""
    if isinstance(values, np.ndarray):
        return values.astype(like.dtype, copy=False)
    return values.to(like.dtype)


def matmul_t(a, b):
    """``a @ b.T``; for numpy arrays through torch, under torch's thread count.

    numpy's BLAS would start threads of its own for a batch-sized product, which spin
    beside torch's and ignore ``torch.set_num_threads``.
    """
    if isinstance(a, np.ndarray):
        return torch.from_numpy(a).mm(torch.from_numpy(b).T).numpy()
    return a @ b.T


def zeros(n, like):
    """``n`` zeros of the kind, dtype and device of ``like``."""
    if isinstance(like, np.ndarray):
        return np.zeros(n, dtype=like.dtype)
    return like.new_zeros(n)
