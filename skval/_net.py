"""The skorch side: a batch-indexed dataset and the net that trains the data weights."""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import torch
from sklearn.utils import ClassifierTags
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.dataset import unpack_data
from skorch.utils import TeeGenerator
from torch.utils.data import Dataset

from ._callbacks import check_callbacks
from ._features import StandardisedRows
from ._rowstate import RowState
from ._weights import use_fused_kernels
from .exceptions import NonFiniteLossError


class RowDataset(Dataset):
    """Rows of ``X`` (and ``y``) that know their own row numbers.

    ``__getitems__`` lets the DataLoader fetch a whole batch with one tensor
    index instead of one row at a time and a collate. ``X_cost``, when given, are
    the rows' features for the OT cost (``X`` otherwise); a batch carries them as
    ``"X_cost"``. ``X`` and ``X_cost`` are arrays (held as tensors) or a fit's
    ``skval._features.StandardisedRows``, which a tensor of row numbers indexes
    into a tensor.
    """

    def __init__(self, X, y=None, X_cost=None):
        self.X = _rows(X)
        self.y = None if y is None else torch.as_tensor(y)
        self.X_cost = None if X_cost is None else _rows(X_cost)

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.__getitems__([i])

    def __getitems__(self, indices):
        return self.batch(torch.as_tensor(indices, dtype=torch.long))

    def batch(self, idx):
        """The batch of the rows ``idx`` (an int64 tensor): ``({"X", "idx"[, "X_cost"]}, y)``."""
        yb = self.y[idx] if self.y is not None else torch.zeros(len(idx))
        rows = {"X": self.X[idx], "idx": idx}
        if self.X_cost is not None:
            rows["X_cost"] = self.X_cost[idx]
        return rows, yb


def _rows(X):
    """``X`` as a tensor, unless it is a ``StandardisedRows`` (which reads its own rows)."""
    return X if isinstance(X, StandardisedRows) else torch.as_tensor(X)


def batch_collate(batch):
    """Identity collate: ``RowDataset.__getitems__`` already builds the batch."""
    return batch


class RowBatches:
    """The training batches of a ``RowDataset``, indexed as tensors, without a DataLoader.

    The batches, and every draw from the random generators, are those of skorch's
    ``DataLoader(dataset, batch_size, shuffle=True, generator=generator)`` (or
    ``batch_sampler=batch_sampler``): per epoch the loader's base seed, then the
    sampler's two permutations (the second one drawn when it runs out), so that a fit's
    values do not depend on which of the two served its batches. A batch is one tensor
    index into the dataset's tensors.

    Parameters
    ----------
    dataset : RowDataset
        The training rows.
    batch_size : int
        Rows per batch (the last one may be smaller).
    generator : torch.Generator or None, default=None
        The shuffle's generator (None: seeded from torch's global generator, as the
        DataLoader's sampler does).
    batch_sampler : iterable of lists of int or None, default=None
        The batches' row numbers instead (a shard's ``ShardBatches``).
    """

    def __init__(self, dataset, batch_size, generator=None, batch_sampler=None):
        self.dataset = dataset
        self.batch_size = batch_size
        self.generator = generator
        self.batch_sampler = batch_sampler

    def __len__(self):
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        return math.ceil(len(self.dataset) / self.batch_size)

    def __iter__(self):
        generator = self.generator
        # the loader's base seed (for its workers), drawn when an epoch's iterator is made
        torch.empty((), dtype=torch.int64).random_(generator=generator)
        if self.batch_sampler is not None:
            for rows in self.batch_sampler:
                yield self.dataset.batch(torch.as_tensor(rows, dtype=torch.long))
            return
        if generator is None:  # as RandomSampler without a generator
            seed = int(torch.empty((), dtype=torch.int64).random_().item())
            generator = torch.Generator().manual_seed(seed)
        n = len(self.dataset)
        order = torch.randperm(n, generator=generator)
        torch.randperm(n, generator=generator)  # RandomSampler's draw for the rest (0 rows)
        for start in range(0, n, self.batch_size):
            yield self.dataset.batch(order[start:start + self.batch_size])


def _module_key(module):
    """What identifies the state of ``module``: its tensors and their version counters."""
    tensors = itertools.chain(module.parameters(), module.buffers())
    return id(module), tuple((id(t), t._version) for t in tensors)


