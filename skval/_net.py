"""The skorch side: a batch-indexed dataset and the net that trains the data weights."""

from __future__ import annotations

import functools
import inspect

import torch
from skorch import NeuralNet
from skorch.dataset import unpack_data
from torch.utils.data import Dataset

from ._weights import BatchScaledMomentum
from .exceptions import NonFiniteLossError


class RowDataset(Dataset):
    """Rows of ``X`` (and ``y``) that know their own row numbers.

    ``__getitems__`` lets the DataLoader fetch a whole batch with one tensor
    index instead of one row at a time and a collate. ``X_cost``, when given, are
    the rows' features for the OT cost (``X`` otherwise); a batch carries them as
    ``"X_cost"``.
    """

    def __init__(self, X, y=None, X_cost=None):
        self.X = torch.as_tensor(X)
        self.y = None if y is None else torch.as_tensor(y)
        self.X_cost = None if X_cost is None else torch.as_tensor(X_cost)

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.__getitems__([i])

    def __getitems__(self, indices):
        idx = torch.as_tensor(indices, dtype=torch.long)
        yb = self.y[idx] if self.y is not None else torch.zeros(len(idx))
        rows = {"X": self.X[idx], "idx": idx}
        if self.X_cost is not None:
            rows["X_cost"] = self.X_cost[idx]
        return rows, yb


