"""Optimal-transport solvers of the OT term and their gradients in the source masses.

The interface (``Solver``): ``solve(masses, reference_masses, cost) -> (value, grad)``,
the OT cost between the batch rows' masses and the reference rows' masses and its
gradient with respect to the batch masses. ``cost(rows=None, cols=None)`` builds (a
block of) the cost matrix, only when a solver asks for it. A host solver
(``host = True``) gets float64 numpy arrays and a cost that returns one; any other
gets float64 tensors on the training device and a cost on that device. ``skval._loss``
carries the gradient on to the weights.

* ``ExactSolver``: POT's network simplex on one problem (``solve_exact``).
* ``BlockSolver``: exact OT restricted to diagonal blocks of the batch and the
  reference (``solve_blocks``), a feasible plan of the full problem at a fraction of
  its work; one exact problem when the batch is small.
* ``EntropicSolver``: entropic OT in the log domain (``sinkhorn``), differentiated at
  convergence (envelope theorem), not through its iterations.

The exact solvers run on the host (``host = True``): the batch's weights and features
cross to the CPU once per step, the problem is built there in numpy (a few
microseconds an operation, where a small torch operation costs several), and the
gradient comes back. A solver for a device (a batched GPU Sinkhorn, say) subclasses
``Solver`` with ``host = False`` and keeps every tensor where it is; nothing else
changes.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import ot
import torch

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
# Up to this many batch x reference entries the whole cost matrix is built in one call
# and cut into blocks; above, only the blocks' entries are computed.
FULL_COST_MAX = 65_536


def to_numpy64(t):
    """A tensor as a contiguous float64 numpy array on the host."""
    return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float64)


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
    rows: the reference rows in the random ``order``, cut into ``k`` groups (as
    ``np.array_split`` cuts them).
    """
    return [(rows, order[cols]) for rows, cols in _block_slices(n_rows, len(order), k)]


@functools.lru_cache(maxsize=64)
def _block_slices(n_rows, n_reference, k):
    """``(rows, cols)`` slices of each block: sizes as even as ``np.array_split`` makes them."""
    def cuts(n):
        sizes = np.full(k, n // k)
        sizes[: n % k] += 1
        ends = np.cumsum(sizes).tolist()
        return [slice(end - size, end) for end, size in zip(ends, sizes.tolist())]
    return tuple(zip(cuts(n_rows), cuts(n_reference)))


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


# ----------------------------------------------------------------------------- the interface

class Solver:
    """An OT solver: ``solve(masses, reference_masses, cost) -> (value, grad)``.

    ``host``: whether it solves on the CPU, in numpy (its inputs cross from the device).
    """

    host = True

    def solve(self, masses, reference_masses, cost):
        """OT cost of ``masses`` against ``reference_masses`` and its gradient in ``masses``.

        Parameters
        ----------
        masses, reference_masses : ndarray or torch.Tensor of float64
            Masses of the batch rows and of the reference rows, each of total 1
            (ndarrays for a host solver).
        cost : callable
            ``cost(rows=None, cols=None)``: the cost matrix between the batch rows
            ``rows`` (a slice) and the reference rows ``cols`` (an index array of the
            masses' kind); None: all. A float64 ndarray for a host solver, a float32 or
            float64 tensor otherwise.

        Returns
        -------
        value : float
        grad : ndarray or torch.Tensor of shape (len(masses),), like ``masses``
        """
        raise NotImplementedError


class ExactSolver(Solver):
    """One exact problem, POT's network simplex (``solve_exact``)."""

    def solve(self, masses, reference_masses, cost):
        value, grad, code = solve_exact(masses, reference_masses, cost())
        check_result(code)
        return value, grad


class BlockSolver(Solver):
    """Exact OT in ``n_blocks`` diagonal blocks (``solve_blocks``); one problem when small.

    Parameters
    ----------
    seed : int
        Seeds the random order of the reference rows cut into groups.
    """

    def __init__(self, seed):
        self.generator = torch.Generator().manual_seed(int(seed))

    def solve(self, masses, reference_masses, cost):
        a, b = masses, reference_masses
        n, m = len(a), len(b)
        k = n_blocks(n, m)
        if k == 1:
            value, grad, code = solve_exact(a, b, cost())
        else:
            parts = block_parts(n, torch.randperm(m, generator=self.generator).numpy(), k)
            value, grad, code = solve_blocks(a, b, _block_costs(cost, parts, n, m))
        check_result(code)
        return value, grad


def _block_costs(cost, parts, n, m):
    """``(rows, group, M)`` of each block of ``parts``: one cost call when small."""
    if n * m <= FULL_COST_MAX:
        full = cost()  # one call beats k small ones
        return [(rows, group, np.ascontiguousarray(full[rows][:, group])) for rows, group in parts]
    return [(rows, group, cost(rows, group)) for rows, group in parts]


class EntropicSolver(Solver):
    """Entropic OT (``sinkhorn``) with regularisation ``reg``, on the masses' device."""

    host = False

    def __init__(self, reg):
        self.reg = reg

    def solve(self, masses, reference_masses, cost):
        with torch.enable_grad():
            leaf = masses.detach().requires_grad_()
            value = sinkhorn(leaf, reference_masses, cost().double(), self.reg)
            (grad,) = torch.autograd.grad(value, leaf)
        return value.item(), grad
