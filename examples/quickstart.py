"""Quickstart: find the flipped labels in breast_cancer with skval
===============================================================

15% of the training labels are flipped on purpose; :class:`~skval.LossValClassifier` is fitted
once and its ``data_values_`` rank the rows from most harmful to most helpful. The script prints
the share of wrong labels and of corrupted features the run estimates (``noise_shares_``, from
its canary rows), how many of the flipped rows the lowest values catch, and the ten worst rows with the evidence
the run found against each, from its label and from its features (``evidence_``; see
:doc:`/user_guide/values`). This is the first command of the README::

    python examples/quickstart.py [--epochs N] [--seed S]
"""

import argparse

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import roc_auc_score

from skval import LossValClassifier

# %%
# One torch thread: the float rounding of torch's matrix products depends on the number of
# threads, so the printed figures are the same on any machine only with a fixed count.
#
# Flip 15% of the labels, fit once, and compare the lowest values with the flipped rows.
# ``evidence_`` has one column for the label side and one for the feature side of each row's
# push down; flipped labels show up on the label side.


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(args)
    finally:
        torch.set_num_threads(threads)


def _run(args):
    X, y = load_breast_cancer(return_X_y=True)
    rng = np.random.RandomState(args.seed)
    flipped = np.zeros(len(y), bool)
    flipped[rng.choice(len(y), round(0.15 * len(y)), replace=False)] = True
    y_noisy = np.where(flipped, 1 - y, y)

    clf = LossValClassifier(max_epochs=args.epochs, random_state=args.seed).fit(X, y_noisy)
    values = clf.data_values_

    k = int(flipped.sum())
    lowest = np.argsort(values)[:k]
    caught = int(flipped[lowest].sum())
    label_share, feature_share = clf.noise_shares_
    print(f"breast_cancer: {len(y)} rows, {k} labels flipped")
    print(f"the run estimates {label_share:.0%} of the labels wrong and {feature_share:.0%} "
          "of the rows' features corrupted")
    print(f"the {k} lowest values catch {caught} flipped rows ({caught / k:.0%}); "
          f"AUROC {roc_auc_score(flipped, -values):.3f}")
    print("\n10 worst rows (evidence against each row from its label and from its features):")
    print(" row   value  label  flipped  label evidence  feature evidence")
    label_evidence, feature_evidence = clf.evidence_.T
    for i in lowest[:10]:
        print(f"{i:4d}  {values[i]:6.2f}  {y_noisy[i]:5d}  {'yes' if flipped[i] else 'no':>7s}"
              f"  {label_evidence[i]:14.0f}  {feature_evidence[i]:16.0f}")
    return caught


# %%
# Run it (in the gallery with the script's defaults: 30 epochs, seed 0).

if __name__ == "__main__":
    main()
