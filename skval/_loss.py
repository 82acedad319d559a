"""The LossVal criterion: a weighted task loss times a weighted OT distance.

For a batch ``B`` with rows ``x_n``, targets ``y_n`` and learnable weights ``w_n``::

    loss = L_w(B) * OT_w(B, R) ** 2
    L_w  = mean_n w_n * l(y_n, f(x_n))          (cross-entropy or squared error)
    OT_w = optimal transport cost between the batch rows with masses w / sum(w)
           and the reference rows R with uniform masses

The OT cost matrix does not depend on the weights, so it is built without
gradient; POT returns the dual potentials as the gradient of the OT cost with
respect to the masses, which flows back to ``w`` through the normalisation.
Batches larger than the default 32 rows are transported in blocks
(``_solve_blocks``), which keeps the OT work per step near that of a 32-row batch.
"""

from __future__ import annotations


import math

import numpy as np
import ot
import torch
from torch import nn
from torch.nn import functional as F

try:  # POT's network simplex itself, without ot.emd2's backend dispatch around it
    from ot.lp.emd_wrap import check_result, emd_c
except ImportError:  # pragma: no cover - a POT that moved it: go through ot.lp.emd
    emd_c = None

    def check_result(result_code):
        """``ot.lp.emd`` has already warned."""

# Smallest mass a row may carry inside the OT term: a zero mass gives NaN
# gradients in Sinkhorn and an undefined normalisation when a whole batch is 0.
_MIN_MASS = 1e-6
# Network simplex iteration cap, POT's default.
_EMD_MAX_ITER = 100_000
# Size (batch rows x reference rows) of the OT work per step above which a batch is
# split into blocks (``_solve_blocks``): 32 x 256, the problem of the default batch
# size against the default reference; the blocks keep at least these many rows.
_OT_BUDGET = 32 * 256
_MIN_BLOCK_REFERENCE = 32
_MIN_BLOCK_ROWS = 16
# Up to this many batch x reference entries the whole cost matrix is built in one call
# and cut into blocks; above, only the blocks' entries are computed.
_FULL_COST_MAX = 65_536


def _emd(a, b, M):
    """Network simplex for masses of equal sums: cost, dual potentials ``u``, ``v``, result code."""
    if emd_c is None:  # pragma: no cover
        _, log = ot.lp.emd(a, b, M, numItermax=_EMD_MAX_ITER, log=True)
        return log["cost"], log["u"], log["v"], log["result_code"]
    _, cost, u, v, result_code = emd_c(a, b, M, _EMD_MAX_ITER, 1)
    return cost, u, v, result_code


def _solve_exact(a, b, M):
    """Exact OT between float64 numpy masses ``a``, ``b`` for the cost ``M``.

    What ``ot.emd2`` does for its value and gradient, without its backend
    dispatch and per-call class creation: POT's network simplex (``emd_c``,
    which releases the GIL) and the centred dual potential of ``a``, which is
    the gradient of the cost with respect to ``a``.

    Returns
    -------
    cost : float
    grad_a : ndarray of shape (len(a),)
    result_code : int
        For ``check_result`` (warns when the solver did not converge).
    """
    b = b * a.sum(0) / b.sum(0, keepdims=True)  # as ot.emd2: the same total mass
    cost, u, v, result_code = _emd(a, b, M)
    # centre the duals as ot.lp.center_ot_dual does (the same float operations)
    u = u + (np.sum(b * v, axis=0) - np.sum(a * u, axis=0)) / (np.sum(a, axis=0) + np.sum(b, axis=0))
    return cost, u - np.mean(u), result_code


