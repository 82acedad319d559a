"""The update rules of the data weights, and the torch optimizers' fused kernels.

Both rules have one interface, used by ``skval._rowstate.RowState``: ``catch_up(rows)``
before the batch rows' weights are read, ``step(rows, grad)`` after their gradient is
taken, ``flush()`` to bring every row up to date, and ``export(rows)`` /
``load(rows, per_row)`` / ``load_shared(shared)`` for their state.

* ``BatchScaledMomentum`` (``weight_update="batch"``): lazy, O(batch) per step.
* ``OptimizerUpdate`` (``weight_update="row"``): a torch optimizer over the weights.
"""

from __future__ import annotations

import functools
import inspect
import math

import torch

from ._arrays import cast, host_views, lower_median, zeros


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
    host : bool, default=True
        On the CPU, work on numpy views of the state (``skval._arrays``); False keeps
        torch operations (what runs on another device).
    """

    moves_every_row = False  # outside the batch, rows move only when caught up

    def __init__(self, weights, lr, betas=(0.9, 0.999), eps=1e-12, clip=False, host=True):
        self.weights = weights
        self.lr = lr
        self.betas = betas
        self.eps = eps
        self.clip = clip
        self.host = host
        device = weights.device
        self.exp_avg = torch.zeros_like(weights, memory_format=torch.contiguous_format)
        # the step (counted since the last flush) through which each row is up to date
        self.last_step = torch.zeros(len(weights), dtype=torch.long, device=device)
        # the shared second moment: a host float (a step's scalars cost no tensor ops; the
        # loss is read to the host at every step anyway)
        self.exp_avg_sq = 0.0
        self.steps = 0  # all steps, for the bias corrections
        beta1 = betas[0]
        self._window = 1 if beta1 <= 0 else max(1, math.ceil(-64 * math.log(2) / math.log(beta1)))
        # beta1 ** age: ages window..1 (for _extend_moved), and 0..window then 0 beyond
        ages = torch.arange(self._window, 0, -1, dtype=torch.float64, device=device)
        self._decay_by_age, self._momentum_left = host_views(
            beta1 ** ages, torch.cat([beta1 ** ages.flip(0).sub(1), ages.new_zeros(2)]),
            host=host)
        self._reset_moved()

    def _views(self, *values):
        """The weights, the momenta, the rows' last steps and ``values``, as ``host`` says.

        The weights detached: the update writes them in place outside autograd (no
        ``torch.no_grad()`` needed, on any device).
        """
        return host_views(self.weights.detach(), self.exp_avg, self.last_step, *values,
                          host=self.host)

    def _reset_moved(self):
        """Start a new span of steps: every row is up to date at local step 0."""
        self._local = 0
        self._moved = zeros(64, like=self._decay_by_age)

    def catch_up(self, idx):
        """Replay the steps the rows ``idx`` skipped, so that their weights are current.

        The training step calls it before it reads the batch rows' weights.
        """
        self._replay(idx, self._local)

    def flush(self):
        """Bring every row up to date (O(n): once per epoch, not per step)."""
        self._replay(slice(None), self._local)
        self._reset_moved()
        self.last_step.zero_()

    def _replay(self, rows, now):
        weights, exp_avg, last_step, rows = self._views(rows)
        last = last_step[rows]
        momentum = exp_avg[rows]
        moved = weights[rows] - momentum * cast(self._moved[last], momentum)
        weights[rows] = moved.clip(min=0.0) if self.clip else moved
        age = (now - last).clip(max=self._window + 1)
        exp_avg[rows] = momentum * cast(self._momentum_left[age], momentum)
        last_step[rows] = now

    def step(self, idx, grad):
        """Move the weights by ``grad``, this step's gradient of the batch rows ``idx``.

        The batch rows must be current: ``catch_up(idx)`` before their gradient is
        taken (a row left behind would lose its skipped steps).
        """
        beta1, beta2 = self.betas
        self.steps += 1
        self._local += 1
        weights, exp_avg, last_step, idx, grad = self._views(idx, grad)
        median = lower_median(abs(grad))
        # as float64 tensor arithmetic would do it, operation by operation
        self.exp_avg_sq = self.exp_avg_sq * beta2 + median * median * (1 - beta2)
        denom = math.sqrt(self.exp_avg_sq / (1 - beta2 ** self.steps)) + self.eps
        size = (self.lr / (1 - beta1 ** self.steps)) / denom  # c_s of this step
        self._extend_moved(size)  # this step's move of the rows outside the batch
        momentum = exp_avg[idx] * beta1 + grad * (1 - beta1)
        exp_avg[idx] = momentum
        weights[idx] -= momentum * size
        last_step[idx] = self._local

    def _extend_moved(self, size):
        """Add this step's move to the rows last updated in the window before it."""
        now = self._local
        if now >= len(self._moved):
            grown = zeros(2 * len(self._moved), like=self._moved)
            grown[:len(self._moved)] = self._moved
            self._moved = grown
        start = max(0, now - self._window)
        self._moved[start:now] += size * self._decay_by_age[self._window - (now - start):]

    def export(self, rows):
        """``(per_row, shared)``: the rows' momenta and the shared moment (after ``flush``)."""
        return ({"exp_avg": self.exp_avg[rows].cpu()},
                {"exp_avg_sq": torch.tensor(self.exp_avg_sq, dtype=torch.float64),
                 "steps": self.steps})

    def load(self, rows, per_row):
        """Set the rows' momenta from ``export``."""
        self.exp_avg[rows] = per_row["exp_avg"].to(self.exp_avg.device)

    def load_shared(self, shared):
        """Set the shared moment and the step count from ``export``."""
        self.exp_avg_sq = float(shared["exp_avg_sq"])
        self.steps = int(shared["steps"])


