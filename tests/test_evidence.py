"""Why a row is low: the two sides of the evidence, and values without ties at the bottom."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler

from skval import LossValClassifier
from skval._rowstate import RowState
from skval.evaluation import auroc, inject_noise, kmeans_f1


@pytest.fixture(scope="module")
def digits_noisy():
    """digits, standardised, with 20% label noise and, separately, 20% feature noise."""
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    label = inject_noise(X, y, kind="label", rate=0.2, random_state=0)
    feature = inject_noise(X, y, kind="feature", rate=0.2, random_state=0)
    return label, feature


@pytest.fixture(scope="module")
def digits_fits(digits_noisy):
    fits = {}
    for kind, (X, y, noisy) in zip(["label", "feature"], digits_noisy):
        fits[kind] = LossValClassifier(random_state=0).fit(X, y), noisy  # default 30 epochs
    return fits


def test_each_side_finds_its_own_noise(digits_fits):
    # the label side finds wrong labels and not corrupted features, and the other way round
    clf, flipped = digits_fits["label"]
    assert clf.evidence_.shape == (len(flipped), 2) and np.isfinite(clf.evidence_).all()
    assert auroc(-clf.evidence_[:, 0], flipped) > 0.97
    assert auroc(-clf.evidence_[:, 1], flipped) < 0.65
    clf, corrupted = digits_fits["feature"]
    assert auroc(-clf.evidence_[:, 1], corrupted) > 0.9
    # the LossVal weights mix in the label side and trail the feature side here; the
    # value the canaries calibrate ranks like the side of the noise present
    assert auroc(-clf.evidence_[:, 1], corrupted) > auroc(clf.weights_, corrupted) + 0.02
    assert auroc(clf.data_values_, corrupted) > auroc(-clf.evidence_[:, 1], corrupted) - 0.01
    label_clf, flipped = digits_fits["label"]
    label_side = auroc(-label_clf.evidence_[:, 0], flipped)
    assert auroc(label_clf.data_values_, flipped) > label_side - 0.01
    # a row's wrong label or corrupted features: which side is the larger, in z-scores
    z = (clf.evidence_ - np.median(clf.evidence_, 0)) / clf.evidence_.std(0)
    assert np.mean(z[corrupted, 1] > z[corrupted, 0]) > 0.6


def test_no_ties_at_the_bottom(flipped_cancer):
    X, y, flipped, _ = flipped_cancer
    clf = LossValClassifier(random_state=0).fit(X, y)
    weights = clf.net_.rows_.weights.detach().numpy()[:len(y)]  # the canaries after the rows
    clipped = weights == 0
    assert clipped.sum() > 40  # the positive clip catches many rows at 0 ...
    lowest = np.sort(clf.weights_)[: len(flipped) // 10]
    assert len(np.unique(lowest)) == len(lowest)  # ... but the lowest 10% are ranked
    # only clipped rows go below 0 (most of them: a few reached 0 through momentum
    # outside their own step, with nothing to record, and stay at 0)
    assert np.all(clipped[clf.weights_ < 0])
    assert (clf.weights_ < 0).sum() > 0.8 * clipped.sum()
    np.testing.assert_array_equal(clf.weights_[~clipped], weights[~clipped])
    # the rows pushed furthest below 0 are the flipped ones; the ranking stays within
    # 0.001 below 0, so the scale of the values (and their 2-means split) is the weights'
    assert flipped[np.argsort(clf.weights_)[:20]].mean() > 0.9
    assert clf.weights_.min() >= -1e-3
    assert kmeans_f1(clf.weights_, flipped) == pytest.approx(kmeans_f1(weights, flipped), abs=0.02)


def test_without_the_clip_the_values_are_the_weights(flipped_cancer):
    X, y, _, _ = flipped_cancer
    clf = LossValClassifier(max_epochs=3, positive_weights=False, random_state=0).fit(X, y)
    np.testing.assert_array_equal(clf.weights_,
                                  clf.net_.rows_.weights.detach().numpy()[:len(y)])


def test_evidence_is_scaled_per_side():
    crit = RowState(6)
    idx = torch.tensor([0, 2, 4])
    task, ot = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([-30.0, 10.0, 20.0])
    crit.record_evidence(idx, task, ot)
    # first step: each side divided by its own batch median absolute value (2 and 20)
    expected = torch.zeros(6, 2)
    expected[idx] = torch.stack([task / 2, ot / 20], 1)
    torch.testing.assert_close(crit.evidence, expected)
    crit.record_evidence(torch.tensor([1]), torch.tensor([3.0]), torch.tensor([0.0]))
    assert crit.evidence[1, 0] > 0 and crit.evidence[1, 1] == 0
    torch.testing.assert_close(crit.evidence[idx], expected[idx])  # other rows untouched


def test_clip_records_how_far_below_zero():
    crit = RowState(4)
    with torch.no_grad():
        crit.weights.copy_(torch.tensor([0.5, -0.25, -1.0, -0.5]))
    crit.clip(torch.tensor([0, 1, 2]))  # row 3 moved below 0 outside its batch
    torch.testing.assert_close(crit.weights.detach(), torch.tensor([0.5, 0.0, 0.0, -0.5]))
    crit.clip(torch.tensor([0, 1, 2]), every_row=True)  # as under torch's optimizer
    torch.testing.assert_close(crit.weights.detach(), torch.tensor([0.5, 0.0, 0.0, 0.0]))
    torch.testing.assert_close(crit.clipped, torch.tensor([0.0, -0.25, -1.0, 0.0]))
    # clipped rows just below 0, in the order of how far they were pushed: c / (1 + c) x 1e-3
    torch.testing.assert_close(crit.values(), torch.tensor([0.5, -0.2e-3, -0.5e-3, 0.0]))
