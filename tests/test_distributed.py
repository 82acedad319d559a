"""One fit on several processes (``n_workers``, ``python -m skval.distributed``).

Two processes, gloo on loopback, a file store, one torch thread each; a process-group timeout
of 60 s turns a hang into a failure. Two two-process fits serve most tests: ``two_process_fit``
(breast_cancer with 20 % flipped labels, default batches, 10 epochs: the quality and the fitted
estimator) and ``uneven_fit`` (its first 513 rows, shards of 257 and 256 rows, which batches of
16 rows per process cut into 17 and 16: uneven shards neither hang nor split the replicas, and
the fit matches a one-process simulation).
"""

import functools
import multiprocessing
import os
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from sklearn.base import clone
from torch import nn

from skval import LossValClassifier, LossValRegressor, _distributed, _launch, _shard
from skval._net import LossValNet
from skval.distributed import main as cli_main
from skval.evaluation import auroc

try:
    import psutil
except ImportError:  # pragma: no cover - optional: multiprocessing's own list suffices
    psutil = None

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 60
# 513 rows: shards of 257 and 256 rows; batch_size=32 gives each process 16 rows per step,
# which cut the shards into 17 and 16 batches.
N_ROWS, STEPS = 513, 17
# the sharding machinery on the user's rows alone (canaries are rows like any other:
# test_fitted_estimator_is_ordinary and the torchrun test fit with them)
PARAMS = {"max_epochs": 3, "batch_size": 32, "random_state": 0, "record_history": True,
          "canaries": 0}


def _spawned_children():
    """This process's multiprocessing children that are still alive (the resource tracker aside)."""
    if psutil is None:
        return [p.pid for p in multiprocessing.active_children()]
    return [c.pid for c in psutil.Process().children(recursive=True)
            if c.is_running() and c.status() != psutil.STATUS_ZOMBIE
            and "resource_tracker" not in " ".join(c.cmdline())]


def _fit_on_two(est, X, y):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_distributed, "_TIMEOUT_S", TIMEOUT_S)
        start = time.perf_counter()
        est.fit(X, y)
    assert time.perf_counter() - start < TIMEOUT_S
    return est


@pytest.fixture(scope="module")
def two_process_fit(flipped_cancer):
    X, y, _, _ = flipped_cancer
    return _fit_on_two(LossValClassifier(n_workers=2, max_epochs=10, random_state=0), X, y)


@pytest.fixture(scope="module")
def uneven_fit(flipped_cancer):
    X, y, _, _ = flipped_cancer
    return _fit_on_two(LossValClassifier(n_workers=2, **PARAMS), X[:N_ROWS], y[:N_ROWS])


# ----------------------------------------------------------------------------- the split

@pytest.mark.parametrize("n, k", [(2, 2), (569, 2), (1000, 3), (7, 4), (100_003, 8)])
def test_shards_partition_the_rows(n, k):
    shards = _shard.shard_rows(n, k, seed=5)
    rows = np.concatenate(shards)
    assert len(rows) == n and np.array_equal(np.sort(rows), np.arange(n))  # disjoint, all rows
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1
    assert all(np.all(np.diff(s) > 0) for s in shards)
    again = _shard.shard_rows(n, k, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(shards, again))  # every rank agrees


def test_every_shard_runs_the_same_number_of_steps():
    n_batches, tail = _shard.steps_per_epoch([257, 256], 16)
    assert (n_batches, tail) == (STEPS, 1)
    for n_rows in (257, 256):
        sampler = _shard.ShardBatches(n_rows, 16, n_batches, tail, seed=0)
        for _ in range(3):  # a new shuffle every epoch, always 17 batches
            batches = list(sampler)
            assert len(batches) == len(sampler) == STEPS
            assert all(len(set(b)) == len(b) for b in batches)  # distinct rows in a batch
            seen = np.concatenate(batches)
            assert set(seen) == set(range(n_rows))  # every row of the shard, every epoch
            assert len(seen) == 257  # the short shard: an extra batch of 1 row


@pytest.mark.parametrize("batch_size, n, expected", [
    ("auto", 569, 16),           # one process: 32 rows a step; two: 16 each
    ("auto", 20_000, 100),       # one process: 200
    ("auto", 1_000_000, 1024),   # one process: 1024 (capped); the cap is per process
    (32, 513, 16),
    (33, 10_000, 17),            # rounded up
])
def test_a_step_shares_the_one_process_batch(batch_size, n, expected):
    est = LossValClassifier(batch_size=batch_size)
    assert _shard.batch_per_process(est.batch_size, n, True, 2) == expected


