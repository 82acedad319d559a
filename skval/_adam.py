"""The network's default optimizer: torch's Adam, stepped without ``torch._dynamo``.

Every ``torch.optim.Optimizer`` imports ``torch._dynamo`` the first time it adds a
parameter group, zeroes gradients or steps (to shield those methods from
compilation): about 0.7-1 s, a third of a default 1,000-row fit, paid by the first
fit in every process (a command line run, a notebook's first cell, a worker).
``LeanAdam`` is ``torch.optim.Adam`` with those three methods written without it:
where every group runs torch's fused kernel (float32 parameters on the CPU or
another device that has it, a float learning rate, no AMP gradient scaling) a step
calls that kernel exactly as ``torch.optim.Adam`` does, so a fit's values are the
same to the last bit; anything else (a tensor learning rate, ``capturable``,
``differentiable``, sparse gradients) steps through ``torch.optim.Adam.step``.
The estimators' ``optimizer`` parameter stays ``torch.optim.Adam``:
``lean_optimizer`` swaps the class only when building the net.
"""

from __future__ import annotations

import sys

import torch

__all__ = ["LeanAdam", "lean_optimizer"]

# torch's fused Adam kernels (since torch 2.4 on the CPU)
_KERNELS = (getattr(torch, "_fused_adam_", None), getattr(torch, "_fused_adamw_", None))


def lean_optimizer(optimizer):
    """``LeanAdam`` for ``torch.optim.Adam`` if torch has its fused kernels, else ``optimizer``."""
    if optimizer is torch.optim.Adam and all(_KERNELS):
        return LeanAdam
    return optimizer


class LeanAdam(torch.optim.Adam):
    """``torch.optim.Adam`` whose group setup, ``zero_grad`` and fused step skip ``torch._dynamo``.

    Parameters and state are ``torch.optim.Adam``'s (its ``state_dict`` loads into
    one and back).
    """

    def add_param_group(self, param_group):
        """Add a group of parameters, filling in the defaults (as ``Optimizer.add_param_group``).

        Parameters
        ----------
        param_group : dict
            ``"params"`` (a tensor or an iterable of tensors) and any of the
            optimizer's options.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}.")
        params = param_group["params"]
        if isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs.")
        params = [params] if isinstance(params, torch.Tensor) else list(params)
        for p in params:
            if not isinstance(p, torch.Tensor) or not p.is_leaf:
                raise ValueError("optimizer can only optimize leaf tensors.")
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        if len({id(p) for p in params}) < len(params) or seen & {id(p) for p in params}:
            raise ValueError("some parameters appear more than once in the optimizer's groups.")
        self.param_groups.append({**self.defaults, **param_group, "params": params})

    def zero_grad(self, set_to_none=True):
        """Reset every parameter's gradient (to None, or to zeros in place).

        Parameters
        ----------
        set_to_none : bool, default=True
        """
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_().requires_grad_(False)
                    p.grad.zero_()

    def step(self, closure=None):
        """One Adam step (``closure``, if given, re-evaluates the loss first).

        Step hooks (``register_step_pre_hook``, ``register_step_post_hook`` and
        torch's global ones) run as torch runs them, in a profiler range; without
        any, neither runs (torch would enter the range at every step).

        Parameters
        ----------
        closure : callable or None, default=None

        Returns
        -------
        loss : the closure's loss, or None
        """
        if self._optimizer_step_pre_hooks or self._optimizer_step_post_hooks or _global_hooks():
            return self._step_with_hooks(closure)
        return self._step(closure)

    # torch's Optimizer.__init__ wraps a step that is not marked in its hook runner
    step.hooked = True

    def _step(self, closure=None):
        scaled = getattr(self, "grad_scale", None) is not None  # set by a GradScaler (AMP)
        if scaled or not all(_runs_fused(group) for group in self.param_groups):
            return super().step(closure)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            for group in self.param_groups:
                self._fused_step(group)
        return loss

    _step_with_hooks = torch.optim.Optimizer.profile_hook_step(_step)

    def _fused_step(self, group):
        tensors = [[], [], [], [], [], []]  # params, grads, moments, squares, maxima, steps
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p] or self._new_state(p, group["amsgrad"])
            for column, tensor in zip(tensors, (p, p.grad, state["exp_avg"], state["exp_avg_sq"],
                                                state.get("max_exp_avg_sq"), state["step"])):
                if tensor is not None:
                    column.append(tensor)
        if not tensors[0]:
            return
        beta1, beta2 = group["betas"]
        torch._foreach_add_(tensors[5], 1)
        kernel = _KERNELS[1] if group.get("decoupled_weight_decay") else _KERNELS[0]
        kernel(*tensors, amsgrad=group["amsgrad"], lr=group["lr"], beta1=beta1, beta2=beta2,
               weight_decay=group["weight_decay"], eps=group["eps"], maximize=group["maximize"],
               grad_scale=None, found_inf=None)

    def _new_state(self, p, amsgrad):
        """Adam's state of a parameter's first step, laid out as torch's fused Adam lays it."""
        state = self.state[p]
        state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
        state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if amsgrad:
            state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state


def _global_hooks():
    """Whether torch's global optimizer step hooks hold any (True where unknown)."""
    module = sys.modules.get("torch.optim.optimizer")
    hooks = [getattr(module, name, None)
             for name in ("_global_optimizer_pre_hooks", "_global_optimizer_post_hooks")]
    return any(h is None or len(h) > 0 for h in hooks)


def _runs_fused(group):
    """Whether torch's Adam would step ``group`` with its fused kernel, plain floats given."""
    return (bool(group.get("fused")) and not group.get("capturable")
            and not group.get("differentiable") and not isinstance(group["lr"], torch.Tensor)
            and all(p.grad is None or (p.dtype == torch.float32 and not p.grad.is_sparse)
                    for p in group["params"]))
