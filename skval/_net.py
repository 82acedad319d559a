"""The skorch side: a batch-indexed dataset and the net that trains the weights."""

from __future__ import annotations

import functools
import inspect
import math

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.dataset import unpack_data
from torch.utils.data import Dataset


class RowDataset(Dataset):
    """Rows of ``X`` (and ``y``) that know their own row numbers.

    ``__getitems__`` lets the DataLoader fetch a whole batch with one tensor
    index instead of one row at a time and a collate.
    """

    def __init__(self, X, y=None):
        self.X = torch.as_tensor(X)
        self.y = None if y is None else torch.as_tensor(y)

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.__getitems__([i])

    def __getitems__(self, indices):
        idx = torch.as_tensor(indices, dtype=torch.long)
        yb = self.y[idx] if self.y is not None else torch.zeros(len(idx))
        return {"X": self.X[idx], "idx": idx}, yb


def batch_collate(batch):
    """Identity collate: ``RowDataset.__getitems__`` already builds the batch."""
    return batch


class NonFiniteLossError(FloatingPointError):
    """Raised when the LossVal loss becomes NaN or infinite during ``fit``."""


@functools.lru_cache(maxsize=None)
def _fused_works(optimizer, device_type):
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


class LossValNet(NeuralNet):
    """skorch net whose criterion sees the batch rows and their row numbers.

    With ``weight_update="batch"`` the data weights are left out of the torch
    optimizer and moved by ``BatchScaledMomentum`` after each step; with
    ``"row"`` the optimizer moves them in their own parameter group.

    What makes a training step cheaper, without changing what is computed (up to
    float rounding):

    * with exact OT, the OT problem is solved by POT's network simplex directly
      and its gradient, with the weights' own gradient, added after the network's
      backward pass (see ``LossValLoss.finish_step``); backward never touches the
      ``n_samples`` weights. Solving the OT in a worker thread beside backward was
      tried and dropped: on 2 cores the extra thread oversubscribes torch's
      OpenMP threads for at most a 1.16x gain;
    * the optimizer uses its fused kernel where it has one, for the network's
      parameters (torch otherwise runs Adam tensor by tensor on the CPU) and, with
      ``"row"``, for the data weights (one pass over ``n`` instead of several).
    """

    def __init__(self, *args, positive_weights=True, weight_update="row", weight_lr=None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.positive_weights = positive_weights
        self.weight_update = weight_update
        self.weight_lr = weight_lr

    def initialize_optimizer(self, *args, **kwargs):
        super().initialize_optimizer(*args, **kwargs)
        self.weight_optimizer_ = None
        if self.weight_update == "batch":
            lr = self.lr if self.weight_lr is None else self.weight_lr
            self.weight_optimizer_ = BatchScaledMomentum(self.criterion_.data_weights, lr=lr)
        return self

    def infer(self, x, **fit_params):
        # The user's module only takes the features; the row numbers are for the criterion.
        if isinstance(x, dict):
            x = x["X"]
        return self.module_(x.to(self.device), **fit_params)

    def _check_finite(self, loss):
        if not torch.isfinite(loss):
            epoch = len(self.history)
            raise NonFiniteLossError(
                f"The LossVal loss became {loss.item()} in epoch {epoch}. Try a smaller "
                "lr or weight_lr, standardised features, or ot_method='exact'."
            )

    def get_loss(self, y_pred, y_true, X=None, training=False):
        y_true = y_true.to(self.device)
        loss = self.criterion_(y_pred, y_true, X["idx"].to(self.device), X["X"].to(self.device))
        self._check_finite(loss)
        return loss

    def get_params_for_optimizer(self, prefix, named_parameters):
        args, kwargs = super().get_params_for_optimizer(prefix, named_parameters)
        if prefix == "optimizer" and self.weight_update == "batch":
            # the data weights are moved by BatchScaledMomentum (see train_step)
            weights = self.criterion_.data_weights
            args = ([g for g in args[0] if not any(p is weights for p in g["params"])],)
        # Adam & co. update all n data weights at every step (their moments move even where
        # the gradient is 0): with the fused kernel that is one pass over n, not ~10. The
        # network's own parameters get it too: on the CPU torch otherwise runs one tensor
        # at a time (about 0.4 ms of a 3 ms step at 10k rows).
        device_type = torch.device(self.device).type
        if prefix == "optimizer" and not {"fused", "foreach"} & kwargs.keys() \
                and _fused_works(self.optimizer, device_type):
            for group in args[0]:  # skorch gives each group's params as a list
                params = group["params"]
                if params and not {"fused", "foreach"} & group.keys() and all(
                        p.dtype == torch.float32 and p.device.type == device_type for p in params):
                    group["fused"] = True
        return args, kwargs

    def train_step_single(self, batch, **fit_params):
        criterion = self.criterion_
        if not criterion.can_split_step:
            return super().train_step_single(batch, **fit_params)
        # As skorch's, with the loss split in two (see LossValLoss.finish_step).
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        idx, y_true = Xi["idx"].to(self.device), yi.to(self.device)
        pending = criterion.start_ot(Xi["X"].to(self.device), y_true, idx)
        y_pred = self.infer(Xi, **fit_params)
        # the weights' own gradient is added by finish_step: backward only runs the network
        losses = criterion.task_losses(y_pred, y_true)
        task = (criterion.data_weights.detach()[idx] * losses).mean()
        if task.requires_grad:  # False for a module without trainable parameters
            task.backward()
        params = [p for _, p in self.get_all_learnable_params()]
        loss = criterion.finish_step(task, losses, pending, params)
        self._check_finite(loss)
        return {"loss": loss, "y_pred": y_pred}

    def train_step(self, batch, **fit_params):
        step = super().train_step(batch, **fit_params)
        if self.weight_optimizer_ is not None:
            self.weight_optimizer_.step(unpack_data(batch)[0]["idx"].to(self.device))
        if self.positive_weights:
            with torch.no_grad():
                self.criterion_.data_weights.clamp_(min=0.0)
        return step


class BatchScaledMomentum:
    """Adam-style update of the data weights that keeps the size of each row's gradient.

    Adam divides each weight's step by the root of that weight's own mean squared
    gradient, so every row whose gradient keeps its sign moves at the same speed
    whatever the size of its loss. Here the first moment is per row, as in Adam,
    but the second moment is one number: a running mean of the squared median
    absolute gradient of the batch rows. A typical row then moves about ``lr``
    per step, like under Adam, and a row whose gradient is three times the
    batch's median moves three times as far.

    Parameters
    ----------
    weights : torch.nn.Parameter
        The data weights; their ``.grad`` holds the batch rows' gradient after
        the loss's backward pass (zero elsewhere).
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
    def step(self, idx):
        """Move the weights by their gradient of this step (batch rows ``idx``); clear it."""
        grad = self.weights.grad
        if grad is None:
            return
        beta1, beta2 = self.betas
        self.steps += 1
        self.exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        scale = float(grad[idx].abs().median()) if len(idx) else 0.0
        self.exp_avg_sq = beta2 * self.exp_avg_sq + (1 - beta2) * scale ** 2
        denom = math.sqrt(self.exp_avg_sq / (1 - beta2 ** self.steps)) + self.eps
        self.weights.add_(self.exp_avg, alpha=-self.lr / (1 - beta1 ** self.steps) / denom)
        # the torch optimizer's zero_grad() does not see the weights: clear them here
        self.weights.grad = None


class WeightHistory(Callback):
    """Records a copy of the data weights at the end of every epoch."""

    def initialize(self):
        self.history_ = []
        return self

    def on_epoch_end(self, net, **kwargs):
        self.history_.append(net.criterion_.data_weights.detach().cpu().numpy().copy())

    def as_array(self):
        """Weights of every epoch, shape ``(n_epochs, n_samples)``."""
        return np.asarray(self.history_, dtype=np.float32)
