"""Optimal-transport solvers of the OT term and their gradients in the source masses.

Every solver takes numpy (exact) or torch (entropic) masses ``a`` of the batch rows,
``b`` of the reference rows, and a cost matrix ``M``; the exact ones return the cost
and its gradient with respect to ``a``, which ``skval._loss`` feeds to autograd.

* ``solve_exact``: POT's network simplex on one problem.
* ``solve_blocks``: exact OT restricted to diagonal blocks of the batch and the
  reference, a feasible plan of the full problem at a fraction of its work.
* ``sinkhorn``: entropic OT in the log domain, differentiated at convergence
  (envelope theorem), not through its iterations.
"""

from __future__ import annotations

import math

import numpy as np
import ot

try:  # POT's network simplex itself, without ot.emd2's backend dispatch around it
    from ot.lp.emd_wrap import check_result, emd_c
except ImportError:  # pragma: no cover - a POT that moved it: go through ot.lp.emd
    emd_c = None

    def check_result(result_code):
        """``ot.lp.emd`` has already warned."""

# Network simplex iteration cap, POT's default.
_EMD_MAX_ITER = 100_000
# Size (batch rows x reference rows) of the OT work per step above which a batch is
# split into blocks: the default batch of 32 against the default reference of 256 is
# four blocks of 8 x 64, a sixteenth of the network simplex's work of one 32 x 256
# problem, and better values on both benchmark task sets (BENCHMARKS.md, section 7).
# The blocks keep at least these many rows.
BUDGET = 32 * 64
_MIN_BLOCK_REFERENCE = 32
_MIN_BLOCK_ROWS = 8


def _emd(a, b, M):
    """Network simplex for masses of equal sums: cost, dual potentials ``u``, ``v``, result code."""
    if emd_c is None:  # pragma: no cover
        _, log = ot.lp.emd(a, b, M, numItermax=_EMD_MAX_ITER, log=True)
        return log["cost"], log["u"], log["v"], log["result_code"]
    _, cost, u, v, result_code = emd_c(a, b, M, _EMD_MAX_ITER, 1)
    return cost, u, v, result_code


def solve_exact(a, b, M):
    """Exact OT between float64 masses ``a``, ``b`` for the cost ``M``.

    What ``ot.emd2`` does for its value and gradient, without its backend dispatch
    and per-call class creation: POT's network simplex (``emd_c``) and the centred
    dual potential of ``a``, the gradient of the cost with respect to ``a``.

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


def n_blocks(n_rows, n_reference):
    """Number of diagonal blocks ``solve_blocks`` cuts a batch against a reference into."""
    k = math.ceil(n_rows * n_reference / BUDGET)
    return max(1, min(k, n_reference // _MIN_BLOCK_REFERENCE, n_rows // _MIN_BLOCK_ROWS))


def block_parts(n_rows, order, k):
    """``(rows, group)`` of each of ``k`` blocks.

    ``rows`` is a contiguous slice of the batch rows, ``group`` an array of reference
    rows: the reference rows in the random ``order``, cut into ``k`` groups.
    """
    sizes = np.full(k, n_rows // k)
    sizes[: n_rows % k] += 1
    ends = np.cumsum(sizes)
    return [(slice(end - size, end), group)
            for end, size, group in zip(ends, sizes, np.array_split(order, k))]


def solve_blocks(a, b, blocks):
    """Exact OT restricted to diagonal blocks.

    The network simplex costs about ``len(a) * len(b)`` per problem, so a large batch
    against the whole reference dominates a training step. The batch rows (already
    in random order) are cut into ``k`` contiguous blocks and the reference rows, in
    a random order, into ``k`` groups (``block_parts``); block ``i`` is transported
    to group ``i`` with the group's masses rescaled to the block's mass. That is a
    feasible plan of the full problem (an upper bound of its cost) at ``1 / k`` of
    the work, and each block keeps the full problem's ratio of batch to reference
    rows.

    Parameters
    ----------
    a, b : ndarray of float64
        Masses of the batch rows and of the reference rows.
    blocks : iterable of (slice, ndarray, ndarray)
        ``(rows, group, M)`` of each block: its batch rows, its reference rows and
        their cost matrix.

    Returns
    -------
    cost : float
    grad_a : ndarray of shape (len(a),)
        Gradient of the cost with respect to ``a``.
    result_code : int
        The worst code of the blocks, for ``check_result``.
    """
    total, grad, worst = 0.0, np.empty_like(a), 1
    for rows, group, M in blocks:
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


def sinkhorn(a, b, M, reg, tol=1e-6, max_iter=1000):
    """Entropic OT cost between torch masses ``a`` and ``b``, differentiable in ``a``.

    The cost is ``<M, P> + reg * KL(P | a b^T)`` at the Sinkhorn plan ``P``: zero or
    more, like the exact cost. Log-domain iterations (a small ``reg`` on a cost of
    order 1 underflows the plain kernel), with the gradient set at convergence
    (envelope theorem) instead of backpropagated through the iterations, so memory
    and the autograd graph do not grow with the iterations.

    POT's envelope gradient in ``a`` is that of ``reg_type="entropy"``
    (``<M, P> + reg * sum P log P``); with ``"KL"`` POT keeps it and misses the
    ``-reg * log a`` of that cost. For masses of total 1 with marginals ``a`` and
    ``b``, ``KL(P | a b^T) = sum P log P - sum a log a - sum b log b``, so the entropy
    cost plus the two marginal entropies, which autograd differentiates, is the KL
    cost with its exact gradient.

    Parameters
    ----------
    a, b : torch.Tensor
        Masses of the batch rows and of the reference rows, each of total 1.
    M : torch.Tensor of shape (len(a), len(b))
        Cost matrix.
    reg : float
        Entropic regularisation.
    tol : float, default=1e-6
        Stop when the violation of the ``b`` marginal (its norm) is below ``tol``;
        reachable in float32 too (POT's default 1e-9 is not).
    max_iter : int, default=1000
        Iteration cap (POT warns when it is reached).

    Returns
    -------
    cost : torch.Tensor
        A scalar.
    """
    result = ot.solve(M, a, b, reg=reg, reg_type="entropy", max_iter=max_iter, tol=tol,
                      grad="envelope")
    return result.value - reg * (a.xlogy(a).sum() + b.xlogy(b).sum())
