"""The OT solvers and the LossVal criterion: values, gradients, the reference mask."""

import warnings

import numpy as np
import ot
import pytest
import torch
from sklearn.datasets import make_classification

from skval import LossValClassifier
from skval._loss import LossValLoss
from skval._ot import FULL_COST_MAX as _FULL_COST_MAX
from skval._ot import block_parts, n_blocks, sinkhorn, solve_blocks, solve_exact
from skval._rowstate import RowState
from skval._spec import reference_position
from skval.evaluation import auroc, inject_noise


def _problem(n_rows, n_ref, seed=0):
    rng = np.random.default_rng(seed)
    X, R = rng.normal(size=(n_rows, 5)), rng.normal(size=(n_ref, 5)) + 0.5
    M = ot.dist(X, R)
    a = rng.uniform(0.5, 1.5, n_rows)
    return a / a.sum(), np.full(n_ref, 1.0 / n_ref), M / M.mean(), rng.permutation(n_ref)


@pytest.mark.parametrize("n_rows, n_ref, blocks", [
    (32, 256, 4),     # the default batch against the default reference: four 8 x 64 blocks
    (20, 256, 2),     # at least 8 batch rows per block
    (8, 256, 1),
    (100, 64, 2),
    (50, 256, 6),
    (100, 256, 8),    # at most n_ref // 32 groups of reference rows
    (1024, 256, 8),
    (1000, 60, 1),    # a small X_val: too few reference rows to split
    (40, 1024, 5),
])
def test_number_of_blocks(n_rows, n_ref, blocks):
    assert n_blocks(n_rows, n_ref) == blocks


def _solve_in_blocks(a, b, M, order):
    parts = block_parts(len(a), order, n_blocks(*M.shape))
    return solve_blocks(a, b, [(rows, group, np.ascontiguousarray(M[rows][:, group]))
                               for rows, group in parts])


def test_exact_ot_matches_pot():
    a, b, M, order = _problem(32, 256)
    cost, grad, code = solve_exact(a, b, M)
    assert code == 1
    assert cost == pytest.approx(ot.emd2(a, b, M), rel=1e-12)
    # the centred dual potential, as POT's gradient of emd2 in a
    a_t = torch.tensor(a, requires_grad=True)
    ot.emd2(a_t, torch.tensor(b), torch.tensor(M)).backward()
    np.testing.assert_allclose(grad, a_t.grad.numpy(), rtol=1e-10, atol=1e-12)
    # one block is the same problem: the same cost, the gradient up to a constant
    one_cost, one_grad, _ = solve_blocks(a, b, [(slice(None), np.arange(256), M)])
    assert one_cost == pytest.approx(cost, rel=1e-12)
    np.testing.assert_allclose(one_grad - one_grad.mean(), grad - grad.mean(), atol=1e-10)


@pytest.mark.parametrize("n_rows, n_ref", [(100, 256), (1024, 256), (300, 100)])
def test_blocks_value_and_gradient(n_rows, n_ref):
    a, b, M, order = _problem(n_rows, n_ref)
    assert n_blocks(n_rows, n_ref) > 1
    cost, grad, code = _solve_in_blocks(a, b, M, order)
    assert code == 1
    # a feasible plan of the full problem: its cost bounds the exact OT from above
    assert cost >= ot.emd2(a, b, M) - 1e-12
    # OT is 1-homogeneous in the masses: the gradient integrates back to the cost
    assert np.dot(a, grad) == pytest.approx(cost, rel=1e-9)
    # and it is the derivative: finite differences along random directions
    rng = np.random.default_rng(1)
    for _ in range(3):
        d = rng.normal(size=n_rows) * a
        h = 1e-7
        moved = _solve_in_blocks(a + h * d, b, M, order)[0]
        assert (moved - cost) / h == pytest.approx(np.dot(grad, d), rel=1e-4, abs=1e-9)


# ---------------------------------------------------------------- entropic OT
# float64 solves to the precision finite differences need
_TIGHT = {"tol": 1e-13, "max_iter": 100_000}


def _entropic_problem(n_rows, n_ref, dtype=torch.float64, seed=0):
    a, b, M, _ = _problem(n_rows, n_ref, seed)
    return tuple(torch.tensor(x, dtype=dtype) for x in (a, b, M))


def test_sinkhorn_cost_is_the_kl_regularised_cost():
    a, b, M = _entropic_problem(6, 9)
    cost = sinkhorn(a, b, M, 0.1, **_TIGHT)
    plan = ot.sinkhorn(a, b, M, 0.1, method="sinkhorn_log", numItermax=100_000, stopThr=1e-14)
    kl = (plan * (plan / (a[:, None] * b[None, :])).log()).sum()
    assert cost.item() == pytest.approx(((plan * M).sum() + 0.1 * kl).item(), rel=1e-10)
    assert cost.item() > (plan * M).sum().item()  # KL >= 0: never below the transport cost


