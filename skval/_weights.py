"""The update rule of the data weights with ``weight_update="batch"``."""

from __future__ import annotations

import math

import torch


class BatchScaledMomentum:
    """Adam-style update of the data weights that keeps the size of each row's gradient.

    Adam divides each weight's step by the root of that weight's own mean squared
    gradient, so every row whose gradient keeps its sign moves at the same speed
    whatever the size of its loss. Here the first moment is per row, as in Adam,
    but the second moment is shared by the batch: a running mean of the squared
    median absolute gradient of the batch rows. A typical row then moves about
    ``lr`` per step, like under Adam, and a row whose gradient is three times the
    batch's median moves three times as far.

    The update touches the batch rows' moments only where they get a gradient;
    the decay of every row's first moment is still one pass over ``n`` per step.

    Parameters
    ----------
    weights : torch.nn.Parameter
        The data weights.
    lr : float
        Step size.
    betas : tuple of float, default=(0.9, 0.999)
        Decay of the first moment (per row) and of the shared second moment.
    eps : float, default=1e-12
        Added to the root of the second moment.
    """

    def __init__(self, weights, lr, betas=(0.9, 0.999), eps=1e-12):
        self.weights = weights
        self.lr = lr
        self.betas = betas
        self.eps = eps
        self.exp_avg = torch.zeros_like(weights, memory_format=torch.contiguous_format)
        self.exp_avg_sq = 0.0
        self.steps = 0

    @torch.no_grad()
    def step(self, idx, grad):
        """Move the weights by ``grad``, this step's gradient of the batch rows ``idx``."""
        beta1, beta2 = self.betas
        self.steps += 1
        self.exp_avg.mul_(beta1)
        self.exp_avg.index_add_(0, idx, grad * (1 - beta1))
        median = float(grad.abs().median()) if len(grad) else 0.0
        self.exp_avg_sq = beta2 * self.exp_avg_sq + (1 - beta2) * median ** 2
        denom = math.sqrt(self.exp_avg_sq / (1 - beta2 ** self.steps)) + self.eps
        self.weights.add_(self.exp_avg, alpha=-self.lr / (1 - beta1 ** self.steps) / denom)
