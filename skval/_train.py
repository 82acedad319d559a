"""Training a fit in this process, and what every way of training returns.

``train_local(spec, prep)`` and ``skval._distributed.train_on_processes`` /
``train_in_group`` take the same inputs and return the same ``FitResult``: an ordinary
``LossValNet`` over all rows, in the user's row order, and what the processes did.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._net import RowDataset
from ._spec import build_net, own_rng


@dataclass
class FitResult:
    """A trained fit: its net over all rows and, from several processes, their statistics."""

    net: object                    # a LossValNet
    stats: dict | None = None      # see skval._distributed (tests and benchmarks read it)


def dataset(Xt, Xc, target):
    """The ``RowDataset`` of rows with features ``Xt`` (an array or ``StandardisedRows``),
    OT cost features ``Xc``, targets."""
    X_cost = None if Xc is Xt else Xc
    return RowDataset(Xt, torch.as_tensor(target), X_cost)


def train_net(net, data):
    """Train the initialised ``net`` on every row of ``data`` (``RowDataset``)."""
    net.partial_fit(data, None)  # fit() would re-initialise; partial_fit trains it as built
    net.iterator_train__generator = None  # the shuffling RNG is not part of the model
    return net


def train_local(spec, prep):
    """Build the net ``spec`` describes and train it on ``prep`` (``Prepared``), here."""
    with own_rng(spec.device):
        net = build_net(spec)
        train_net(net, dataset(prep.Xt, prep.Xc, prep.target))
    return FitResult(net)