def test_sinkhorn_gradient_matches_finite_differences():
    # the envelope gradient (set at convergence, not backpropagated) is the derivative of
    # the converged cost; POT's own envelope gradient of the KL cost is off by reg * log(a)
    a, b, M = _entropic_problem(6, 9)
    leaf = a.clone().requires_grad_()
    sinkhorn(leaf, b, M, 0.1, **_TIGHT).backward()
    h, slopes = 1e-5, []
    for i in range(len(a)):
        d = torch.full_like(a, -1 / len(a))
        d[i] += 1  # along e_i - 1/n the masses keep their total: the slope is the centred gradient
        slopes.append((sinkhorn(a + h * d, b, M, 0.1, **_TIGHT)
                       - sinkhorn(a - h * d, b, M, 0.1, **_TIGHT)) / (2 * h))
    centred = leaf.grad - leaf.grad.mean()
    assert centred.abs().max() > 0.1  # a gradient of order 1: the tolerance below is tight
    torch.testing.assert_close(torch.stack(slopes), centred, rtol=0, atol=1e-8)


def _graph_size(tensor):
    """Number of autograd nodes behind ``tensor``."""
    seen, todo = set(), [tensor.grad_fn]
    while todo:
        node = todo.pop()
        if node is not None and node not in seen:
            seen.add(node)
            todo.extend(child for child, _ in node.next_functions)
    return len(seen)


def test_sinkhorn_graph_does_not_grow_with_the_iterations():
    a, b, M = _entropic_problem(32, 64)
    ours, unrolled = {}, {}
    for n_iter in (10, 100, 1000):  # tol=0: every iteration runs
        leaf = a.clone().requires_grad_()
        with pytest.warns(UserWarning, match="did not converge"):
            ours[n_iter] = _graph_size(sinkhorn(leaf, b, M, 0.1, tol=0.0, max_iter=n_iter))
        unrolled[n_iter] = _graph_size(ot.sinkhorn2(leaf, b, M, 0.1, method="sinkhorn_log",
                                                    stopThr=0.0, numItermax=n_iter))
    assert ours[10] == ours[100] == ours[1000] <= 10
    # what the count measures: POT's unrolled Sinkhorn keeps nodes for every iteration
    assert unrolled[10] < unrolled[100] < unrolled[1000]
    assert unrolled[1000] > 100 * ours[1000]


def test_sinkhorn_default_tolerance_is_reached_in_float32():
    # the default batch (32 rows) against the default reference (256 rows)
    a, b, M = _entropic_problem(32, 256, torch.float32)
    leaf = a.clone().requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # POT warns when the tolerance is not reached
        cost = sinkhorn(leaf, b, M, 0.1)
    cost.backward()
    a64, b64, M64 = _entropic_problem(32, 256)
    leaf64 = a64.clone().requires_grad_()
    cost64 = sinkhorn(leaf64, b64, M64, 0.1, **_TIGHT)
    cost64.backward()
    assert cost.item() == pytest.approx(cost64.item(), rel=1e-5)  # measured: <= 1e-6
    grad, grad64 = leaf.grad.double(), leaf64.grad
    # measured: <= 4e-6 with entries of order 0.5
    torch.testing.assert_close(grad - grad.mean(), grad64 - grad64.mean(), rtol=0, atol=1e-4)


def _criterion(n_samples=600, n_ref=256, seed=0):
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n_samples, n_ref, replace=False))
    X = torch.from_numpy(rng.normal(size=(n_samples, 4)).astype(np.float32))
    crit = LossValLoss("classification", X[rows],
                       reference_position=reference_position(rows, np.arange(n_samples)),
                       block_seed=3)
    return crit, X, rows


def test_reference_mask_leaves_out_the_batch_rows():
    crit, _, rows = _criterion()
    idx = torch.arange(0, 600, 3)
    kept = crit.reference_kept(idx)  # the reference rows kept, a numpy index
    np.testing.assert_array_equal(kept, np.flatnonzero(~np.isin(rows, idx.numpy())))
    outside = torch.tensor(np.setdiff1d(np.arange(600), rows)[:50])
    assert crit.reference_kept(outside) is None            # no reference row in the batch
    assert crit.reference_kept(torch.from_numpy(rows)) is None  # all of them: keep all


def _loss_in_weights(crit, logits, y, idx, X, seed=7):
    """The criterion's loss as a function of the batch's weights (a fixed block split)."""
    def loss(weights):
        crit.solver.generator.manual_seed(seed)
        return crit(logits, y, idx, X[idx], weights)
    return loss