# ----------------------------------------------------------------------------- the fit

@pytest.mark.parametrize("fit", ["two_process_fit", "uneven_fit"])
def test_replicas_are_identical(fit, request):
    digests = request.getfixturevalue(fit)._distributed_stats["replica_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]


@pytest.mark.parametrize("fit", ["two_process_fit", "uneven_fit"])
def test_each_step_all_reduces_the_network_gradients_only(fit, request):
    est = request.getfixturevalue(fit)
    stats = est._distributed_stats
    n_params = sum(p.numel() for p in est.net_.module_.parameters())
    assert stats["steps"][0] == stats["steps"][1] > 0
    for elements, steps in zip(stats["allreduced_elements"], stats["steps"]):
        assert elements == steps * n_params  # the network's gradients, no data weight


def test_uneven_shards_finish(uneven_fit):
    stats = uneven_fit._distributed_stats
    assert stats["shard_sizes"] == [257, 256] and stats["batch_per_process"] == 16
    assert stats["steps"] == [PARAMS["max_epochs"] * STEPS] * 2  # 17 and 16 batches: 17 each
    assert uneven_fit.n_epochs_ == PARAMS["max_epochs"]
    history = uneven_fit.weight_history_  # every shard's weights, every epoch, at their rows
    assert history.shape == (PARAMS["max_epochs"], N_ROWS)
    np.testing.assert_array_equal(history[-1], uneven_fit.net_.rows_.weights.detach())


def test_fitted_estimator_is_ordinary(two_process_fit, flipped_cancer):
    X, _, flipped, y_clean = flipped_cancer
    est = two_process_fit
    assert type(est.net_) is LossValNet
    assert not isinstance(est.net_.module_, nn.parallel.DistributedDataParallel)
    assert est.data_values_.shape == (len(X),) and est.evidence_.shape == (len(X), 2)
    assert len(est.net_.rows_.weights) == len(X) + 2 * 14  # the canaries, trained and left out
    assert est.noise_shares_[0] > 0.1 > est.noise_shares_[1]  # 20 % of the labels flipped
    assert auroc(est.data_values_, flipped) > 0.8  # the values are in the user's row order
    assert est.score(X, y_clean) > 0.85
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(loaded.data_values_, est.data_values_)
    assert clone(est).get_params()["n_workers"] == 2


def _average_then_step(barrier, step, closure):
    """An optimizer's ``step(closure)`` that waits for the other net's gradients first."""
    loss = closure()
    barrier.wait()  # the barrier's action has averaged both nets' network gradients
    step()
    return loss


def test_matches_a_one_process_simulation(uneven_fit, flipped_cancer):
    """Two shard nets in this process, trained by their own skorch loop in two threads,
    their network gradients averaged at every step before each optimizer's step: what DDP
    does, without DDP. Same values and network as the two-process fit."""
    X, y, _, _ = flipped_cancer
    est = LossValClassifier(**PARAMS)
    prep = est._prepare(X[:N_ROWS], y[:N_ROWS], None, None)
    plan, shards = _distributed.make_plan(est._net_spec(prep), prep, 2, "gloo")
    built = [_shard.build_shard_net(plan, _shard.shard_data(prep, rows), rank)
             for rank, rows in enumerate(shards)]
    nets = [net for net, _ in built]

    def average():
        for params in zip(*(net.module_.parameters() for net in nets)):
            mean = torch.stack([p.grad for p in params]).mean(0)
            for p in params:
                p.grad.copy_(mean)

    barrier = threading.Barrier(2, action=average, timeout=TIMEOUT_S)
    for net in nets:
        net.optimizer_.step = functools.partial(_average_then_step, barrier, net.optimizer_.step)
    threads = [threading.Thread(target=net.partial_fit, args=(dataset, None))
               for net, dataset in built]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    fitted = uneven_fit.net_
    for a, b in zip(nets[0].module_.parameters(), fitted.module_.parameters()):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)
    for net, rows in zip(nets, shards):
        np.testing.assert_allclose(net.rows_.values().numpy(),
                                   uneven_fit.data_values_[rows], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(net.rows_.evidence.numpy(),
                                   uneven_fit.evidence_[rows], rtol=1e-4, atol=1e-5)


def test_one_worker_is_the_ordinary_fit(diabetes):
    # n_workers=1 trains in the caller's process, outside any torch.distributed group: not
    # a spawned process, not a group of one. A callback sees where each epoch ran (defined
    # here, it cannot be pickled to another process: a spawned fit fails outright).
    from skorch.callbacks import Callback

    X, y = diabetes
    epochs = []

    class WhereItRan(Callback):
        def on_epoch_end(self, net, **kwargs):
            epochs.append((os.getpid(), dist.is_initialized(), threading.current_thread().name))

    one = LossValRegressor(max_epochs=2, random_state=0, n_workers=1,
                           callbacks=[WhereItRan()]).fit(X, y)
    assert epochs == [(os.getpid(), False, threading.current_thread().name)] * 2
    # and it is what a fit without n_workers does (the callback only watches)
    plain = LossValRegressor(max_epochs=2, random_state=0).fit(X, y)
    np.testing.assert_array_equal(one.data_values_, plain.data_values_)
    np.testing.assert_array_equal(one.evidence_, plain.evidence_)
    for a, b in zip(one.net_.module_.parameters(), plain.net_.module_.parameters()):
        assert torch.equal(a, b)


class FailsOnRank1(nn.Module):
    """A network whose forward raises in the process of rank 1."""

    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.lin = nn.Linear(n_features, n_outputs)

    def forward(self, X):
        if dist.is_initialized() and dist.get_rank() == 1:
            raise RuntimeError("deliberate failure on rank 1")
        return self.lin(X)


def test_a_worker_exception_surfaces_and_no_process_is_left(flipped_cancer, monkeypatch):
    X, y, _, _ = flipped_cancer
    monkeypatch.setattr(_distributed, "_TIMEOUT_S", TIMEOUT_S)
    before = set(_spawned_children())
    # children of earlier tests (joblib's loky workers) may live on: only the fit's must go
    children_before = set(multiprocessing.active_children())
    est = LossValClassifier(FailsOnRank1, n_workers=2, max_epochs=2, random_state=0)
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match="deliberate failure on rank 1") as info:
        est.fit(X, y)
    assert time.perf_counter() - start < TIMEOUT_S  # rank 0, blocked in an all-reduce, was stopped
    cause = info.value.__cause__
    assert isinstance(cause, _launch.RemoteTraceback)
    assert "Worker 1 of 2" in str(cause) and "Traceback" in str(cause)
    assert "in forward" in str(cause)  # the worker's own frames
    assert set(multiprocessing.active_children()) <= children_before
    assert set(_spawned_children()) <= before
    assert not hasattr(est, "data_values_")


