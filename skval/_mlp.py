"""The default network: a plain multi-layer perceptron."""

from __future__ import annotations

import torch
from torch import nn

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}


def resolve_activation(activation):
    """Return an ``nn.Module`` class for a name or a module class."""
    if isinstance(activation, str):
        try:
            return _ACTIVATIONS[activation]
        except KeyError:
            raise ValueError(
                f"activation must be one of {sorted(_ACTIVATIONS)} or a "
                f"torch.nn.Module class, got {activation!r}."
            ) from None
    if isinstance(activation, type) and issubclass(activation, nn.Module):
        return activation
    raise TypeError(
        f"activation must be one of {sorted(_ACTIVATIONS)} or a torch.nn.Module "
        f"class, got {activation!r}."
    )


class MLP(nn.Module):
    """Fully connected network ``n_features -> hidden... -> n_outputs``.

    Parameters
    ----------
    n_features : int
        Width of the input.
    n_outputs : int
        Width of the output (number of classes, or of regression targets).
    hidden_layer_sizes : sequence of int
        Width of each hidden layer; empty gives a linear model.
    activation : str or nn.Module class
        Non-linearity after each hidden layer.
    """

    def __init__(self, n_features, n_outputs, hidden_layer_sizes=(100,), activation="relu"):
        super().__init__()
        act = resolve_activation(activation)
        layers = []
        width = n_features
        for size in hidden_layer_sizes:
            layers += [nn.Linear(width, size), act()]
            width = size
        layers.append(nn.Linear(width, n_outputs))
        self.layers = nn.Sequential(*layers)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.layers(X)