@pytest.mark.parametrize("n_samples, n_rows", [
    (600, 20),     # one exact problem
    (600, 200),    # cost matrix built whole, then cut into blocks
    (3000, 600),   # only the blocks' costs are built
])
def test_loss_gradient_in_the_weights(n_samples, n_rows):
    crit, X, _ = _criterion(n_samples)
    crit.double()  # float64 throughout, for finite differences
    X = X.double()
    idx = torch.randperm(n_samples, generator=torch.Generator().manual_seed(0))[:n_rows]
    y = torch.randint(0, 2, (n_rows,), generator=torch.Generator().manual_seed(1))
    logits = torch.randn(n_rows, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    n_ref = len(crit.reference) if crit.reference_kept(idx) is None \
        else len(crit.reference_kept(idx))
    assert (n_rows * n_ref > _FULL_COST_MAX) == (n_rows == 600)
    weights = torch.empty(n_rows, dtype=torch.float64).uniform_(
        0.2, 1.8, generator=torch.Generator().manual_seed(3)).requires_grad_()
    loss = _loss_in_weights(crit, logits, y, idx, X)
    value = loss(weights)
    value.backward()
    # the loss is the task loss times the squared OT cost of the normalised weights
    crit.solver.generator.manual_seed(7)
    distance, _ = crit.ot_distance(X[idx], y, idx, weights.detach())
    task = (weights.detach() * torch.nn.functional.cross_entropy(logits, y, reduction="none")).mean()
    assert value.item() == pytest.approx((task * distance ** 2).item(), rel=1e-12)
    # and weights.grad is its derivative: finite differences along random directions
    rng = np.random.default_rng(4)
    for _ in range(3):
        d = torch.from_numpy(rng.normal(size=n_rows))
        h = 1e-6
        with torch.no_grad():
            slope = (loss(weights + h * d) - loss(weights - h * d)) / (2 * h)
        assert slope.item() == pytest.approx(torch.dot(weights.grad, d).item(), rel=1e-5, abs=1e-12)


def test_batch_leaf_gives_the_gradient_of_the_full_weights():
    # what the training step does (a batch-sized leaf, its gradient added to the n weights)
    # equals autograd through weights[idx]
    crit, X, _ = _criterion(600)
    rows = RowState(600, weight_update="row").start("cpu")
    idx = torch.randperm(600, generator=torch.Generator().manual_seed(0))[:200]
    y = torch.randint(0, 2, (200,), generator=torch.Generator().manual_seed(1))
    logits = torch.randn(200, 2, generator=torch.Generator().manual_seed(2), requires_grad=True)
    with torch.no_grad():
        rows.weights.uniform_(0.2, 1.8)
    _loss_in_weights(crit, logits, y, idx, X)(rows.weights[idx]).backward()
    expected = rows.weights.grad.clone(), logits.grad.clone()
    rows.weights.grad, logits.grad = None, None
    leaf = rows.weights.detach()[idx].requires_grad_()
    _loss_in_weights(crit, logits, y, idx, X)(leaf).backward()
    rows.update.add_grad(idx, leaf.grad)
    torch.testing.assert_close(rows.weights.grad, expected[0], rtol=0, atol=0)
    torch.testing.assert_close(logits.grad, expected[1], rtol=0, atol=0)


def test_large_batches_still_find_flipped_labels():
    # 4,000 rows: the "auto" batch of 40 rows against 256 reference rows is split in 2 blocks
    X, y = make_classification(4000, n_features=10, n_informative=6, random_state=0)
    X, y_noisy, flipped = inject_noise(X, y, kind="label", rate=0.2, random_state=0)
    clf = LossValClassifier(max_epochs=10, random_state=0).fit(X, y_noisy)
    assert clf.net_.batch_size == 40
    assert auroc(clf.data_values_, flipped) >= 0.9


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_label_term_of_the_cost(task):
    reference = torch.zeros(3, 2)
    targets = torch.tensor([0, 1, 1]) if task == "classification" else torch.tensor([0.0, 1.0, -2.0])
    X = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    y = torch.tensor([1, 0]) if task == "classification" else torch.tensor([1.0, 0.0])
    plain = LossValLoss(task, reference, cost_scale=2.0)
    labelled = LossValLoss(task, reference, cost_scale=2.0, reference_targets=targets,
                           label_weight=0.5)
    features = torch.tensor([[0.5, 0.5, 0.5], [2.0, 2.0, 2.0]])  # squared distance / cost_scale
    torch.testing.assert_close(plain.cost(X, y), features)
    if task == "classification":  # a label mismatch costs label_weight
        extra = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    else:  # the squared target difference, times label_weight
        extra = torch.tensor([[1.0, 0.0, 9.0], [0.0, 1.0, 4.0]])
    torch.testing.assert_close(labelled.cost(X, y), features + 0.5 * extra)
    # keep: a mask of the reference rows
    keep = torch.tensor([True, False, True])
    torch.testing.assert_close(labelled.cost(X, y, keep), (features + 0.5 * extra)[:, keep])
    # the host solvers' numpy cost (what a training step builds) is the same matrix, here
    # and against reference rows away from the origin (their norms enter the product form)
    host = labelled._block_cost(labelled._host_arrays(), X.double().numpy(), y.numpy(),
                                np.array([0, 2]))
    assert isinstance(host, np.ndarray) and host.dtype == np.float64
    np.testing.assert_allclose(host, (features + 0.5 * extra)[:, keep].numpy(), rtol=1e-6)
    shifted = LossValLoss(task, torch.tensor([[1.0, 1.0], [-2.0, 0.5], [0.0, 3.0]]),
                          cost_scale=2.0, reference_targets=targets, label_weight=0.5)
    direct = torch.cdist(X, shifted.reference).pow(2) / 2.0 + 0.5 * extra
    host = shifted._block_cost(shifted._host_arrays(), X.double().numpy(), y.numpy(), None)
    np.testing.assert_allclose(host, direct.numpy(), rtol=1e-6)
    torch.testing.assert_close(shifted.cost(X, y), direct)


def test_weight_gradient_buffer_is_reused_and_cleared():
    rows = RowState(100, weight_update="row").start("cpu")
    update = rows.update

    def step(idx):
        update.add_grad(idx, torch.arange(1.0, 11.0))
        return rows.weights.grad

    first = step(torch.arange(0, 10)).clone()
    torch.testing.assert_close(first[:10], torch.arange(1.0, 11.0))
    assert not first[10:].any()
    rows.weights.grad = None  # as zero_grad() does
    second = step(torch.arange(50, 60))
    assert second is update._grad_buffer  # the same n-vector, rebuilt in place
    assert not second[:10].any()
    torch.testing.assert_close(second[50:60], torch.arange(1.0, 11.0))
    assert np.count_nonzero(second.numpy()) == 10
    # a gradient that is already there (zero_grad(set_to_none=False), accumulation) is added to
    rows.weights.grad = torch.ones(100)
    third = step(torch.arange(50, 60))
    torch.testing.assert_close(third[50:60], second[50:60] + 1)
    assert (third[:50] == 1).all()


_PRIOR = torch.log(torch.tensor([0.8, 0.2], dtype=torch.float64))


@pytest.mark.parametrize("log_prior", [None, _PRIOR])
def test_closed_form_gradients_match_autograd_of_the_formula(log_prior):
    # WeightedLoss gives each input's gradient of mean(w * CE) * D(w_ot) ** 2 in closed
    # form: the network's (logits), the task side's and the OT side's, as autograd would
    crit, X, _ = _criterion(600)
    crit.double()
    X = X.double()
    idx = torch.randperm(600, generator=torch.Generator().manual_seed(0))[:40]
    y = torch.randint(0, 2, (40,), generator=torch.Generator().manual_seed(1))
    logits = torch.randn(40, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2),
                         requires_grad=True)
    values = torch.empty(40, dtype=torch.float64).uniform_(
        0.2, 1.8, generator=torch.Generator().manual_seed(3))
    task_w, ot_w = values.clone().requires_grad_(), values.clone().requires_grad_()
    crit.solver.generator.manual_seed(5)
    loss = crit(logits, y, idx, X[idx], task_w, ot_w, log_prior)
    loss.backward()
    crit.solver.generator.manual_seed(5)
    distance, distance_grad = crit.ot_distance(X[idx], y, idx, values)
    ce = torch.nn.functional.cross_entropy(logits.detach(), y, reduction="none")
    reference = logits.detach().clone().requires_grad_()
    (values * torch.nn.functional.cross_entropy(reference, y, reduction="none")).mean().mul(
        distance ** 2).backward()
    torch.testing.assert_close(logits.grad, reference.grad, rtol=1e-12, atol=0)
    shifted = ce if log_prior is None else LossValLoss.evidence_losses(logits, y, log_prior)
    torch.testing.assert_close(task_w.grad, shifted * distance ** 2 / 40, rtol=1e-12, atol=0)
    task = (values * ce).mean()
    torch.testing.assert_close(ot_w.grad, task * 2 * distance * distance_grad, rtol=1e-12, atol=0)
    assert log_prior is None or not torch.allclose(shifted, ce)  # the prior moved the task side
