"""The LossVal criterion: the one definition of the loss.

For a batch ``B`` with rows ``x_n``, targets ``y_n`` and weights ``w_n``::

    loss = L_w(B) * OT_w(B, R) ** ot_power
    L_w  = mean_n w_n * l(y_n, f(x_n))          (cross-entropy or squared error)
    OT_w = optimal transport cost between the batch rows with masses w / sum(w)
           and the reference rows R with uniform masses

The weights are not the criterion's: the training step passes the batch's weights
(``skval._rowstate.RowState`` keeps them). The cost matrix does not depend on the
weights, so it is built without gradient. The solvers (``skval._ot``) return the
gradient of the OT cost with respect to the masses; autograd carries it back to ``w``
through the normalisation, and carries ``OT_w ** ot_power`` to the network as a factor
of the task loss's gradient.
"""

from __future__ import annotations

import functools

import torch
from torch import nn
from torch.nn import functional as F

from . import _ot

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
        if log_prior is None:
            task_loss = (weights * losses).mean()
        else:  # the same value; the weights' gradient from the prior-adjusted losses
            evidence = self.evidence_losses(y_pred, y_true, log_prior)
            fixed = weights.detach()
            task_loss = (fixed * losses).mean() + ((weights - fixed) * evidence).mean()
        distance = self.ot_distance(X, y_true, idx, ot_weights).to(task_loss.dtype)
        return task_loss * distance ** self.ot_power

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
        """OT cost between the batch rows with masses from ``weights`` and the reference."""
        keep = self.reference_kept(idx)
        cost = functools.partial(self._cost_block, X, y, keep)
        return _ot.OTCost.apply(self.masses(weights), self.reference_masses(keep), cost,
                                self.solver)

    @staticmethod
    def masses(weights):
        """Masses of the batch rows in the OT term: the weights, floored and normalised."""
        mass = weights.clamp_min(_MIN_MASS).double()
        return mass / mass.sum()

    # ------------------------------------------------------------------ the OT problem
    @torch.no_grad()
    def _cost_block(self, X, y, keep, rows=None, cols=None):
        """The cost of the batch rows ``rows`` to the kept reference rows ``cols``."""
        if rows is None:
            return self.cost(X, y, keep)
        kept = torch.arange(len(self.reference), device=X.device) if keep is None \
            else torch.nonzero(keep).squeeze(1)
        return self.cost(X[rows], y[rows], kept[cols])

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
