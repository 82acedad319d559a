"""The lazy batch update of the data weights equals the eager one it replaces."""

import numpy as np
import pytest
import torch
from torch import nn

from skval._weights import BatchScaledMomentum


class EagerMomentum:
    """The eager rule, written out: every step decays and applies every row's momentum."""

    def __init__(self, weights, lr, clip, betas=(0.9, 0.999), eps=1e-12):
        self.weights, self.lr, self.clip, self.betas, self.eps = weights, lr, clip, betas, eps
        self.exp_avg = torch.zeros_like(weights, dtype=torch.float64)
        self.exp_avg_sq, self.steps = 0.0, 0

    @torch.no_grad()
    def step(self, idx, grad):
        beta1, beta2 = self.betas
        self.steps += 1
        self.exp_avg.mul_(beta1)
        self.exp_avg[idx] += (1 - beta1) * grad.double()
        median = float(grad.abs().median())
        self.exp_avg_sq = beta2 * self.exp_avg_sq + (1 - beta2) * median ** 2
        denom = np.sqrt(self.exp_avg_sq / (1 - beta2 ** self.steps)) + self.eps
        self.weights -= self.lr / (1 - beta1 ** self.steps) / denom * self.exp_avg
        if self.clip:
            self.weights.clamp_(min=0.0)


def _batches(n, batch, steps, rng, skip_rows=()):
    """Row numbers of ``steps`` batches, epoch by epoch, never touching ``skip_rows``."""
    rows = np.setdiff1d(np.arange(n), skip_rows)
    out = []
    while len(out) < steps:
        order = rng.permutation(rows)
        out += [order[i:i + batch] for i in range(0, len(order), batch)]
    return [torch.as_tensor(b) for b in out[:steps]]


@pytest.mark.parametrize("clip", [False, True])
def test_lazy_update_equals_the_eager_one(clip):
    rng = np.random.default_rng(0)
    n, steps = 40, 900  # more steps than the lazy update's window (421 at beta1 = 0.9)
    start = torch.as_tensor(rng.uniform(0.5, 1.5, n), dtype=torch.float32)
    lazy_w, eager_w = nn.Parameter(start.clone()), start.double().clone()
    lazy = BatchScaledMomentum(lazy_w, lr=0.01, clip=clip)
    eager = EagerMomentum(eager_w, lr=0.01, clip=clip)
    # rows 0 and 1 are trained in the first steps only, then skipped for > window steps
    early = [torch.tensor([0, 1, 2, 3])] * 3
    for i, idx in enumerate(early + _batches(n, 6, steps, rng, skip_rows=(0, 1))):
        lazy.catch_up(idx)
        # what the training step reads of the batch rows is the eager update's value
        np.testing.assert_allclose(lazy_w.detach()[idx].numpy(), eager_w[idx].numpy(),
                                   rtol=1e-5, atol=1e-5, err_msg=f"step {i}")
        # gradients that keep pushing some rows down (below 0 without the clip)
        grad = torch.as_tensor(rng.normal(0.3, 1.0, len(idx)), dtype=torch.float32)
        if i < 3:
            grad = torch.tensor([5.0, -5.0, 0.1, 0.1])
        lazy.step(idx, grad)
        eager.step(idx, grad)
        if i == steps // 2:  # a flush in the middle changes nothing
            lazy.flush()
    lazy.flush()
    np.testing.assert_allclose(lazy_w.detach().numpy(), eager_w.numpy(), rtol=1e-5, atol=1e-5)
    assert lazy_w[0] < start[0] - 0.05 and lazy_w[1] > start[1] + 0.05  # the early pushes stayed
    if clip:
        assert (lazy_w.detach() >= 0).all() and (eager_w == 0).any()
    else:
        assert (lazy_w.detach() < 0).any()


def test_a_step_touches_only_the_batch_rows():
    weights = nn.Parameter(torch.ones(10_000))
    update = BatchScaledMomentum(weights, lr=0.1)
    update.step(torch.tensor([0, 1]), torch.tensor([1.0, -1.0]))
    before = weights.detach().clone()
    update.step(torch.tensor([5, 6]), torch.tensor([1.0, 2.0]))
    changed = torch.nonzero(weights.detach() != before).squeeze(1)
    np.testing.assert_array_equal(changed.numpy(), [5, 6])  # rows 0, 1 wait for their replay
    update.catch_up(torch.tensor([0, 1]))
    assert weights[0] < before[0] and weights[1] > before[1]


@pytest.mark.parametrize("weight_update", ["batch", "row"])
def test_row_state_travels_whole(weight_update):
    """export / load: every row's state, in parts (the processes' shards), comes back."""
    from skval._rowstate import RowState

    def state():
        return RowState(10, weight_update=weight_update, record_history=True,
                        n_classes=3).start("cpu")

    trained, gen = state(), torch.Generator().manual_seed(0)
    for _ in range(5):
        idx = torch.randperm(10, generator=gen)[:4]
        trained.read(idx)
        trained.log_prior(torch.randint(0, 3, (4,), generator=gen))
        trained.step(idx, torch.randn(4, generator=gen), torch.randn(4, generator=gen))
        trained.end_epoch()
    loaded = state()
    parts = [np.array([0, 2, 4, 6, 8]), np.array([1, 3, 5, 7, 9])]
    loaded.load([(rows, trained.export(rows)) for rows in parts])
    before, after = trained.export(), loaded.export()
    for key, value in before["per_row"].items():  # weights, clip record, evidence, moments, history
        torch.testing.assert_close(after["per_row"][key], value, rtol=0, atol=0, msg=key)
    np.testing.assert_array_equal(loaded.values(), trained.values())
    # shared: the parts' label counts add up, the running scales are averaged
    torch.testing.assert_close(loaded.class_counts, 2 * trained.class_counts)
    torch.testing.assert_close(loaded.evidence_sq, trained.evidence_sq)
    assert loaded.evidence_steps == trained.evidence_steps == 5


@pytest.mark.parametrize("weight_update", ["batch", "row"])
def test_host_arrays_and_torch_ops_keep_the_same_state(weight_update):
    """The step's work on numpy views (the CPU) and as torch operations (any other device)
    is one piece of code: run on the CPU both ways, every row's state agrees."""
    from skval._rowstate import RowState

    def trained(host):
        rows = RowState(50, weight_update=weight_update)
        rows.host = host
        rows.start("cpu")
        gen = torch.Generator().manual_seed(0)
        for step in range(600):  # beyond the lazy update's window, with flushes
            idx = torch.randperm(50, generator=gen)[:7]
            rows.read(idx)
            # a push down on the first rows: some clip at 0 and are recorded
            push = torch.where(idx < 5, 3.0, 0.0)
            rows.step(idx, torch.randn(7, generator=gen) + push, torch.randn(7, generator=gen))
            if step % 100 == 99:
                rows.end_epoch()
        rows.end_epoch()
        return rows

    host, device_ops = trained(True), trained(False)
    if weight_update == "batch":  # the lazy update's own arrays follow the same choice
        assert isinstance(host.update._moved, np.ndarray)
        assert isinstance(device_ops.update._moved, torch.Tensor)
    assert (host.values() < 0).any()  # the clip record took part
    for key, value in host.export()["per_row"].items():
        torch.testing.assert_close(device_ops.export()["per_row"][key], value, rtol=1e-5,
                                   atol=1e-6, msg=key)
    torch.testing.assert_close(device_ops.evidence_sq, host.evidence_sq)