@pytest.mark.parametrize("value, exc, match", [
    (0, ValueError, "n_workers must be > 0, got 0"),
    (1.5, TypeError, "n_workers must be an int > 0, got 1.5"),
    (True, TypeError, "n_workers must be an int > 0, got True"),
])
def test_bad_n_workers(value, exc, match):
    est = LossValClassifier(n_workers=value, max_epochs=1)
    with pytest.raises(exc, match=match):
        est.fit(np.zeros((4, 2)), [0, 1, 0, 1])
    assert not hasattr(est, "net_")


def test_n_workers_needs_a_device_per_process():
    with pytest.raises(ValueError, match="n_workers > 1 trains on device='cpu'"):
        LossValClassifier(n_workers=2, device="meta").fit(np.zeros((4, 2)), [0, 1, 0, 1])
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            LossValClassifier(n_workers=2, device="cuda").fit(np.zeros((4, 2)), [0, 1, 0, 1])


def test_more_workers_than_rows_is_refused():
    X, y = np.random.RandomState(0).normal(size=(3, 2)), np.array([0, 1, 0])
    with pytest.raises(ValueError, match="n_workers=4 is more than the 3 rows"):
        LossValClassifier(n_workers=4, max_epochs=1).fit(X, y)


# ----------------------------------------------------------------------------- torchrun

def _cli_data(tmp_path, flipped_cancer):
    X, y, _, _ = flipped_cancer
    path = tmp_path / "data.npy"
    np.save(path, np.column_stack([X[:200], y[:200]]))
    return path


