"""The network's default optimizer, ``LeanAdam``: torch's Adam without ``torch._dynamo``."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification

from skval import LossValClassifier
from skval._adam import LeanAdam, lean_optimizer

pytestmark = pytest.mark.skipif(lean_optimizer(torch.optim.Adam) is not LeanAdam,
                                reason="this torch has no fused Adam kernels")


def _params(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(4, 3, generator=gen)),
            torch.nn.Parameter(torch.randn(3, generator=gen)),
            torch.nn.Parameter(torch.randn(2, generator=gen))]  # never gets a gradient


def _run(optimizer_class, steps=5, fused=True, **options):
    params = _params()
    opt = optimizer_class([{"params": params, "fused": fused}], lr=0.01, **options)
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        opt.zero_grad()
        for p in params[:2]:
            p.grad = torch.randn(p.shape, generator=gen)
        opt.step()
    return params, opt


def test_lean_optimizer_swaps_torch_adam_only():
    assert lean_optimizer(torch.optim.Adam) is LeanAdam
    assert lean_optimizer(torch.optim.SGD) is torch.optim.SGD
    subclass = type("MyAdam", (torch.optim.Adam,), {})
    assert lean_optimizer(subclass) is subclass
    assert issubclass(LeanAdam, torch.optim.Adam)


@pytest.mark.parametrize("options", [
    {}, {"weight_decay": 0.1}, {"amsgrad": True}, {"maximize": True, "betas": (0.8, 0.9)},
    {"weight_decay": 0.1, "decoupled_weight_decay": True},
])
def test_steps_match_torch_fused_adam_bit_for_bit(options):
    lean, lean_opt = _run(LeanAdam, **options)
    ref, ref_opt = _run(torch.optim.Adam, **options)
    for a, b in zip(lean, ref):
        assert torch.equal(a, b)
    assert torch.equal(lean[2], _params()[2])  # no gradient: untouched, no state
    assert len(lean_opt.state) == len(ref_opt.state) == 2
    for a, b in zip(lean[:2], ref[:2]):
        for key, value in ref_opt.state[b].items():
            assert torch.equal(lean_opt.state[a][key], value), key


def test_a_group_torch_would_not_fuse_steps_through_torch():
    lean, _ = _run(LeanAdam, fused=False)
    ref, _ = _run(torch.optim.Adam, fused=False)
    for a, b in zip(lean, ref):
        assert torch.equal(a, b)


def test_state_dict_continues_in_torch_adam():
    lean, lean_opt = _run(LeanAdam, steps=3)
    ref, ref_opt = _run(torch.optim.Adam, steps=3)
    moved = [p.detach().clone().requires_grad_() for p in lean]
    resumed = torch.optim.Adam([{"params": moved, "fused": True}], lr=0.01)
    resumed.load_state_dict(lean_opt.state_dict())
    for opt, params in ((ref_opt, ref), (resumed, moved)):
        for p in params[:2]:
            p.grad = torch.ones_like(p)
        opt.step()
    for a, b in zip(moved, ref):
        assert torch.equal(a, b)


def test_step_returns_the_closures_loss_and_zero_grad_resets():
    params = _params()
    opt = LeanAdam([{"params": params, "fused": True}], lr=0.01)

    def closure():
        opt.zero_grad()
        loss = (params[0] ** 2).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == pytest.approx((_params()[0] ** 2).sum().item())
    opt.zero_grad(set_to_none=False)
    assert torch.equal(params[0].grad, torch.zeros_like(params[0]))
    opt.zero_grad()
    assert params[0].grad is None


def test_add_param_group_checks_its_parameters():
    params = _params()
    opt = LeanAdam(params[:1], lr=0.01)
    opt.add_param_group({"params": params[1], "lr": 0.1})
    assert opt.param_groups[1]["lr"] == 0.1 and opt.param_groups[1]["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="more than once"):
        opt.add_param_group({"params": [params[0]]})
    with pytest.raises(TypeError, match="ordered collections"):
        opt.add_param_group({"params": {params[2]}})
    with pytest.raises(ValueError, match="leaf tensors"):
        opt.add_param_group({"params": [params[2] * 2]})
    with pytest.raises(TypeError, match="must be a dict"):
        opt.add_param_group([params[2]])


def test_a_default_fit_equals_one_through_torch_adam():
    X, y = make_classification(200, 5, random_state=0)
    lean = LossValClassifier(max_epochs=3, random_state=0).fit(X, y)
    through_torch = LossValClassifier(max_epochs=3, random_state=0,
                                      optimizer=type("Adam2", (torch.optim.Adam,), {})).fit(X, y)
    assert isinstance(lean.net_.optimizer_, LeanAdam)
    assert not isinstance(through_torch.net_.optimizer_, LeanAdam)
    assert lean.get_params()["optimizer"] is torch.optim.Adam
    np.testing.assert_array_equal(lean.data_values_, through_torch.data_values_)
    np.testing.assert_array_equal(lean.evidence_, through_torch.evidence_)


def test_a_first_fit_in_a_process_does_not_import_torch_dynamo():
    code = ("import sys\nfrom sklearn.datasets import make_classification\n"
            "from skval import LossValClassifier\n"
            "X, y = make_classification(100, 4, random_state=0)\n"
            "LossValClassifier(max_epochs=2, random_state=0).fit(X, y).predict(X)\n"
            "print('torch._dynamo' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_step_hooks_run_as_torchs_do():
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    params = _params()
    opt = LeanAdam([{"params": params, "fused": True}], lr=0.01)
    calls = []
    opt.register_step_pre_hook(lambda o, args, kwargs: calls.append("pre"))
    opt.register_step_post_hook(lambda o, args, kwargs: calls.append("post"))
    params[0].grad = torch.ones_like(params[0])
    opt.step()
    assert calls == ["pre", "post"]
    bare = LeanAdam([{"params": _params(), "fused": True}], lr=0.01)
    handle = register_optimizer_step_pre_hook(lambda o, args, kwargs: calls.append("global"))
    try:
        bare.step()
    finally:
        handle.remove()
    assert calls == ["pre", "post", "global"]
    bare.step()  # the global hook removed: the bare step again
    assert calls == ["pre", "post", "global"]
