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

    Every step moves every row: its first moment decays and still moves its weight
    (``w -= c_s * m``, with ``c_s`` the step's size). The update is *lazy*: a step
    touches only the batch rows' state, and a row's skipped steps are replayed when it
    is next read (``catch_up``) or at ``flush``. Between its own steps, from step
    ``t0`` on, a row's momentum is ``m0 * beta1 ** (s - t0)``, so its weight has moved
    by ``-m0 * sum_s c_s * beta1 ** (s - t0)``; that sum depends only on ``t0`` and is
    kept per step in ``_moved``, which every step extends over the last
    ``_window`` steps (beyond, ``beta1 ** k`` is below 2 ** -64 and the terms
    vanish in float64). So a step costs O(batch + window), not O(n), and gives the
    eager update's weights up to float rounding (tested against it).

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
    clip : bool, default=False
        Keep caught-up weights at 0 or above (as clipping every row after every step
        would: between its own steps a row only drifts one way).
    """

    def __init__(self, weights, lr, betas=(0.9, 0.999), eps=1e-12, clip=False):
        self.weights = weights
        self.lr = lr
        self.betas = betas
        self.eps = eps
        self.clip = clip
        device = weights.device
        self.exp_avg = torch.zeros_like(weights, memory_format=torch.contiguous_format)
        # the step (counted since the last flush) through which each row is up to date
        self.last_step = torch.zeros(len(weights), dtype=torch.long, device=device)
        self.exp_avg_sq = torch.zeros((), dtype=torch.float64, device=device)
        self.steps = 0  # all steps, for the bias corrections
        beta1 = betas[0]
        self._window = 1 if beta1 <= 0 else max(1, math.ceil(-64 * math.log(2) / math.log(beta1)))
        # beta1 ** age: ages window..1 (for _extend_moved), and 0..window then 0 beyond
        ages = torch.arange(self._window, 0, -1, dtype=torch.float64, device=device)
        self._decay_by_age = beta1 ** ages
        self._momentum_left = torch.cat([beta1 ** ages.flip(0).sub(1), ages.new_zeros(2)])
        self._reset_moved()

    def _reset_moved(self):
        """Start a new span of steps: every row is up to date at local step 0."""
        self._local = 0
        self._moved = torch.zeros(64, dtype=torch.float64, device=self.weights.device)

    @torch.no_grad()
    def catch_up(self, idx):
        """Replay the steps the rows ``idx`` skipped, so that their weights are current.

        The training step calls it before it reads the batch rows' weights.
        """
        self._replay(idx, self._local)

    @torch.no_grad()
    def flush(self):
        """Bring every row up to date (O(n): once per epoch, not per step)."""
        self._replay(slice(None), self._local)
        self._reset_moved()
        self.last_step.zero_()

    def _replay(self, rows, now):
        last = self.last_step[rows]
        momentum = self.exp_avg[rows]
        weights = self.weights.data[rows].sub_(momentum * self._moved[last].to(momentum.dtype))
        self.weights.data[rows] = weights.clamp_(min=0.0) if self.clip else weights
        age = (now - last).clamp_(max=self._window + 1)
        self.exp_avg[rows] = momentum.mul_(self._momentum_left[age].to(momentum.dtype))
        self.last_step[rows] = now

    @torch.no_grad()
    def step(self, idx, grad):
        """Move the weights by ``grad``, this step's gradient of the batch rows ``idx``.

        The batch rows must be current: ``catch_up(idx)`` before their gradient is
        taken (a row left behind would lose its skipped steps).
        """
        beta1, beta2 = self.betas
        self.steps += 1
        self._local += 1
        median = grad.abs().median().double() if len(grad) else grad.new_zeros((), dtype=torch.float64)
        self.exp_avg_sq.mul_(beta2).add_(median.square() * (1 - beta2))
        denom = (self.exp_avg_sq / (1 - beta2 ** self.steps)).sqrt_().add_(self.eps)
        size = (self.lr / (1 - beta1 ** self.steps)) / denom  # c_s of this step
        self._extend_moved(size)  # this step's move of the rows outside the batch
        momentum = self.exp_avg[idx].mul_(beta1).add_(grad, alpha=1 - beta1)
        self.exp_avg[idx] = momentum
        self.weights.data[idx] -= momentum * size.to(momentum.dtype)
        self.last_step[idx] = self._local

    def _extend_moved(self, size):
        """Add this step's move to the rows last updated in the window before it."""
        now = self._local
        if now >= len(self._moved):
            grown = torch.zeros(2 * len(self._moved), dtype=torch.float64, device=self._moved.device)
            grown[:len(self._moved)] = self._moved
            self._moved = grown
        start = max(0, now - self._window)
        self._moved[start:now] += size * self._decay_by_age[self._window - (now - start):]
