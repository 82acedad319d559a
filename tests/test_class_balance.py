"""class_balanced: a classifier judges each row's loss within its own class.

Without it the task side of a weight's gradient is the row's loss, and a network fits a
rare class worse, so a rare class's genuine rows fill the lowest values ("minority
harm"). With it, the loss behind a weight's gradient is measured on logits corrected
for the class frequencies (logit adjustment): each row is judged against its class's base rate.
"""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer

from skval import LossValClassifier, LossValRegressor
from skval._loss import LossValLoss
from skval._rowstate import RowState
from skval.evaluation import auroc


def _criterion(task="classification"):
    return LossValLoss(task, torch.randn(16, 2, generator=torch.Generator().manual_seed(0)))


def _rows(n_classes, n=64):
    """The row state that counts the labels (class_balanced) for ``n_classes``."""
    return RowState(n, n_classes=n_classes)


def _medians(values, y):
    return [float(values[y == c].median()) for c in (0, 1)]


def _batch_with_prior_offset():
    """64 rows, 1 in 8 of class 1; the logits carry the class frequencies as an offset.

    Both classes are fitted equally well on their own terms (the same margins), but the
    network's output adds ``log(frequency)``: class 1's plain losses are much larger.
    """
    y = torch.tensor([0] * 56 + [1] * 8)
    margins = torch.linspace(0.5, 3.0, 8).repeat(8)  # the same margins in both classes
    logits = torch.zeros(64, 2)
    logits[torch.arange(64), y] = margins
    logits += torch.tensor([7 / 8, 1 / 8]).log()
    return logits, y


def _weight_grads(n_classes, logits, y):
    crit, rows = _criterion(), _rows(n_classes)
    if n_classes:  # the frequencies counted over a long run (no smoothing to speak of)
        rows.class_counts[:] = torch.tensor([7e6, 1e6], dtype=torch.float64)
    X = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    weights = torch.ones(64)
    task_w, ot_w = weights.clone().requires_grad_(), weights.clone().requires_grad_()
    y_pred = logits.clone().requires_grad_()
    loss = crit(y_pred, y, torch.arange(64), X, task_w, ot_w, rows.log_prior(y))
    loss.backward()
    return loss, task_w.grad, ot_w.grad, y_pred.grad


def test_each_class_judged_against_its_own_base_rate():
    logits, y = _batch_with_prior_offset()
    loss_on, task_on, ot_on, net_on = _weight_grads(2, logits, y)
    loss_off, task_off, ot_off, net_off = _weight_grads(None, logits, y)
    m0, m1 = _medians(task_on, y)  # the task side of each row's weight gradient
    assert m1 == pytest.approx(m0, rel=1e-4)
    r0, r1 = _medians(task_off, y)
    assert r1 / r0 > 4  # off: the rare class as a whole is pushed down
    # the loss, the network's gradient and the OT side are those of the paper
    assert loss_on.item() == pytest.approx(loss_off.item(), rel=1e-6)
    torch.testing.assert_close(net_on, net_off)
    torch.testing.assert_close(ot_on, ot_off)
    # within a class the order of the rows is kept
    assert torch.equal(torch.argsort(task_on[y == 1]), torch.argsort(task_off[y == 1]))


def test_frequencies_counted_in_training_only_and_regression_untouched():
    crit = _rows(3)
    y = torch.tensor([0, 0, 0, 2])
    crit.log_prior(y)
    crit.log_prior(y)
    assert crit.class_counts.tolist() == [6.0, 0.0, 2.0]
    crit.eval()
    crit.log_prior(y)
    assert crit.class_counts.tolist() == [6.0, 0.0, 2.0]
    # on balanced labels the adjustment is a constant shift of the logits: no change
    balanced = _rows(2)
    balanced.class_counts[:] = torch.tensor([5.0, 5.0], dtype=torch.float64)
    balanced.eval()
    logits, yb = torch.randn(10, 2), torch.arange(10) % 2
    torch.testing.assert_close(LossValLoss.evidence_losses(logits, yb, balanced.log_prior(yb)),
                               _criterion().row_losses(logits, yb))
    # a regressor never counts classes: its row state has none, its weights' gradient is plain
    reg = _rows(LossValRegressor()._balanced_classes(3))
    assert reg.n_classes is None
    assert reg.log_prior(torch.randn(8, 1)) is None


def test_class_balanced_parameter():
    X, y = load_breast_cancer(return_X_y=True)
    with pytest.raises(TypeError, match="class_balanced must be True or False, got 'yes'"):
        LossValClassifier(class_balanced="yes").fit(X, y)
    on = LossValClassifier(max_epochs=1, class_balanced=True, canaries=0,
                           random_state=0).fit(X, y)
    assert on.net_.rows_.n_classes == 2
    assert on.net_.rows_.class_counts.sum() == len(y)  # one epoch: every label once
    with_canaries = LossValClassifier(max_epochs=1, class_balanced=True, random_state=0).fit(X, y)
    # the canaries' labels are counted too: 2 x 14 of them (2.5 % of 569 rows, rounded)
    assert with_canaries.net_.rows_.class_counts.sum() == len(y) + 28
    default = LossValClassifier(max_epochs=1, random_state=0).fit(X, y)
    assert default.net_.rows_.n_classes is None  # default: the paper's formulation


def _minority_harm(values, y, share=0.1):
    """The smallest class's share among the lowest 10% of values over its share of all rows."""
    minority = np.argmin(np.bincount(y))
    lowest = np.argsort(values, kind="stable")[: round(share * len(values))]
    return np.mean(y[lowest] == minority) / np.mean(y == minority)


@pytest.fixture(scope="module")
def rare_malignant():
    """breast_cancer with 5% malignant rows: every benign row and 19 malignant ones, clean."""
    X, y = load_breast_cancer(return_X_y=True)
    rng = np.random.RandomState(0)
    malignant = rng.choice(np.flatnonzero(y == 0), 19, replace=False)
    rows = np.sort(np.r_[np.flatnonzero(y == 1), malignant])
    return X[rows], y[rows]


def test_rare_class_not_flagged_as_a_whole(rare_malignant):
    X, y = rare_malignant
    harm = {cb: np.mean([_minority_harm(LossValClassifier(class_balanced=cb, random_state=s)
                                        .fit(X, y).weights_, y) for s in (0, 1)])
            for cb in (False, True)}
    # the paper's formulation fills the lowest 10% of the weights with the clean rare class
    # (harm near 10); class_balanced adjusts the losses the weights are trained on
    assert harm[False] > 8
    assert harm[True] < 5


def test_wrong_labels_still_found(flipped_cancer):
    # balanced classes: the adjustment changes little, flipped labels are still found
    X, y, flipped, _ = flipped_cancer
    clf = LossValClassifier(class_balanced=True, random_state=0).fit(X, y)
    assert auroc(clf.data_values_, flipped) > 0.9
    assert auroc(-clf.evidence_[:, 0], flipped) > 0.9
