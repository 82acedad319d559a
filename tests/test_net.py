"""The lean training loop of LossValNet: its batches, history, events, and the predict copy."""

import math
import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from skorch.callbacks import Callback
from torch.utils.data import DataLoader

from skval import LossValClassifier
from skval._net import RowBatches, RowDataset, batch_collate, listens


@pytest.fixture(scope="module")
def data():
    return make_classification(150, 6, n_informative=4, random_state=0)


def _rows(n=103):
    X = torch.arange(n * 2, dtype=torch.float32).reshape(n, 2)
    return RowDataset(X, torch.arange(n) % 2)


def test_row_batches_are_the_dataloaders_batches_and_random_draws():
    data = _rows()
    loader = DataLoader(data, batch_size=10, shuffle=True, collate_fn=batch_collate,
                        generator=torch.Generator().manual_seed(5))
    generator = torch.Generator().manual_seed(5)
    ours = RowBatches(data, 10, generator)
    assert len(ours) == len(loader) == 11
    for _ in range(2):  # two epochs: the generator's state carries over alike
        theirs = [b[0]["idx"].tolist() for b in loader]
        mine = [b[0]["idx"].tolist() for b in ours]
        assert mine == theirs
    assert torch.equal(generator.get_state(), loader.generator.get_state())
    X, y = next(iter(RowBatches(data, 10, torch.Generator().manual_seed(5))))
    np.testing.assert_array_equal(X["X"], data.X[X["idx"]])
    np.testing.assert_array_equal(y, data.y[X["idx"]])


def test_row_batches_follow_a_batch_sampler_and_draw_from_the_global_rng_like_the_loader():
    data, sampler = _rows(20), [[3, 1, 2], [0, 19], [5]]
    torch.manual_seed(0)
    theirs = [b[0]["idx"].tolist() for b in DataLoader(data, batch_sampler=sampler,
                                                         collate_fn=batch_collate)]
    after_loader = torch.get_rng_state()
    torch.manual_seed(0)
    ours = RowBatches(data, 4, batch_sampler=sampler)
    assert [b[0]["idx"].tolist() for b in ours] == theirs == sampler
    assert len(ours) == 3
    assert torch.equal(torch.get_rng_state(), after_loader)


def test_the_history_records_every_batch_and_the_epoch_loss(data):
    X, y = data
    est = LossValClassifier(max_epochs=2, batch_size=32, canaries=0, random_state=0).fit(X, y)
    history = est.net_.history
    for epoch in history:
        batches = epoch["batches"]
        assert len(batches) == math.ceil(len(X) / 32) == epoch["train_batch_count"]
        assert [b["train_batch_size"] for b in batches] == [32] * 4 + [22]
        assert all(math.isfinite(b["train_loss"]) for b in batches)
        mean = np.average([b["train_loss"] for b in batches], weights=[32] * 4 + [22])
        assert epoch["train_loss"] == pytest.approx(mean)
        assert epoch["dur"] > 0


class _Counter(Callback):
    """Counts the batch events it receives."""

    def initialize(self):
        self.counts = {"begin": 0, "end": 0, "grad": 0}
        return self

    def on_batch_begin(self, net, **kwargs):
        self.counts["begin"] += 1

    def on_batch_end(self, net, batch=None, training=None, loss=None, **kwargs):
        assert training and loss is not None and len(batch[1]) > 0
        self.counts["end"] += 1

    def on_grad_computed(self, net, named_parameters, **kwargs):
        assert all(p.grad is not None for _, p in named_parameters)
        self.counts["grad"] += 1


def test_a_callback_that_listens_to_batch_events_gets_every_one(data):
    X, y = data
    est = LossValClassifier(max_epochs=2, batch_size=50, canaries=0, random_state=0,
                            callbacks=[("count", _Counter())]).fit(X, y)
    counter = dict(est.net_.callbacks_)["count"]
    assert counter.counts == {"begin": 6, "end": 6, "grad": 6}
    assert len(est.net_.history[-1]["batches"]) == 3


def test_listening_callbacks_change_no_value(data):
    X, y = data
    plain = LossValClassifier(max_epochs=2, batch_size=50, random_state=0).fit(X, y)
    counted = LossValClassifier(max_epochs=2, batch_size=50, random_state=0,
                                callbacks=[("count", _Counter())]).fit(X, y)
    np.testing.assert_array_equal(plain.data_values_, counted.data_values_)
    np.testing.assert_array_equal(plain.evidence_, counted.evidence_)


def test_listens_sees_overrides_only():
    assert not listens([("a", Callback())], "on_batch_end")
    assert listens([("a", Callback()), ("b", _Counter())], "on_batch_end")
    assert not listens([], "on_grad_computed")


def test_predict_reuses_its_float64_copy_until_the_network_changes(data):
    X, y = data
    est = LossValClassifier(max_epochs=1, random_state=0).fit(X, y)
    before = est.predict_proba(X[:9])
    copy64 = est.net_.float64_module()
    assert est.net_.float64_module() is copy64
    assert next(copy64.parameters()).dtype == torch.float64 and not copy64.training
    np.testing.assert_array_equal(est.predict_proba(X[:9]), before)
    with torch.no_grad():  # a change in place (a training step, a load) is seen
        next(est.net_.module_.parameters()).mul_(3.0)
    assert est.net_.float64_module() is not copy64
    assert not np.array_equal(est.predict_proba(X[:9]), before)


def test_the_float64_copy_is_not_pickled_and_predictions_survive_pickling(data):
    X, y = data
    est = LossValClassifier(max_epochs=1, random_state=0).fit(X, y)
    before = est.predict_proba(X[:9])
    loaded = pickle.loads(pickle.dumps(est))
    assert "_float64_cache" in est.net_.__dict__
    assert "_float64_cache" not in loaded.net_.__dict__
    np.testing.assert_array_equal(loaded.predict_proba(X[:9]), before)


def test_a_row_prediction_does_not_depend_on_the_rows_beside_it(data):
    X, y = data
    est = LossValClassifier(max_epochs=1, random_state=0).fit(X, y)
    # float64 logits: what is left is the softmax's last bit
    np.testing.assert_allclose(est.predict_proba(X)[:3], est.predict_proba(X[:3]), rtol=0,
                               atol=1e-15)