class OptimizerUpdate:
    """``weight_update="row"``: a torch optimizer moves every weight at every step.

    The weights have an optimizer of their own (the network's class and keyword
    parameters, the weights' learning rate): the same update as one parameter group
    of the network's optimizer, whose fused kernel runs group by group.

    Parameters
    ----------
    weights : torch.nn.Parameter
        The data weights.
    optimizer : type
        A ``torch.optim.Optimizer`` class.
    lr : float
        The weights' learning rate.
    kwargs : dict
        Further keyword arguments of ``optimizer``.
    device_type : str
        Where the weights are (for the fused kernel).
    """

    moves_every_row = True

    def __init__(self, weights, optimizer, lr, kwargs, device_type):
        self.weights = weights
        groups = [{"params": [weights], "lr": lr}]
        kwargs = {"lr": lr, **kwargs}
        use_fused_kernels(groups, kwargs, optimizer, device_type)
        self.optimizer = optimizer(groups, **kwargs)
        self._grad_buffer = self._grad_rows = None  # see add_grad

    def catch_up(self, rows):
        """Nothing to replay: every row moved at every step."""

    def flush(self):
        """Nothing to replay: every row moved at every step."""

    @torch.no_grad()
    def step(self, rows, grad):
        """One optimizer step with ``grad`` at the batch rows ``rows`` and 0 elsewhere."""
        device = self.weights.device
        self.add_grad(torch.as_tensor(rows, device=device), torch.as_tensor(grad, device=device))
        self.optimizer.step()
        self.weights.grad = None  # as zero_grad(): the next step rebuilds it

    def add_grad(self, rows, grad):
        """Add ``grad`` to the gradient of the batch rows ``rows`` of the weights.

        With no gradient (after a step) it is rebuilt in a buffer kept between steps,
        where only the previous batch's rows need zeroing: O(batch) work instead of
        allocating and zeroing all n weights.
        """
        weights = self.weights
        if weights.grad is not None:  # accumulating, or set by someone else
            weights.grad.index_add_(0, rows, grad.to(weights.grad.dtype))
            return
        if self._grad_buffer is None:
            self._grad_buffer = torch.zeros_like(weights)
        else:
            self._grad_buffer[self._grad_rows] = 0.0
        self._grad_buffer[rows] = grad.to(weights.dtype)  # the rows of a batch are distinct
        self._grad_rows = rows
        weights.grad = self._grad_buffer

    def export(self, rows):
        """``(per_row, shared)``: the optimizer's per-row state (moments) and the rest."""
        state = self.optimizer.state.get(self.weights, {})
        n = len(self.weights)
        per_row = {k: v[rows].cpu() for k, v in state.items() if torch.is_tensor(v) and v.ndim
                   and len(v) == n}
        shared = {k: v for k, v in state.items() if k not in per_row}
        return per_row, shared

    def load(self, rows, per_row):
        """Set the optimizer's per-row state at ``rows`` from ``export``."""
        state = self.optimizer.state[self.weights]
        for key, value in per_row.items():
            state.setdefault(key, torch.zeros_like(self.weights, dtype=value.dtype))
            state[key][rows] = value.to(self.weights.device)

    def load_shared(self, shared):
        """Set the optimizer's other state (its step count) from ``export``."""
        state = self.optimizer.state[self.weights]
        for key, value in shared.items():
            state[key] = value.clone().to(self.weights.device) if torch.is_tensor(value) else value

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_grad_buffer"] = state["_grad_rows"] = None  # training scratch of n floats
        return state


@functools.lru_cache(maxsize=None)
def fused_works(optimizer, device_type):
    """Whether ``optimizer`` takes ``fused=True`` for a float32 tensor on ``device_type``."""
    try:
        if "fused" not in inspect.signature(optimizer).parameters:
            return False
        p = torch.nn.Parameter(torch.zeros(2, device=device_type))
        opt = optimizer([{"params": [p], "fused": True}], lr=1e-3)
        p.grad = torch.ones_like(p)
        opt.step()
        return True
    except Exception:  # an older torch, a device without fused kernels, an odd optimizer
        return False


def use_fused_kernels(groups, kwargs, optimizer, device_type):
    """Ask for the optimizer's fused kernel in each of ``groups`` where it has one.

    On the CPU torch otherwise runs Adam one tensor at a time (about 0.4 ms of a 3 ms
    step at 10k rows), and with ``"row"`` Adam's moments of all ``n`` data weights move
    at every step: fused, that is one pass over ``n``, not ~10.
    """
    if {"fused", "foreach"} & kwargs.keys() or not fused_works(optimizer, device_type):
        return
    for group in groups:
        params = group["params"]
        if params and not {"fused", "foreach"} & group.keys() and all(
                p.dtype == torch.float32 and p.device.type == device_type for p in params):
            group["fused"] = True