def test_torchrun_two_processes(tmp_path, flipped_cancer):
    data = _cli_data(tmp_path, flipped_cancer)
    values, model = tmp_path / "values.csv", tmp_path / "model.pkl"
    torchrun = Path(sys.executable).with_name("torchrun")
    command = [str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "skval.distributed",
               str(data), "--target", "-1", "--task", "classification",
               "--params", '{"max_epochs": 2, "random_state": 0}', "--values", str(values),
               "--model", str(model), "--timeout", str(TIMEOUT_S)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=2 * TIMEOUT_S,
                         check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "valued 200 rows on 2 processes" in run.stdout
    table = np.loadtxt(values, delimiter=",", skiprows=1)
    with open(model, "rb") as f:
        est = pickle.load(f)
    assert table.shape == (200, 4)
    np.testing.assert_array_equal(table[:, 0], np.arange(200))
    np.testing.assert_allclose(table[:, 1], est.data_values_, rtol=1e-7)
    assert est._distributed_stats["shard_sizes"] == [110, 110]  # and 2 x 10 canaries
    assert est.predict(np.load(data)[:5, :-1]).shape == (5,)


def test_cli_refuses_to_overwrite(tmp_path, flipped_cancer, capsys):
    data = _cli_data(tmp_path, flipped_cancer)
    values = tmp_path / "values.csv"
    values.write_text("keep me")
    code = cli_main([str(data), "--target", "-1", "--task", "classification",
                     "--values", str(values)])
    assert code == 1 and values.read_text() == "keep me"
    assert "exists; pass --overwrite" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main([str(data), "--target", "-1", "--task", "classification",
                  "--values", str(tmp_path / "v.csv"), "--params", '{"n_workers": 2}'])


# ----------------------------------------------------------------------------- bugs of issue 20

@pytest.fixture(scope="module")
def balanced_bare_callback_fit(flipped_cancer):
    """Two processes, ``class_balanced``, and a bare callback (not a ``(name, cb)`` tuple)."""
    from skorch.callbacks import EarlyStopping

    X, y, _, _ = flipped_cancer
    est = LossValClassifier(n_workers=2, max_epochs=2, class_balanced=True, random_state=0,
                            callbacks=[EarlyStopping(monitor="train_loss", patience=100)])
    return _fit_on_two(est, X[:200], y[:200])


def test_a_bare_callback_on_several_processes(balanced_bare_callback_fit):
    # skorch accepts a bare callback; rank 1 used to read c[0] of every callback
    assert balanced_bare_callback_fit.n_epochs_ == 2


def test_the_assembled_net_keeps_the_whole_run_state(balanced_bare_callback_fit, flipped_cancer):
    """What partial_fit reads after a fit: the same on two processes as on one."""
    X, y, _, _ = flipped_cancer
    est = balanced_bare_callback_fit
    one = LossValClassifier(max_epochs=2, class_balanced=True, random_state=0).fit(X[:200], y[:200])
    for fit in (est, one):
        rows = fit.net_.rows_
        # every label of every epoch: 200 rows and 2 x 10 canaries
        assert rows.class_counts.sum() == fit.n_epochs_ * 220
        assert (rows.evidence_sq > 0).all() and rows.evidence_steps > 0  # the evidence scales
        assert rows.update.steps == rows.evidence_steps  # the weights' update state
        assert rows.update.exp_avg.abs().sum() > 0
    # the network's optimizer state (Adam's moments and step count) came along
    assert est.net_.optimizer_.state_dict()["state"].keys() == \
        one.net_.optimizer_.state_dict()["state"].keys()
    assert len(est.net_.optimizer_.state) > 0


def test_fit_in_group_leaves_random_state_alone(flipped_cancer):
    X, y, _, _ = flipped_cancer
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        est = LossValClassifier(max_epochs=1, random_state=None)
        assert _distributed.fit_in_group(est, X[:100], y[:100]) is est
    finally:
        dist.destroy_process_group()
    assert est.random_state is None  # a hyperparameter: fit does not change it
    assert est.data_values_.shape == (100,)


def test_modules_cite_only_files_of_the_repository():
    import re

    for path in (ROOT / "skval").glob("*.py"):
        for cited in re.findall(r"[\w./-]*\.\./[\w./-]+", path.read_text()):
            assert (path.parent / cited).resolve().is_relative_to(ROOT), f"{path.name}: {cited}"
            assert (path.parent / cited).exists(), f"{path.name} cites {cited}"


def _skval_imports():
    """Each skval module and the skval modules it imports (top level or inside functions)."""
    import ast

    modules = {p.stem: p for p in (ROOT / "skval").glob("*.py")}
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("skval."):
                deps.add(node.module.split(".")[1])
        graph[name] = deps & modules.keys() - {name}
    return graph


def test_no_skval_module_imports_one_that_imports_it_back():
    graph = _skval_imports()

    def reaches(start, goal, seen=()):
        return any(d == goal or (d not in seen and reaches(d, goal, (*seen, d)))
                   for d in graph[start])

    assert [m for m in graph if reaches(m, m)] == []
