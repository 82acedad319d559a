"""The LossVal criterion: the one definition of the loss and the data weights it owns.

For a batch ``B`` with rows ``x_n``, targets ``y_n`` and learnable weights ``w_n``::

    loss = L_w(B) * OT_w(B, R) ** ot_power
    L_w  = mean_n w_n * l(y_n, f(x_n))          (cross-entropy or squared error)
    OT_w = optimal transport cost between the batch rows with masses w / sum(w)
           and the reference rows R with uniform masses

The cost matrix does not depend on the weights, so it is built without gradient.
The exact solvers (``skval._ot``) return the dual potentials as the gradient of the
OT cost with respect to the masses; autograd carries it back to ``w`` through the
normalisation, and carries ``OT_w ** ot_power`` to the network as a factor of the
task loss's gradient.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import _ot

# Smallest mass a row may carry inside the OT term: a zero mass gives NaN
# gradients in Sinkhorn and an undefined normalisation when a whole batch is 0.
_MIN_MASS = 1e-6
# Up to this many batch x reference entries the whole cost matrix is built in one call
# and cut into blocks; above, only the blocks' entries are computed.
_FULL_COST_MAX = 65_536
# Rows clipped at 0 are ranked within this distance below 0 (see data_values).
_TIE_BAND = 1e-3
# Decay of the running scale of each side of the evidence (as Adam's second moment).
_EVIDENCE_BETA = 0.999


def _to_numpy64(t):
    return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float64)


class _ExactOT(torch.autograd.Function):
    """OT cost of the masses ``mass``, solved by ``solve``; differentiable in ``mass``.

    ``solve(mass)`` takes the masses as a float64 numpy array and returns the cost
    and its gradient with respect to them.
    """

    @staticmethod
    def forward(ctx, mass, solve):
        cost, grad = solve(_to_numpy64(mass))
        ctx.save_for_backward(torch.from_numpy(grad).to(mass.device))
        return torch.tensor(cost, dtype=mass.dtype, device=mass.device)

    @staticmethod
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return grad * grad_output, None


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
        Exact network simplex, in blocks for large batches (``skval._ot``), or
        entropic OT.
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
        Seed of the random split of the reference into blocks for large batches.
    n_classes : int or None
        Classification only: with the number of classes, the task side of the
        weights' gradient comes from prior-adjusted losses (see
        ``evidence_losses``); ``None`` leaves it as in the paper.
    """

    def __init__(self, n_samples, task, reference, cost_scale=1.0, ot_method="exact",
                 ot_reg=0.1, ot_power=2.0, reference_targets=None, label_weight=0.0,
                 reference_rows=None, random_state=0, n_classes=None):
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
        # what the run observed of each row: see record_evidence and clip_weights
        self.register_buffer("evidence", torch.zeros(n_samples, 2))
        self.register_buffer("clipped", torch.zeros(n_samples))
        self._evidence_sq, self._evidence_steps = [0.0, 0.0], 0  # see record_evidence
        self._generator = torch.Generator().manual_seed(int(random_state))
        # evidence_losses: the labels counted so far in training, per class
        self.n_classes = int(n_classes) if n_classes and task == "classification" else None
        self.register_buffer("class_counts", torch.zeros(self.n_classes or 0, dtype=torch.float64))
        self._grad_buffer = self._grad_rows = None  # see add_weight_grad

    # ------------------------------------------------------------------ the loss
    def forward(self, y_pred, y_true, idx, X, weights=None, ot_weights=None):
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
            Their features (for the OT cost).
        weights : torch.Tensor of shape (batch,) or None
            Their data weights; ``None`` takes ``data_weights[idx]``. A training
            step passes a batch-sized leaf instead, so that backward builds a
            gradient of the batch's size, not of ``n_samples``
            (see ``add_weight_grad``).
        ot_weights : torch.Tensor of shape (batch,) or None
            The same weights for the OT term (``None``: ``weights``). A second
            leaf of the same values separates the weights' gradient into its task
            (label or target) side and its OT (feature) side.

        Returns
        -------
        loss : torch.Tensor
            ``mean(w * row_losses) * OT_w ** ot_power``, a scalar.
        """
        if weights is None:
            weights = self.data_weights[idx]
        if ot_weights is None:
            ot_weights = weights
        losses = self.row_losses(y_pred, y_true)
        evidence = self.evidence_losses(y_pred, y_true)
        if evidence is None:
            task_loss = (weights * losses).mean()
        else:  # the same value; the weights' gradient from the prior-adjusted losses
            fixed = weights.detach()
            task_loss = (fixed * losses).mean() + ((weights - fixed) * evidence).mean()
        distance = self.ot_distance(X, y_true, idx, ot_weights).to(task_loss.dtype)
        return task_loss * distance ** self.ot_power

    def row_losses(self, y_pred, y_true):
        """Unweighted loss of each row of the batch."""
        if self.task == "classification":
            return F.cross_entropy(y_pred, y_true, reduction="none")
        return ((y_pred - y_true) ** 2).reshape(len(y_pred), -1).sum(dim=1)

    @torch.no_grad()
    def evidence_losses(self, y_pred, y_true):
        """Each row's loss as its weight's gradient sees it (``None``: ``row_losses``).

        With ``n_classes`` (``class_balanced=True``), the cross-entropy of the logits
        minus the log of the class frequencies among the labels counted so far (logit
        adjustment, Menon et al. 2021): a network's output carries each class's
        frequency as a constant offset, so with plain cross-entropy every row of a
        rare class has a large loss and a large push down, wrong label or not. The
        adjusted loss compares a row with its class's own base rate; a wrong label
        still disagrees with the features. The frequencies are those of the observed
        labels, wrong ones included, so a class swollen by wrong labels gets a small
        offset. The network itself trains on the plain cross-entropy.
        """
        if self.n_classes is None:
            return None
        if self.training:
            self.class_counts += torch.bincount(y_true, minlength=self.n_classes)[:self.n_classes]
        counts = self.class_counts + 1  # a class not seen yet is rare, not impossible
        log_prior = counts.log_() - counts.sum().log()
        return F.cross_entropy(y_pred.detach() - log_prior.to(y_pred.dtype), y_true,
                               reduction="none")

    def ot_distance(self, X, y, idx, weights):
        """OT cost between the batch rows with masses from ``weights`` and the reference."""
        keep = self.reference_kept(idx)
        mass = self.masses(weights)
        if self.ot_method == "exact":
            return _ExactOT.apply(mass, functools.partial(self._solve_exact, X, y, keep))
        with torch.no_grad():
            cost = self.cost(X, y, keep).double()
        return _ot.sinkhorn(mass, self.reference_masses(keep), cost, self.ot_reg)

    @staticmethod
    def masses(weights):
        """Masses of the batch rows in the OT term: the weights, floored and normalised."""
        mass = weights.clamp_min(_MIN_MASS).double()
        return mass / mass.sum()

    # ------------------------------------------------------------------ the OT problem
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

    def reference_masses(self, keep):
        """Uniform masses over the kept reference rows."""
        if keep is None:
            return self.reference_mass
        m = int(keep.sum())
        return torch.full((m,), 1.0 / m, dtype=torch.float64, device=keep.device)

    @torch.no_grad()
    def _solve_exact(self, X, y, keep, mass):
        """Exact OT cost of the masses ``mass`` (numpy) and its gradient, in blocks when large."""
        ref_mass = _to_numpy64(self.reference_masses(keep))
        n, m = len(mass), len(ref_mass)
        k = _ot.n_blocks(n, m)
        if k == 1:
            cost, grad, code = _ot.solve_exact(mass, ref_mass, _to_numpy64(self.cost(X, y, keep)))
        else:
            parts = _ot.block_parts(n, torch.randperm(m, generator=self._generator).numpy(), k)
            cost, grad, code = _ot.solve_blocks(mass, ref_mass, self._block_costs(X, y, keep, parts, m))
        _ot.check_result(code)
        return cost, grad

    def _block_costs(self, X, y, keep, parts, m):
        """``(rows, group, cost)`` of each block ``(rows, group)`` of ``parts`` (``m`` kept rows)."""
        if len(X) * m <= _FULL_COST_MAX:
            full = _to_numpy64(self.cost(X, y, keep))  # one call beats k small ones
            return [(rows, group, np.ascontiguousarray(full[rows][:, group]))
                    for rows, group in parts]
        kept = torch.arange(len(self.reference), device=X.device) if keep is None \
            else torch.nonzero(keep).squeeze(1)
        return [(rows, group, _to_numpy64(self.cost(X[rows], y[rows],
                                                    kept[torch.from_numpy(group).to(X.device)])))
                for rows, group in parts]

    # ------------------------------------------------------------------ the weights' gradient
    def add_weight_grad(self, idx, grad):
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

    @torch.no_grad()
    def record_evidence(self, idx, task_grad, ot_grad):
        """Add a step's gradient of the batch rows' weights, by side, to ``evidence``.

        A positive gradient pushes a weight down: it is evidence against the row,
        from its label or target (``task_grad``, the task term) or from its features
        (``ot_grad``, the OT term). Each side is divided by its own running scale (the
        root of a slow running mean of the squared batch median of its absolute
        value), so that the two sides are comparable, and a step late in training,
        when the losses are small, counts as much as an early one.
        """
        grads = torch.stack([task_grad, ot_grad], 1)
        self._evidence_steps += 1
        correction = 1 - _EVIDENCE_BETA ** self._evidence_steps
        scales = []
        for side, median in enumerate(grads.abs().median(dim=0).values.tolist()):
            self._evidence_sq[side] = (_EVIDENCE_BETA * self._evidence_sq[side]
                                       + (1 - _EVIDENCE_BETA) * median ** 2)
            scales.append(max(math.sqrt(self._evidence_sq[side] / correction), 1e-30))
        self.evidence.index_add_(0, idx, grads.div_(torch.tensor(scales, dtype=grads.dtype,
                                                                device=grads.device)))

    @torch.no_grad()
    def clip_weights(self, idx, every_row=False):
        """Clip the batch rows' weights at 0 and record how far below 0 they went.

        Without a record every clipped row would tie at 0; ``clipped`` keeps, for each
        row, the total its own steps would have taken it below 0, which orders them.
        ``every_row`` also clips the rows outside the batch (O(n)): for an update that
        moves them at every step (torch's optimizer); the lazy batch update clips
        them when it catches them up.
        """
        weights = self.data_weights
        batch = weights[idx]
        self.clipped.index_add_(0, idx, batch.clamp(max=0.0))
        if every_row:
            weights.clamp_(min=0.0)
        else:
            weights[idx] = batch.clamp_(min=0.0)

    def data_values(self):
        """The rows' weights; rows clipped at 0 ranked just below 0 by ``clipped``.

        A clipped row's value is ``-_TIE_BAND * c / (1 + c)`` with ``c`` the total
        its steps would have taken it below 0: lower the further it was pushed, but
        never more than ``_TIE_BAND`` below 0, so the scale of the values (and a
        2-means split of them) stays that of the weights.
        """
        weights = self.data_weights.detach()
        below = -self.clipped
        ranked = below.div(1 + below).mul_(-_TIE_BAND)
        return torch.where((weights <= 0) & (below > 0), ranked, weights)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_grad_buffer"] = state["_grad_rows"] = None  # training scratch of n floats
        return state