def listens(callbacks, method, base=Callback):
    """Whether any of ``callbacks`` (skorch's ``(name, callback)`` pairs) overrides ``method``."""
    default = getattr(base, method)
    return any(getattr(type(cb), method, default) is not default for _, cb in callbacks)


class LossValNet(NeuralNet):
    """skorch net that trains the network and, through ``rows_``, the data weights.

    Batches come from a ``RowDataset``: ``X`` is a dict of the rows' features and
    their row numbers (``idx``); the network sees only the features. ``rows_`` (a
    ``RowState``, built with the module and moved with it) keeps the weights and every
    other per-row quantity; the criterion (``LossValLoss``) is the loss alone.

    Parameters
    ----------
    *args, **kwargs
        As ``skorch.NeuralNet``.
    row_state : dict
        Keyword arguments of ``RowState`` (the rows, their update rule, ...).
    """

    def __init__(self, *args, row_state, **kwargs):
        super().__init__(*args, **kwargs)
        self.row_state = row_state

    def initialize_module(self):
        super().initialize_module()
        self.rows_ = RowState(**self.row_state)  # registered by skorch: moved, pickled
        return self

    def initialize_optimizer(self, *args, **kwargs):
        super().initialize_optimizer(*args, **kwargs)
        self.rows_.start(torch.device(self.device).type)
        return self

    def get_all_learnable_params(self):
        # the network's; the weights have their own update rule (RowState)
        weights = set(self.rows_.parameters())
        return ((name, p) for name, p in super().get_all_learnable_params() if p not in weights)

    def get_params_for_optimizer(self, prefix, named_parameters):
        args, kwargs = super().get_params_for_optimizer(prefix, named_parameters)
        if prefix == "optimizer":
            use_fused_kernels(args[0], kwargs, self.optimizer, torch.device(self.device).type)
        return args, kwargs

    def on_epoch_end(self, net, **kwargs):
        # the lazy weight update brings every row up to date before the callbacks read them
        self.rows_.end_epoch()
        super().on_epoch_end(net, **kwargs)

    def on_train_begin(self, net, X=None, **kwargs):
        self.__dict__.pop("_float64_cache", None)  # the network is about to change
        check_callbacks(self.callbacks_)
        if self._classifies() and isinstance(X, RowDataset) and len(X):
            self.classes_ = np.arange(int(X.y.max()) + 1)  # the encoded labels
        super().on_train_begin(net, X=X, **kwargs)

    # ------------------------------------------------------------------ skorch's scoring
    def _classifies(self):
        return getattr(self, "criterion__task", None) == "classification"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self._classifies():  # scorers (EpochScoring) then use predict / predict_proba
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags()
        return tags

    def predict_proba(self, X):
        """The network's output; for classification the class probabilities (softmax).

        For skorch's scoring callbacks (``EpochScoring(..., on_train=True)``); the
        estimators predict through their own float64 copy (``float64_module``).
        """
        out = super().predict_proba(X)
        if not self._classifies():
            return out
        return torch.softmax(torch.as_tensor(out, dtype=torch.float64), dim=1).numpy()

    def predict(self, X):
        """Encoded class labels (classification) or the network's output (regression)."""
        if not self._classifies():
            return super().predict(X)
        return self.predict_proba(X).argmax(axis=1)

    def float64_module(self):
        """A float64 copy of the network in eval mode, for predictions.

        Built once and kept until the network changes (a new module, trained or
        loaded parameters: their version counters move), so that ``predict`` does not
        copy the network at every call. Not pickled.
        """
        key = _module_key(self.module_)
        cached = self.__dict__.get("_float64_cache")
        if cached is None or cached[0] != key:
            cached = (key, copy.deepcopy(self.module_).double().eval())
            self._float64_cache = cached  # a tuple: skorch does not register it
        return cached[1]

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_float64_cache", None)
        return state

    def on_train_end(self, net, **kwargs):
        self.rows_.flush()  # also after an interrupt in the middle of an epoch
        super().on_train_end(net, **kwargs)

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        # skorch has already read the loss to the host for its history: no sync of our own
        self.check_finite(self.history[-1]["batches"][-1]["train_loss" if training else "valid_loss"])
        super().on_batch_end(net, batch=batch, training=training, **kwargs)

    def check_finite(self, loss):
        """Raise ``NonFiniteLossError`` when a batch's ``loss`` (a float) is not finite."""
        if not math.isfinite(loss):
            raise NonFiniteLossError(
                f"The LossVal loss became {loss} in epoch {len(self.history)}. Try a "
                "smaller lr or weight_lr, standardised features, or ot_method='exact'."
            )

    def get_iterator(self, dataset, training=False):
        if not (training and isinstance(dataset, RowDataset)):
            return super().get_iterator(dataset, training)
        params = self.get_params_for("iterator_train")
        batch_size = params.get("batch_size", self.batch_size)
        return RowBatches(dataset, len(dataset) if batch_size == -1 else batch_size,
                          params.get("generator"), params.get("batch_sampler"))

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """As skorch's, lean over ``RowBatches``: batch events only for a callback that listens.

        The history records every batch's loss and size as skorch's loop does; the net's
        own batch hooks (a new history row, the finite-loss check) run inline.
        """
        if not isinstance(iterator, RowBatches):
            return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        begin, end = (listens(self.callbacks_, m) for m in ("on_batch_begin", "on_batch_end"))
        batches, count = self.history[-1]["batches"], 0
        for batch in iterator:
            if begin:
                self.notify("on_batch_begin", batch=batch, training=training)
            else:
                batches.append({})  # what the net's on_batch_begin does
            step = step_fn(batch, **fit_params)
            batches[-1].update({prefix + "_loss": step["loss"].item(),
                                prefix + "_batch_size": len(batch[1])})
            if end:
                self.notify("on_batch_end", batch=batch, training=training, **step)
            else:
                self.check_finite(batches[-1][prefix + "_loss"])
            count += 1
        self.history.record(prefix + "_batch_count", count)
        return None

    def infer(self, x, **fit_params):
        # The user's module only takes the features; the row numbers are for the criterion.
        if isinstance(x, dict):
            x = x["X"]
        return self.module_(x.to(self.device), **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """The loss of a batch; ``X`` as ``RowDataset`` gives it, or with the step's leaves.

        A training step (``train_step_single``) adds ``"weights"`` and
        ``"ot_weights"`` (the batch rows' weights as leaves of their own) and
        ``"log_prior"`` to ``X``; otherwise the weights are the rows' current ones.
        """
        idx = X["idx"].to(self.device)
        weights = X["weights"] if "weights" in X else self.rows_.read(idx)
        return self.criterion_(y_pred, y_true.to(self.device), idx,
                               X.get("X_cost", X["X"]).to(self.device), weights,
                               X.get("ot_weights"), X.get("log_prior"))

    def train_step_single(self, batch, **fit_params):
        # As skorch's, with the batch's weights as two leaves of their own, one for the
        # task term and one for the OT term: backward builds gradients of the batch's
        # size (not n entries per step), and their two sides are the evidence.
        if not (self.module_.training and self.rows_.training):  # train() walks every layer
            self._set_training(True)  # (rows_ counts labels in training only)
        Xi, yi = unpack_data(batch)
        idx = Xi["idx"].to(self.device)
        yi = yi.to(self.device)
        weights = self.rows_.read(idx)
        task_weights, ot_weights = weights.clone().requires_grad_(), weights.requires_grad_()
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, {**Xi, "idx": idx, "weights": task_weights,
                                          "ot_weights": ot_weights,
                                          "log_prior": self.rows_.log_prior(yi)}, training=True)
        loss.backward()
        return {"loss": loss, "y_pred": y_pred,
                "weight_grads": (idx, task_weights.grad, ot_weights.grad)}

    def train_step(self, batch, **fit_params):
        # As skorch's (the optimizer's closure), with on_grad_computed only for a
        # callback that listens; then the weights' own update: one place
        step = {}

        def closure():
            self._zero_grad_optimizer()
            result = self.train_step_single(batch, **fit_params)
            if not step:  # an optimizer that calls it again (LBFGS): the first, as skorch
                step.update(result)
            if listens(self.callbacks_, "on_grad_computed"):
                self.notify("on_grad_computed", batch=batch, training=True,
                            named_parameters=TeeGenerator(self.get_all_learnable_params()))
            return result["loss"]

        self._step_optimizer(closure)  # the network's optimizer steps
        self.rows_.step(*step.pop("weight_grads"))
        return step
