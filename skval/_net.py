"""The skorch side: a batch-indexed dataset and the net that trains the weights."""

from __future__ import annotations

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
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


class LossValNet(NeuralNet):
    """skorch net whose criterion sees the batch rows and their row numbers."""

    def __init__(self, *args, positive_weights=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.positive_weights = positive_weights

    def infer(self, x, **fit_params):
        # The user's module only takes the features; the row numbers are for the criterion.
        if isinstance(x, dict):
            x = x["X"]
        return self.module_(x.to(self.device), **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        y_true = y_true.to(self.device)
        loss = self.criterion_(y_pred, y_true, X["idx"].to(self.device), X["X"].to(self.device))
        if not torch.isfinite(loss):
            epoch = len(self.history)
            raise NonFiniteLossError(
                f"The LossVal loss became {loss.item()} in epoch {epoch}. Try a smaller "
                "lr or weight_lr, standardised features, or ot_method='exact'."
            )
        return loss

    def train_step(self, batch, **fit_params):
        step = super().train_step(batch, **fit_params)
        if self.positive_weights:
            with torch.no_grad():
                self.criterion_.data_weights.clamp_(min=0.0)
        return step


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