def _n_blocks(n_rows, n_reference):
    """Number of independent OT blocks a batch is split into (see ``_solve_blocks``)."""
    k = math.ceil(n_rows * n_reference / _OT_BUDGET)
    return max(1, min(k, n_reference // _MIN_BLOCK_REFERENCE, n_rows // _MIN_BLOCK_ROWS))


def _block_parts(n_rows, order, k):
    """``(rows, group)`` of each block: a slice of the batch rows, an array of reference rows."""
    sizes = np.full(k, n_rows // k)
    sizes[: n_rows % k] += 1
    ends = np.cumsum(sizes)
    return [(slice(end - size, end), group)
            for end, size, group in zip(ends, sizes, np.array_split(order, k))]


def _solve_blocks(a, b, M, order):
    """Exact OT restricted to ``k = _n_blocks(*M.shape)`` diagonal blocks.

    The network simplex costs about ``len(a) * len(b)`` per problem, so a large batch
    against the full reference is the dominant cost of a training step. The batch
    rows (already in random order) are cut into ``k`` contiguous blocks and the
    reference rows, in the random ``order``, into ``k`` groups; block ``i`` is
    transported to group ``i`` with the group's masses rescaled to the block's
    mass. That is a feasible plan of the full problem (an upper bound of its cost)
    at ``1 / k`` of the work, and each block keeps the full problem's ratio of
    batch to reference rows. With ``k == 1`` it is the exact OT of the batch.

    Returns
    -------
    cost : float
    grad_a : ndarray of shape (len(a),)
        Gradient of the cost with respect to ``a`` (up to a constant when ``k == 1``).
    result_code : int
        The worst code of the blocks, for ``check_result``.
    """
    k = _n_blocks(*M.shape)
    if k == 1:
        return _solve_exact(a, b, M)
    return _solve_parts(a, b, [(rows, group, np.ascontiguousarray(M[rows][:, group]))
                               for rows, group in _block_parts(len(a), order, k)])


def _solve_parts(a, b, parts):
    """``_solve_blocks`` from the blocks' ``(rows, group, cost)``."""
    total, grad, worst = 0.0, np.empty_like(a), 1
    for rows, group, M in parts:
        a_i = a[rows]
        mass = a_i.sum()
        b_i = b[group] * (mass / b[group].sum())
        cost, u, v, code = _emd(a_i, b_i, M)
        # OT is 1-homogeneous in the block's mass (both marginals scale with it), so the
        # derivative along a_n includes the reference side: u_n + sum(b_i * v) / mass.
        grad[rows] = u + np.dot(b_i, v) / mass
        total += cost
        if code != 1:
            worst = code
    return total, grad, worst


def _to_numpy64(t):
    return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float64)


class _ExactOT(torch.autograd.Function):
    """Exact OT cost between masses ``a`` and ``b`` for the cost ``M``; differentiable in ``a``."""

    @staticmethod
    def forward(ctx, a, b, M, order):
        cost, grad_a, result_code = _solve_blocks(_to_numpy64(a), _to_numpy64(b), _to_numpy64(M), order)
        check_result(result_code)
        ctx.save_for_backward(torch.from_numpy(grad_a).to(a.device))
        return torch.tensor(cost, dtype=a.dtype, device=a.device)

    @staticmethod
    def backward(ctx, grad_output):
        (grad_a,) = ctx.saved_tensors
        return grad_a * grad_output, None, None, None


class PendingOT:
    """The solved OT factor of a training step, from ``LossValLoss.start_ot``."""

    def __init__(self, idx, w, mass, floored_sum, solved):
        self.idx = idx                  # row numbers of the batch
        self.w = w                      # their weights (float32 numpy copy)
        self.mass = mass                # OT masses: floored weights / floored_sum (float64)
        self.floored_sum = floored_sum
        self.solved = solved            # (cost, gradient wrt mass, result code)


class LossValLoss(nn.Module):
    """Criterion owning one learnable weight per training row.

    Parameters
    ----------
    n_samples : int
        Number of training rows, i.e. of weights.
    task : {"classification", "regression"}
        Selects cross-entropy or squared error as the per-row loss.
    reference : torch.Tensor of shape (n_reference, n_features)
        Reference rows the batches are transported to.
    cost_scale : float
        Fixed divisor of the squared Euclidean cost (keeps the cost near 1
        whatever the number and scale of the features).
    ot_method : {"exact", "sinkhorn"}
        Exact network simplex (``ot.emd2``) or entropic OT (``ot.sinkhorn2``).
    ot_reg : float
        Entropic regularisation, used by ``"sinkhorn"`` only.
    ot_power : float
        Exponent of the OT distance in the loss (2 in the paper's formula).
    reference_targets : torch.Tensor or None
        Encoded targets of the reference rows (class indices, or standardised
        regression targets); with ``label_weight > 0`` the cost also compares
        targets, so a row whose label disagrees with its neighbours in the
        reference is expensive to transport.
    label_weight : float
        Weight of the target term of the cost, in units of the scaled feature cost.
    reference_rows : torch.Tensor of int or None
        When the reference rows are training rows: their row numbers. A batch is
        then transported to the reference rows outside itself, so that no row is
        matched to its own copy (which would make the rows drawn into the
        reference look better than the rest).
    random_state : int
        Seed of the random split of the reference into blocks for large batches
        (see ``_solve_blocks``).
    """

    def __init__(self, n_samples, task, reference, cost_scale=1.0, ot_method="exact",
                 ot_reg=0.1, ot_power=2.0, reference_targets=None, label_weight=0.0,
                 reference_rows=None, random_state=0):
        super().__init__()
        self.data_weights = nn.Parameter(torch.ones(n_samples, dtype=torch.float32))
        self.register_buffer("reference", torch.as_tensor(reference, dtype=torch.float32))
        m = self.reference.shape[0]
        self.register_buffer("reference_mass", torch.full((m,), 1.0 / m, dtype=torch.float64))
        self.task = task
        self.cost_scale = float(cost_scale)
        self.ot_method = ot_method
        self.ot_reg = ot_reg
        self.ot_power = ot_power
        self.label_weight = float(label_weight) if reference_targets is not None else 0.0
        if reference_targets is None:
            reference_targets = torch.zeros(m)
        self.register_buffer("reference_targets", torch.as_tensor(reference_targets))
        position = None
        if reference_rows is not None:  # row number -> its place in the reference (-1: none)
            position = torch.full((n_samples,), -1, dtype=torch.long)
            position[torch.as_tensor(reference_rows, dtype=torch.long)] = torch.arange(m)
        self.register_buffer("reference_position", position)
        self._generator = torch.Generator().manual_seed(int(random_state))
        self._grad_buffer = self._grad_rows = None  # see _add_weight_grad

    def reference_kept(self, idx):
        """Mask of the reference rows a batch with rows ``idx`` is transported to (None: all)."""
        if self.reference_position is None:
            return None
        position = self.reference_position[idx]
        position = position[position >= 0]
        if len(position) == 0 or len(position) == len(self.reference):
            return None
        keep = torch.ones(len(self.reference), dtype=torch.bool, device=idx.device)
        keep[position] = False
        return keep

    def reference_order(self, n_rows, m):
        """A random order of ``m`` reference rows, for the blocks of ``_solve_blocks``."""
        if _n_blocks(n_rows, m) == 1:
            return None
        return torch.randperm(m, generator=self._generator).numpy()

    def reference_masses(self, keep):
        """Uniform masses over the kept reference rows."""
        if keep is None:
            return self.reference_mass
        m = int(keep.sum())
        return torch.full((m,), 1.0 / m, dtype=torch.float64, device=keep.device)

    def task_losses(self, y_pred, y_true):
        """Unweighted loss of each row of the batch."""
        if self.task == "classification":
            return F.cross_entropy(y_pred, y_true, reduction="none")
        return ((y_pred - y_true) ** 2).reshape(len(y_pred), -1).sum(dim=1)

    def cost(self, X, y, keep=None):
        """Scaled squared Euclidean cost to the kept reference rows, plus the target term.

        ``keep``: a mask or index of the reference rows (None: all).
        """
        reference = self.reference if keep is None else self.reference[keep]
        cost = torch.cdist(X, reference).pow_(2).div_(self.cost_scale)
        if self.label_weight > 0:
            ref = self.reference_targets if keep is None else self.reference_targets[keep]
            if self.task == "classification":
                cost += self.label_weight * (y[:, None] != ref[None, :])
            else:
                cost += self.label_weight * torch.cdist(
                    y.reshape(len(y), -1).float(), ref.reshape(len(ref), -1).float()).pow_(2)
        return cost

    @staticmethod
    def masses(w):
        """Masses of the batch rows in the OT term: the weights, floored and normalised.

        ``start_ot`` computes the same in numpy.
        """
        mass = w.clamp_min(_MIN_MASS).double()
        return mass / mass.sum()

    def ot_distance(self, X, y, w, idx=None):
        """OT cost between rows ``X`` (targets ``y``, row numbers ``idx``) with masses ``w``
        and the reference."""
        keep = None if idx is None else self.reference_kept(idx)
        with torch.no_grad():
            cost = self.cost(X, y, keep).double()
        mass = self.masses(w)
        ref_mass = self.reference_masses(keep)
        if self.ot_method == "exact":
            return _ExactOT.apply(mass, ref_mass, cost, self.reference_order(*cost.shape))
        # log-domain: a small reg on a cost of order 1 underflows the plain kernel
        return ot.sinkhorn2(mass, ref_mass, cost, self.ot_reg,
                            method="sinkhorn_log", stopThr=1e-6, numItermax=1000)

    def forward(self, y_pred, y_true, idx, X):
        w = self.data_weights[idx]
        task = (w * self.task_losses(y_pred, y_true)).mean()
        dist = self.ot_distance(X, y_true, w, idx).to(task.dtype)
        return task * dist ** self.ot_power

    # ------------------------------------------------------------------ split training step
    # ``loss = L_w * D`` with ``D = OT_w ** ot_power`` a scalar, so the gradient of every
    # parameter of the task term is ``D`` times its gradient of ``L_w``, and the batch weights
    # also get ``L_w * dD/dw``. The net backpropagates ``L_w``, then ``finish_step`` scales the
    # gradients by ``D`` and adds the OT part. The same value and gradients as ``forward`` +
    # ``backward`` up to float rounding.

    @property
    def can_split_step(self):
        """Whether ``start_ot`` / ``finish_step`` apply (exact OT only)."""
        return self.ot_method == "exact"

    def start_ot(self, X, y, idx):
        """Solve the OT problem of a training batch; returns a ``PendingOT``."""
        # ``masses`` in numpy: floor in float32, normalise in float64
        w = self.data_weights.detach()[idx].cpu().numpy()
        floored = np.maximum(w, np.float32(_MIN_MASS)).astype(np.float64)
        floored_sum = floored.sum()
        mass = floored / floored_sum
        keep = self.reference_kept(idx)
        ref_mass = _to_numpy64(self.reference_masses(keep))
        n_ref = len(ref_mass)
        k = _n_blocks(len(idx), n_ref)
        with torch.no_grad():
            if k == 1 or len(idx) * n_ref <= _FULL_COST_MAX:  # one cost call beats k small ones
                cost = _to_numpy64(self.cost(X, y, keep))
                solved = _solve_blocks(mass, ref_mass, cost, self.reference_order(len(idx), n_ref))
            else:  # as _solve_blocks, building only the blocks' costs (1 / k of the matrix)
                kept = torch.arange(len(self.reference), device=X.device) if keep is None \
                    else torch.nonzero(keep).squeeze(1)
                parts = []
                for rows, group in _block_parts(len(idx), self.reference_order(len(idx), n_ref), k):
                    ref = kept[torch.from_numpy(group).to(kept.device)]
                    parts.append((rows, group, _to_numpy64(self.cost(X[rows], y[rows], ref))))
                solved = _solve_parts(mass, ref_mass, parts)
        return PendingOT(idx, w, mass, floored_sum, solved)

    def finish_step(self, task, losses, pending, params):
        """Complete the gradients after ``task.backward()``; returns the loss (no graph).

        Parameters
        ----------
        task : torch.Tensor
            The weighted task loss ``L_w`` of the batch, computed with the batch's
            weights detached and already backpropagated through the network.
        losses : torch.Tensor
            The batch rows' unweighted task losses (``dL_w / dw_n = losses_n / b``).
        pending : PendingOT
            From ``start_ot`` for the same batch.
        params : iterable of torch.nn.Parameter
            Every parameter the optimizer updates (their gradients are scaled by ``D``).
        """
        cost, grad_mass, result_code = pending.solved
        check_result(result_code)
        task = task.detach()
        with torch.no_grad():
            # the float32 factor and its derivative, as autograd computes them in ``forward``
            dist = torch.tensor(cost, dtype=torch.float64, device=task.device).to(task.dtype)
            factor = dist ** self.ot_power
            d_factor = task * self.ot_power * dist ** (self.ot_power - 1)
            # back through the normalisation and the floor of the masses, in float64
            g = grad_mass * float(d_factor)
            g = g / pending.floored_sum - np.sum(g * pending.mass) / pending.floored_sum
            g = np.where(pending.w >= np.float32(_MIN_MASS), g, 0.0)
            weights = self.data_weights
            for p in params:
                if p.grad is not None and p is not weights:
                    p.grad.mul_(factor)
            idx = pending.idx
            grad_w = losses.detach().mul(factor / len(idx)).add_(torch.from_numpy(g).to(losses))
            self._add_weight_grad(idx, grad_w)
            return task * factor

    def _add_weight_grad(self, idx, grad):
        """Add ``grad`` to the gradient of the batch rows ``idx`` of the data weights.

        After ``zero_grad()`` (gradients set to None) the gradient is rebuilt in a
        buffer kept between steps, where only the previous batch's rows need
        zeroing: O(batch) work instead of allocating and zeroing all n weights.
        """
        weights = self.data_weights
        if weights.grad is not None:  # accumulating, or zeroed in place
            weights.grad.index_add_(0, idx, grad.to(weights.grad.dtype))
            return
        if self._grad_buffer is None:
            self._grad_buffer = torch.zeros_like(weights)
        else:
            self._grad_buffer[self._grad_rows] = 0.0
        self._grad_buffer[idx] = grad.to(weights.dtype)  # the rows of a batch are distinct
        self._grad_rows = idx
        weights.grad = self._grad_buffer

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_grad_buffer"] = state["_grad_rows"] = None  # training scratch of n floats
        return state