def batch_collate(batch):
    """Identity collate: ``RowDataset.__getitems__`` already builds the batch."""
    return batch


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
    """skorch net whose criterion (``LossValLoss``) owns and trains the data weights.

    Batches come from a ``RowDataset``: ``X`` is a dict of the rows' features and
    their row numbers (``idx``); the network sees only the features.

    Parameters
    ----------
    *args, **kwargs
        As ``skorch.NeuralNet``.
    positive_weights : bool, default=True
        Clip the data weights at 0 after every step.
    weight_update : {"batch", "row"}, default="batch"
        ``"batch"``: ``BatchScaledMomentum`` moves the data weights after each
        step and the torch optimizer never sees them. ``"row"``: the torch
        optimizer moves them, in a parameter group of their own.
    weight_lr : float or None, default=None
        Learning rate of the data weights (``None``: ``lr``).
    """

    # skorch pickles these apart and loads them with torch.load's map_location, which
    # brings CUDA tensors back on the CPU where CUDA is missing. The weight update
    # holds tensors on the training device, and travels with the criterion so that it
    # still moves the criterion's weights after loading; _weight_step is a step's
    # (idx, grad), left set if training stops inside a step.
    cuda_dependent_attributes_ = NeuralNet.cuda_dependent_attributes_ + [
        "weight_optimizer_", "_weight_step"]

    def __init__(self, *args, positive_weights=True, weight_update="batch", weight_lr=None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.positive_weights = positive_weights
        self.weight_update = weight_update
        self.weight_lr = weight_lr

    @property
    def _weight_lr(self):
        return self.lr if self.weight_lr is None else self.weight_lr

    def initialize_optimizer(self, *args, **kwargs):
        super().initialize_optimizer(*args, **kwargs)
        self.weight_optimizer_ = None
        self._weight_step = None  # (idx, grad) from train_step_single for train_step
        if self.weight_update == "batch":
            self.weight_optimizer_ = BatchScaledMomentum(self.criterion_.data_weights,
                                                         lr=self._weight_lr,
                                                         clip=self.positive_weights)
        return self

    def on_epoch_end(self, net, **kwargs):
        # the lazy weight update brings every row up to date before the callbacks read them
        self._flush_weights()
        super().on_epoch_end(net, **kwargs)

    def on_train_end(self, net, **kwargs):
        self._flush_weights()  # also after an interrupt in the middle of an epoch
        super().on_train_end(net, **kwargs)

    def _flush_weights(self):
        if getattr(self, "weight_optimizer_", None) is not None:
            self.weight_optimizer_.flush()

    def get_params_for_optimizer(self, prefix, named_parameters):
        if prefix != "optimizer":
            return super().get_params_for_optimizer(prefix, named_parameters)
        weights = self.criterion_.data_weights
        args, kwargs = super().get_params_for_optimizer(
            prefix, [(name, p) for name, p in named_parameters if p is not weights])
        groups = args[0]
        if self.weight_update == "row":
            groups.insert(0, {"params": [weights], "lr": self._weight_lr})
        self._use_fused_kernels(groups, kwargs)
        return args, kwargs

    def _use_fused_kernels(self, groups, kwargs):
        """Ask for the optimizer's fused kernel where it has one.

        On the CPU torch otherwise runs Adam one tensor at a time (about 0.4 ms of a
        3 ms step at 10k rows), and with ``"row"`` Adam's moments of all ``n`` data
        weights move at every step: fused, that is one pass over ``n``, not ~10.
        """
        device_type = torch.device(self.device).type
        if {"fused", "foreach"} & kwargs.keys() or not _fused_works(self.optimizer, device_type):
            return
        for group in groups:
            params = group["params"]
            if params and not {"fused", "foreach"} & group.keys() and all(
                    p.dtype == torch.float32 and p.device.type == device_type for p in params):
                group["fused"] = True

    def infer(self, x, **fit_params):
        # The user's module only takes the features; the row numbers are for the criterion.
        if isinstance(x, dict):
            x = x["X"]
        return self.module_(x.to(self.device), **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        loss = self.criterion_(y_pred, y_true.to(self.device), X["idx"].to(self.device),
                               self._cost_rows(X))
        self._check_finite(loss)
        return loss

    def train_step_single(self, batch, **fit_params):
        # As skorch's, with the batch's data weights as leaves of their own, one for
        # the task term and one for the OT term: backward builds a gradient of the
        # batch's size (added to the n weights' gradient in place, not one of n entries
        # per step), and its two sides are the evidence against each row.
        criterion = self.criterion_
        if not (self.module_.training and criterion.training):  # train() walks every layer
            self._set_training(True)
        Xi, yi = unpack_data(batch)
        idx = Xi["idx"].to(self.device)
        if self.weight_optimizer_ is not None:
            self.weight_optimizer_.catch_up(idx)  # the lazy update's skipped steps
        weights = criterion.data_weights.detach()[idx]
        task_weights, ot_weights = weights.clone().requires_grad_(), weights.requires_grad_()
        y_pred = self.infer(Xi, **fit_params)
        loss = criterion(y_pred, yi.to(self.device), idx, self._cost_rows(Xi),
                         task_weights, ot_weights)
        self._check_finite(loss)
        loss.backward()
        grad = task_weights.grad + ot_weights.grad
        if self.weight_optimizer_ is None:  # the torch optimizer moves the weights
            criterion.add_weight_grad(idx, grad)
        else:  # BatchScaledMomentum, after the optimizer's step (see train_step)
            self._weight_step = idx, grad
        criterion.record_evidence(idx, task_weights.grad, ot_weights.grad)
        return {"loss": loss, "y_pred": y_pred}

    def train_step(self, batch, **fit_params):
        step = super().train_step(batch, **fit_params)
        idx = unpack_data(batch)[0]["idx"].to(self.device)
        if self.weight_optimizer_ is not None:
            self.weight_optimizer_.step(*self._weight_step)
            self._weight_step = None
        if self.positive_weights:
            self.criterion_.clip_weights(idx, every_row=self.weight_optimizer_ is None)
        return step

    def _cost_rows(self, X):
        """The batch rows' features for the OT cost."""
        return X.get("X_cost", X["X"]).to(self.device)

    def _check_finite(self, loss):
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"The LossVal loss became {loss.item()} in epoch {len(self.history)}. Try a "
                "smaller lr or weight_lr, standardised features, or ot_method='exact'."
            )
