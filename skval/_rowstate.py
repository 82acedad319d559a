"""Everything the method keeps per training row, with one owner.

``RowState`` holds the data weights, their update rule and its state, the clipping
record, the evidence and its running scales, the class counts and, when asked, the
weights of every epoch. The training step, the results and the multi-process gather
use it through one interface:

* ``read(rows)``: the batch rows' current weights;
* ``log_prior(y)``: count a batch's labels, the log class frequencies (or None);
* ``step(rows, task_grad, ot_grad)``: the weights' gradient of a step, by side:
  the update, the clip and the evidence;
* ``end_epoch()``, ``values()``, ``evidence``, ``history()``;
* ``export(rows)`` / ``load(parts)``: the whole state of some rows, and back.

A new per-row statistic is a buffer here, filled in ``step`` and listed in
``_PER_ROW``; ``export`` and ``load`` then carry it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ._arrays import host_views, lower_median
from ._weights import BatchScaledMomentum, OptimizerUpdate

# Rows clipped at 0 are ranked within this distance below 0 (see values).
_TIE_BAND = 1e-3
# Decay of the running scale of each side of the evidence (as Adam's second moment).
_EVIDENCE_BETA = 0.999
# The per-row buffers (besides the weights): exported and loaded at their rows.
_PER_ROW = ("clipped", "evidence")


class RowState(nn.Module):
    """The data weights and everything else kept per training row.

    Parameters
    ----------
    n_rows : int
        Number of training rows.
    weight_update : {"batch", "row"}, default="batch"
        ``"batch"``: ``BatchScaledMomentum``. ``"row"``: a torch optimizer of the
        weights' own (``OptimizerUpdate``).
    lr : float, default=0.01
        Learning rate of the weights.
    clip : bool, default=True
        Clip the weights at 0 after every step, recording how far below 0.
    n_classes : int or None, default=None
        Classification with ``class_balanced``: count the labels, for
        ``log_prior``.
    record_history : bool, default=False
        Keep a copy of the weights at the end of every epoch.
    optimizer : type, default=torch.optim.Adam
        The optimizer class of ``"row"``.
    optimizer_kwargs : dict or None, default=None
        Its further keyword arguments.
    """

    def __init__(self, n_rows, weight_update="batch", lr=0.01, clip=True, n_classes=None,
                 record_history=False, optimizer=torch.optim.Adam, optimizer_kwargs=None):
        super().__init__()
        self.weights = nn.Parameter(torch.ones(n_rows, dtype=torch.float32))
        self.register_buffer("clipped", torch.zeros(n_rows))
        self.register_buffer("evidence", torch.zeros(n_rows, 2))
        # running mean of the squared batch median of each side of the evidence (host
        # floats: a step's scalars cost no tensor ops)
        self._evidence_sq = [0.0, 0.0]
        self.evidence_steps = 0
        self.n_classes = int(n_classes) if n_classes else None
        self.register_buffer("class_counts", torch.zeros(self.n_classes or 0, dtype=torch.float64))
        self.weight_update, self.lr, self.clip_weights = weight_update, lr, clip
        self.optimizer, self.optimizer_kwargs = optimizer, dict(optimizer_kwargs or {})
        self._history = [] if record_history else None
        self.update = None  # see start
        # a step's work on numpy views of CPU tensors (skval._arrays); False: torch's ops
        self.host = True

    def start(self, device_type):
        """A fresh update rule for the weights where they now are (``device_type``)."""
        if self.weight_update == "batch":
            self.update = BatchScaledMomentum(self.weights, lr=self.lr, clip=self.clip_weights,
                                              host=self.host)
        else:
            self.update = OptimizerUpdate(self.weights, self.optimizer, self.lr,
                                          self.optimizer_kwargs, device_type)
        return self

    # ------------------------------------------------------------------ the training step
    def read(self, rows):
        """The current weights of the batch rows ``rows`` (detached)."""
        self.update.catch_up(rows)  # the lazy update's skipped steps
        return self.weights.detach()[rows]

    def log_prior(self, y):
        """Count the labels ``y`` (in training), then the log class frequencies; or None.

        The frequencies are those of the observed labels counted so far, wrong ones
        included, so a class swollen by wrong labels gets a small offset.
        """
        if self.n_classes is None:
            return None
        if self.training:
            self.class_counts += torch.bincount(y, minlength=self.n_classes)[:self.n_classes]
        counts = self.class_counts + 1  # a class not seen yet is rare, not impossible
        return counts.log_() - counts.sum().log()

    def step(self, rows, task_grad, ot_grad):
        """Record and apply a step's gradient of the batch rows' weights.

        ``task_grad`` and ``ot_grad`` are its two sides, from the task term and from
        the OT term: added to the evidence, summed for the update, then the clip.
        The batch rows are distinct.
        """
        rows, task_grad, ot_grad = host_views(rows, task_grad, ot_grad, host=self.host)
        self.record_evidence(rows, task_grad, ot_grad)
        self.update.step(rows, task_grad + ot_grad)
        if self.clip_weights:
            self.clip(rows, every_row=self.update.moves_every_row)

    def record_evidence(self, rows, task_grad, ot_grad):
        """Add a step's gradient of the batch rows' weights, by side, to ``evidence``.

        A positive gradient pushes a weight down: it is evidence against the row,
        from its label or target (``task_grad``) or from its features (``ot_grad``).
        Each side is divided by its own running scale (the root of a slow running mean
        of the squared batch median of its absolute value), so that the two sides are
        comparable, and a step late in training, when the losses are small, counts as
        much as an early one. The scales are host floats, computed as float64 tensor
        arithmetic would, operation by operation. The batch rows are distinct.
        """
        rows, evidence, *grads = host_views(rows, self.evidence, task_grad, ot_grad,
                                            host=self.host)
        self.evidence_steps += 1
        correction = 1 - _EVIDENCE_BETA ** self.evidence_steps
        for side, grad in enumerate(grads):
            median = lower_median(abs(grad))
            sq = self._evidence_sq[side] * _EVIDENCE_BETA + median * median * (1 - _EVIDENCE_BETA)
            self._evidence_sq[side] = sq
            scale = float(np.float32(max(math.sqrt(sq / correction), 1e-30)))
            evidence[rows, side] += grad / scale

    @property
    def evidence_sq(self):
        """The running mean of the squared batch median of each side, a float64 tensor."""
        return torch.tensor(self._evidence_sq, dtype=torch.float64)

    def clip(self, rows, every_row=False):
        """Clip the batch rows' weights at 0 and record how far below 0 they went.

        Without a record every clipped row would tie at 0; ``clipped`` keeps, for each
        row, the total its own steps would have taken it below 0, which orders them.
        ``every_row`` also clips the rows outside the batch (O(n)): for an update that
        moves them at every step (torch's optimizer); the lazy batch update clips
        them when it catches them up.
        """
        weights, clipped, rows = host_views(self.weights.detach(), self.clipped, rows,
                                            host=self.host)
        batch = weights[rows]
        clipped[rows] += batch.clip(max=0.0)
        if every_row:
            weights[:] = weights.clip(min=0.0)
        else:
            weights[rows] = batch.clip(min=0.0)

    def flush(self):
        """Bring every row's weight up to date (O(n))."""
        if self.update is not None:
            self.update.flush()

    def end_epoch(self):
        """Bring every row up to date; with ``record_history``, keep a copy of the weights."""
        self.flush()
        if self._history is not None:
            self._history.append(self.weights.detach().cpu().numpy().copy())

    # ------------------------------------------------------------------ the results
    def values(self):
        """The rows' weights; rows clipped at 0 ranked just below 0 by ``clipped``.

        A clipped row's value is ``-_TIE_BAND * c / (1 + c)`` with ``c`` the total
        its steps would have taken it below 0: lower the further it was pushed, but
        never more than ``_TIE_BAND`` below 0, so the scale of the values (and a
        2-means split of them) stays that of the weights.
        """
        weights = self.weights.detach()
        below = -self.clipped
        ranked = below.div(1 + below).mul_(-_TIE_BAND)
        return torch.where((weights <= 0) & (below > 0), ranked, weights)

    def history(self):
        """The weights of every epoch, shape ``(n_epochs, n_rows)``, or None."""
        if self._history is None:
            return None
        return np.asarray(self._history, dtype=np.float32).reshape(-1, len(self.weights))

    # ------------------------------------------------------------------ the gather
    @torch.no_grad()
    def export(self, rows=None):
        """The whole state of the rows ``rows`` (None: all), on the CPU.

        Returns
        -------
        state : dict
            ``"per_row"``: tensors with one entry per row of ``rows``; ``"shared"``:
            what the rows share (the running scales, the class counts, step counts).
        """
        index = slice(None) if rows is None else np.asarray(rows)
        rows = index if rows is None else torch.as_tensor(index, device=self.weights.device)
        self.flush()
        update_rows, update_shared = self.update.export(rows)
        per_row = {"weights": self.weights.detach()[rows].cpu(),
                   **{name: getattr(self, name)[rows].cpu() for name in _PER_ROW},
                   **{f"update.{k}": v for k, v in update_rows.items()}}
        history = self.history()
        if history is not None:
            per_row["history"] = torch.from_numpy(np.ascontiguousarray(history[:, index]))
        shared = {"evidence_sq": self.evidence_sq, "evidence_steps": self.evidence_steps,
                  "class_counts": self.class_counts.cpu(), "update": update_shared}
        return {"per_row": per_row, "shared": shared}

    @torch.no_grad()
    def load(self, parts):
        """Load ``(rows, state)`` pairs from ``export``: every row's state at its rows.

        The shared state of several parts (processes) is combined: the class counts
        summed, the running scales averaged, the step counts (equal) from the first.
        """
        device = self.weights.device
        for rows, state in parts:
            rows = torch.as_tensor(rows, device=device)
            per_row = state["per_row"]
            self.weights[rows] = per_row["weights"].to(device)
            for name in _PER_ROW:
                getattr(self, name)[rows] = per_row[name].to(device)
            self.update.load(rows, {k[len("update."):]: v for k, v in per_row.items()
                                    if k.startswith("update.")})
        self._load_shared([state["shared"] for _, state in parts])
        self._load_history(parts)

    def _load_shared(self, shared):
        first = shared[0]
        self._evidence_sq = torch.stack([s["evidence_sq"] for s in shared]).mean(0).tolist()
        self.evidence_steps = first["evidence_steps"]
        self.class_counts.copy_(torch.stack([s["class_counts"] for s in shared]).sum(0))
        update = dict(first["update"])
        if "exp_avg_sq" in update:  # the batch update's shared second moment
            update["exp_avg_sq"] = torch.stack([s["update"]["exp_avg_sq"] for s in shared]).mean()
        self.update.load_shared(update)

    def _load_history(self, parts):
        if self._history is None or "history" not in parts[0][1]["per_row"]:
            return
        n_epochs = len(parts[0][1]["per_row"]["history"])
        history = np.zeros((n_epochs, len(self.weights)), np.float32)
        for rows, state in parts:
            history[:, np.asarray(rows)] = state["per_row"]["history"].numpy()
        self._history = list(history)
