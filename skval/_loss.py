"""The LossVal criterion: the one definition of the loss.

For a batch ``B`` with rows ``x_n``, targets ``y_n`` and weights ``w_n``::

    loss = L_w(B) * OT_w(B, R) ** ot_power
    L_w  = mean_n w_n * l(y_n, f(x_n))          (cross-entropy or squared error)
    OT_w = optimal transport cost between the batch rows with masses w / sum(w)
           and the reference rows R with uniform masses

The weights are not the criterion's: the training step passes the batch's weights
(``skval._rowstate.RowState`` keeps them). The cost matrix does not depend on the
weights, so it is built without gradient. The solvers (``skval._ot``) return the
gradient of the OT cost with respect to the masses; ``normalised_masses`` carries it
back to ``w`` through the normalisation, and ``WeightedLoss`` gives the loss's
gradients in closed form: in the weights, and to the network as the task loss's
gradient times ``OT_w ** ot_power``.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import _ot
from ._arrays import matmul_t

# Smallest mass a row may carry inside the OT term: a zero mass gives NaN
# gradients in Sinkhorn and an undefined normalisation when a whole batch is 0.
_MIN_MASS = 1e-6


def make_solver(ot_method, ot_reg, seed):
    """The ``skval._ot`` solver of ``ot_method`` (``"exact"``: in blocks when large)."""
    if ot_method == "exact":
        return _ot.BlockSolver(seed)
    if ot_method == "sinkhorn":
        return _ot.EntropicSolver(ot_reg)
    raise ValueError(f"unknown ot_method {ot_method!r}")


class LossValLoss(nn.Module):
    """The LossVal loss of a batch, given its rows' weights.

    Parameters
    ----------
    task : {"classification", "regression"}
        Selects cross-entropy or squared error as the per-row loss.
    reference : torch.Tensor of shape (n_reference, n_features)
        Reference rows the batches are transported to.
    cost_scale : float
        Fixed divisor of the squared Euclidean cost (keeps the cost near 1
        whatever the number and scale of the features).
    ot_method : {"exact", "sinkhorn"}
        Exact network simplex, in blocks for large batches, or entropic OT
        (``skval._ot``).
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
    reference_position : torch.Tensor of int or None
        When the reference rows are training rows: for each training row (in the
        numbering of the batches' ``idx``), its place in the reference or -1. A
        batch is then transported to the reference rows outside itself, so that no
        row is matched to its own copy (which would make the rows drawn into the
        reference look better than the rest).
    block_seed : int
        Seed of the random split of the reference into blocks for large batches.
    """

    def __init__(self, task, reference, cost_scale=1.0, ot_method="exact", ot_reg=0.1,
                 ot_power=2.0, reference_targets=None, label_weight=0.0,
                 reference_position=None, block_seed=0):
        super().__init__()
        self.register_buffer("reference", torch.as_tensor(reference, dtype=torch.float32))
        m = self.reference.shape[0]
        self.register_buffer("reference_mass", torch.full((m,), 1.0 / m, dtype=torch.float64))
        self.task = task
        self.cost_scale = float(cost_scale)
        self.ot_power = ot_power
        self.label_weight = float(label_weight) if reference_targets is not None else 0.0
        if reference_targets is None:
            reference_targets = torch.zeros(m)
        self.register_buffer("reference_targets", torch.as_tensor(reference_targets))
        if reference_position is not None:
            reference_position = torch.as_tensor(reference_position, dtype=torch.long)
        self.register_buffer("reference_position", reference_position)
        self.solver = make_solver(ot_method, ot_reg, block_seed)

    def forward(self, y_pred, y_true, idx, X, weights, ot_weights=None, log_prior=None):
        """The LossVal loss of a batch.

        Parameters
        ----------
        y_pred : torch.Tensor
            The network's output for the batch rows.
        y_true : torch.Tensor
            Their encoded targets.
        idx : torch.Tensor of int
            Their row numbers.
        X : torch.Tensor of shape (batch, n_features)
            Their features for the OT cost.
        weights : torch.Tensor of shape (batch,)
            Their weights.
        ot_weights : torch.Tensor of shape (batch,) or None
            The same weights for the OT term (``None``: ``weights``). A second leaf
            of the same values separates the weights' gradient into its task (label
            or target) side and its OT (feature) side.
        log_prior : torch.Tensor of shape (n_classes,) or None
            Classification: the log class frequencies; the weights' gradient then
            comes from the prior-adjusted losses (``evidence_losses``).

        Returns
        -------
        loss : torch.Tensor
            ``mean(w * row_losses) * OT_w ** ot_power``, a scalar.
        """
        if ot_weights is None:
            ot_weights = weights
        losses = self.row_losses(y_pred, y_true)
        evidence = losses.detach() if log_prior is None else \
            self.evidence_losses(y_pred, y_true, log_prior)
        distance, distance_grad = self.ot_distance(X, y_true, idx, ot_weights.detach())
        return WeightedLoss.apply(losses, weights, ot_weights, evidence, distance,
                                  distance_grad, self.ot_power)

    def row_losses(self, y_pred, y_true):
        """Unweighted loss of each row of the batch."""
        if self.task == "classification":
            return F.cross_entropy(y_pred, y_true, reduction="none")
        return ((y_pred - y_true) ** 2).reshape(len(y_pred), -1).sum(dim=1)

    @staticmethod
    @torch.no_grad()
    def evidence_losses(y_pred, y_true, log_prior):
        """Each row's cross-entropy on logits adjusted by the log class frequencies.

        Logit adjustment (Menon et al. 2021): a network's output carries each
        class's frequency as a constant offset, so with plain cross-entropy every
        row of a rare class has a large loss and a large push down, wrong label or
        not. The adjusted loss compares a row with its class's own base rate; a
        wrong label still disagrees with the features. The network itself trains on
        the plain cross-entropy.
        """
        return F.cross_entropy(y_pred.detach() - log_prior.to(y_pred.dtype), y_true,
                               reduction="none")

    def ot_distance(self, X, y, idx, weights):
        """OT cost between the batch rows with masses from ``weights`` and the reference.

        Returns
        -------
        distance : float
        grad : torch.Tensor like ``weights``
            The distance's gradient in ``weights`` (through their normalisation).
        """
        host_arrays = self._host_arrays()
        kept = self.reference_kept(idx, host_arrays)
        problem = self._host_problem if self.solver.host else self._device_problem
        w, reference_masses, cost = problem(X, y, weights, kept, host_arrays)
        masses, to_weights = normalised_masses(w)
        value, mass_grad = self.solver.solve(masses, reference_masses, cost)
        return value, torch.as_tensor(to_weights(mass_grad), dtype=weights.dtype).to(weights.device)

    def _host_problem(self, X, y, weights, kept, host_arrays):
        """The weights, the reference masses and the cost, as float64 numpy (host solvers)."""
        b = host_arrays["mass"] if kept is None else np.full(len(kept), 1.0 / len(kept))
        cost = functools.partial(self._block_cost, host_arrays, _ot.to_numpy64(X),
                                 y.detach().cpu().numpy(), kept)
        return _ot.to_numpy64(weights), b, cost

    def _device_problem(self, X, y, weights, kept, host_arrays):
        """The same as tensors on the batch's device (solvers with ``host = False``;
        ``host_arrays`` unused)."""
        if kept is None:
            b = self.reference_mass
        else:
            kept = torch.from_numpy(kept).to(X.device)
            b = torch.full((len(kept),), 1.0 / len(kept), dtype=torch.float64, device=X.device)
        cost = functools.partial(self._block_cost, self._device_arrays(), X, y, kept)
        return weights.double(), b, cost

    # ------------------------------------------------------------------ the OT problem
    def _host_arrays(self):
        """The reference as float64 numpy arrays, built once per state of its buffers."""
        key = tuple((t.data_ptr(), t._version, t.dtype) for t in self._reference_buffers())
        cached = self.__dict__.get("_host_cache")
        if cached is None or cached[0] != key:
            reference = _ot.to_numpy64(self.reference)
            position = self.reference_position
            cached = (key, {"reference": reference, "sq_norm": (reference ** 2).sum(1),
                            "targets": self.reference_targets.detach().cpu().numpy(),
                            "mass": np.full(len(reference), 1.0 / len(reference)),
                            "position": None if position is None else position.cpu().numpy()})
            self._host_cache = cached  # a tuple: not a module attribute torch tracks
        return cached[1]

    def _reference_buffers(self):
        return [t for t in (self.reference, self.reference_targets, self.reference_position)
                if t is not None]

    def _block_cost(self, arrays, X, y, kept, rows=None, cols=None):
        """The cost of the batch rows ``rows`` to the kept reference rows ``cols``."""
        if cols is not None:
            cols = cols if kept is None else kept[cols]
        elif kept is not None:
            cols = kept
        if rows is not None:
            X, y = X[rows], y[rows]
        return pair_cost(X, y, arrays, cols, self.cost_scale, self.label_weight,
                         self.task == "classification")

    @torch.no_grad()
    def cost(self, X, y, keep=None):
        """Scaled squared Euclidean cost to the kept reference rows, plus the target term.

        ``keep``: a mask or index of the reference rows (None: all).
        """
        return self._block_cost(self._device_arrays(), X, y, keep)

    def _device_arrays(self):
        """The reference's rows, squared norms and targets, as the buffers' tensors."""
        return {"reference": self.reference, "targets": self.reference_targets,
                "sq_norm": self.reference.pow(2).sum(1)}

    def reference_kept(self, idx, host_arrays=None):
        """The reference rows a batch with rows ``idx`` is transported to, a numpy index.

        None: all of them (no reference row in the batch, or every one).
        ``host_arrays``: the reference's (``_host_arrays``), when the caller has them.
        """
        if self.reference_position is None:
            return None
        position = (host_arrays or self._host_arrays())["position"][idx.cpu().numpy()]
        position = position[position >= 0]
        m = len(self.reference)
        if len(position) == 0 or len(position) == m:
            return None
        keep = np.ones(m, dtype=bool)
        keep[position] = False
        return np.flatnonzero(keep)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_host_cache", None)
        return state


def pair_cost(X, y, arrays, cols, cost_scale, label_weight, classification):
    """Scaled squared Euclidean cost of the rows ``X`` to reference rows, plus the target term.

    Numpy arrays or torch tensors alike (the same operators): ``arrays`` holds the
    reference rows (``"reference"``), their squared norms (``"sq_norm"``) and targets
    (``"targets"``); ``cols`` selects reference rows (None: all).
    """
    reference, sq_norm, targets = arrays["reference"], arrays["sq_norm"], arrays["targets"]
    if cols is not None:
        reference, sq_norm, targets = reference[cols], sq_norm[cols], targets[cols]
    X = X.astype(reference.dtype) if isinstance(X, np.ndarray) else X.to(reference.dtype)
    # |x - r|^2 by the norms: one matrix product (clipped: rounding can go below 0)
    cost = ((X * X).sum(1)[:, None] + sq_norm[None, :] - 2 * matmul_t(X, reference)).clip(min=0)
    cost = cost / cost_scale
    if label_weight > 0:
        if classification:
            cost = cost + label_weight * (y[:, None] != targets[None, :])
        else:
            diff = y.reshape(len(y), -1)[:, None, :] - targets.reshape(len(targets), -1)[None]
            cost = cost + label_weight * (diff ** 2).sum(-1)
    return cost


def normalised_masses(weights):
    """The batch rows' masses in the OT term and the chain rule back to ``weights``.

    The masses are the weights floored at ``_MIN_MASS`` and divided by their sum
    (numpy arrays or torch tensors alike). Returns the masses and a function that
    turns a gradient in the masses into the gradient in ``weights``.
    """
    floored = weights.clip(min=_MIN_MASS)
    total = floored.sum()
    masses = floored / total

    def to_weights(grad):
        # d mass_m / d w_n = (delta_mn - mass_m) / total, and 0 where the floor holds
        return (grad - (grad * masses).sum()) / total * (weights >= _MIN_MASS)
    return masses, to_weights


class WeightedLoss(torch.autograd.Function):
    """``mean(w * losses) * distance ** power``, its weights' gradient in closed form.

    One autograd node for what would otherwise be a dozen small ones. ``weights``
    and ``ot_weights`` hold the same values (two leaves split the weights' gradient
    into its task side and its OT side); the task side's gradient is ``evidence``
    (the row losses, or their prior-adjusted form), the OT side's comes from
    ``distance_grad``, the distance's gradient in the weights.
    """

    @staticmethod
    def forward(ctx, losses, weights, ot_weights, evidence, distance, distance_grad, power):
        n = len(losses)
        factor = distance ** power / n
        task_mean = torch.dot(weights.to(losses.dtype), losses.detach()) / n
        ctx.save_for_backward(weights, evidence, distance_grad)
        ctx.factor = factor
        ctx.ot_factor = task_mean * (power * distance ** (power - 1) if distance > 0 or power >= 1
                                     else 0.0)
        return task_mean * (factor * n)

    @staticmethod
    def backward(ctx, grad_output):
        weights, evidence, distance_grad = ctx.saved_tensors
        scaled = grad_output * ctx.factor
        grads = [weights * scaled if ctx.needs_input_grad[0] else None,
                 evidence * scaled if ctx.needs_input_grad[1] else None,
                 distance_grad * (grad_output * ctx.ot_factor) if ctx.needs_input_grad[2]
                 else None]
        return (*grads, None, None, None, None)
