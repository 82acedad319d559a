"""The LossVal criterion: a weighted task loss times a weighted OT distance.

For a batch ``B`` with rows ``x_n``, targets ``y_n`` and learnable weights ``w_n``::

    loss = L_w(B) * OT_w(B, R) ** 2
    L_w  = mean_n w_n * l(y_n, f(x_n))          (cross-entropy or squared error)
    OT_w = optimal transport cost between the batch rows with masses w / sum(w)
           and the reference rows R with uniform masses

The OT cost matrix does not depend on the weights, so it is built without
gradient; POT returns the dual potentials as the gradient of the OT cost with
respect to the masses, which flows back to ``w`` through the normalisation.
"""

from __future__ import annotations

import ot
import torch
from torch import nn
from torch.nn import functional as F

# Smallest mass a row may carry inside the OT term: a zero mass gives NaN
# gradients in Sinkhorn and an undefined normalisation when a whole batch is 0.
_MIN_MASS = 1e-6


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
    """

    def __init__(self, n_samples, task, reference, cost_scale=1.0, ot_method="exact",
                 ot_reg=0.1, ot_power=2.0, reference_targets=None, label_weight=0.0):
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

    def task_losses(self, y_pred, y_true):
        """Unweighted loss of each row of the batch."""
        if self.task == "classification":
            return F.cross_entropy(y_pred, y_true, reduction="none")
        return ((y_pred - y_true) ** 2).reshape(len(y_pred), -1).sum(dim=1)

    def cost(self, X, y):
        """Scaled squared Euclidean cost, plus the target term when enabled."""
        cost = torch.cdist(X, self.reference).pow_(2).div_(self.cost_scale)
        if self.label_weight > 0:
            ref = self.reference_targets
            if self.task == "classification":
                cost += self.label_weight * (y[:, None] != ref[None, :])
            else:
                cost += self.label_weight * torch.cdist(
                    y.reshape(len(y), -1).float(), ref.reshape(len(ref), -1).float()).pow_(2)
        return cost

    def ot_distance(self, X, y, w):
        """OT cost between rows ``X`` (targets ``y``) with masses ``w`` and the reference."""
        with torch.no_grad():
            cost = self.cost(X, y).double()
        mass = w.clamp_min(_MIN_MASS).double()
        mass = mass / mass.sum()
        if self.ot_method == "exact":
            return ot.emd2(mass, self.reference_mass, cost)
        # log-domain: a small reg on a cost of order 1 underflows the plain kernel
        return ot.sinkhorn2(mass, self.reference_mass, cost, self.ot_reg,
                            method="sinkhorn_log", stopThr=1e-6, numItermax=1000)

    def forward(self, y_pred, y_true, idx, X):
        w = self.data_weights[idx]
        task = (w * self.task_losses(y_pred, y_true)).mean()
        dist = self.ot_distance(X, y_true, w).to(task.dtype)
        return task * dist ** self.ot_power
