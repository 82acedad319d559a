"""Use your own torch module: a residual MLP
=========================================

Any ``torch.nn.Module`` class whose ``forward`` takes the features can replace skval's default
MLP. Its ``__init__`` receives ``n_features`` and ``n_outputs`` when it accepts them, and every
other argument comes from a ``module__*`` parameter of the estimator, so a grid search can tune
the architecture too. Here a residual MLP values the rows of ``digits`` with 10% flipped labels::

    python examples/custom_module.py [--epochs N]
"""

import argparse

from sklearn.datasets import load_digits
from torch import nn

from skval import LossValClassifier
from skval.evaluation import auroc, inject_noise

# %%
# The module: ``forward(X)`` takes only the features (skval keeps the row numbers it needs away
# from it).


class ResidualMLP(nn.Module):
    """``forward`` takes only the features; ``n_features`` / ``n_outputs`` are filled in by skval."""

    def __init__(self, n_features, n_outputs, width=64, blocks=2, dropout=0.1):
        super().__init__()
        self.inp = nn.Linear(n_features, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.GELU(), nn.Dropout(dropout))
            for _ in range(blocks)
        )
        self.out = nn.Linear(width, n_outputs)

    def forward(self, X):
        h = self.inp(X)
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)


# %%
# ``module__width`` and ``module__blocks`` reach ``ResidualMLP.__init__``; the values are scored
# against the known flips with :func:`skval.evaluation.auroc`.


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args(argv)

    X, y = load_digits(return_X_y=True)
    X, y_noisy, noisy = inject_noise(X, y, kind="label", rate=0.1, random_state=0)
    clf = LossValClassifier(ResidualMLP, module__width=96, module__blocks=3,
                            max_epochs=args.epochs, random_state=0).fit(X, y_noisy)
    print(f"digits: {len(y)} rows, {noisy.sum()} labels flipped")
    print(f"AUROC of the values: {auroc(clf.data_values_, noisy):.3f}; "
          f"accuracy on the clean labels: {clf.score(X, y):.3f}")
    return clf


# %%
# Run it with the script's defaults (30 epochs).

if __name__ == "__main__":
    main()
