"""skorch users' callbacks in a fit without a validation split (issue 21, item 5)."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification, make_regression
from sklearn.metrics import accuracy_score
from skorch.callbacks import Callback, Checkpoint, EarlyStopping, EpochScoring

from skval import LossValClassifier, LossValRegressor
from skval._net import RowDataset


@pytest.fixture(scope="module")
def data():
    return make_classification(200, 6, n_informative=4, random_state=0)


def test_early_stopping_on_valid_loss_is_refused_naming_train_loss(data):
    X, y = data
    est = LossValClassifier(max_epochs=3, random_state=0, callbacks=[EarlyStopping()])
    with pytest.raises(ValueError, match=r"monitors 'valid_loss'.*train_split=None.*"
                                         r"EarlyStopping\(monitor='train_loss'\)"):
        est.fit(X, y)


def test_checkpoint_on_a_validation_score_is_refused_too(data, tmp_path):
    X, y = data
    est = LossValClassifier(max_epochs=2, random_state=0,
                            callbacks=[Checkpoint(dirname=str(tmp_path))])
    with pytest.raises(ValueError, match=r"monitor='train_loss_best'"):
        est.fit(X, y)
    assert list(tmp_path.iterdir()) == []  # refused before the first epoch


def test_an_early_stop_is_reported_as_one_not_as_an_interrupt(data):
    X, y = data
    # a relative improvement of 99.9% per epoch is never reached: stops after 1 miss
    stop = EarlyStopping(monitor="train_loss", patience=1, threshold=0.999, sink=None)
    est = LossValClassifier(max_epochs=10, random_state=0, callbacks=[("stop", stop)])
    with pytest.warns(UserWarning, match=r"stopped early after 2 of 10 epochs by the "
                                         r"EarlyStopping callback 'stop'") as record:
        est.fit(X, y)
    assert not any("interrupted" in str(w.message) for w in record)
    assert not any(w.category is RuntimeWarning for w in record)
    assert est.n_epochs_ == 2 and np.isfinite(est.data_values_).all()


def test_early_stopping_that_never_fires_warns_nothing(data):
    X, y = data
    stop = EarlyStopping(monitor="train_loss", patience=50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = LossValClassifier(max_epochs=3, random_state=0, callbacks=[stop]).fit(X, y)
    assert est.n_epochs_ == 3


class _Interrupt(Callback):
    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == 2:
            raise KeyboardInterrupt


def test_another_interrupt_is_still_an_interrupt(data):
    X, y = data
    est = LossValClassifier(max_epochs=5, random_state=0,
                            callbacks=[EarlyStopping(monitor="train_loss"), _Interrupt()])
    with pytest.warns(RuntimeWarning, match=r"stopped after 2 of 5 epochs \(interrupted\)"):
        est.fit(X, y)


def test_epoch_scoring_of_the_training_rows_with_classifier_metrics(data):
    X, y = data
    callbacks = [EpochScoring("accuracy", on_train=True, name="train_acc"),
                 EpochScoring("roc_auc", on_train=True, name="train_auc"),
                 EpochScoring("f1_macro", on_train=True, name="train_f1")]
    est = LossValClassifier(max_epochs=4, random_state=0, callbacks=callbacks).fit(X, y)
    history = est.net_.history
    acc, auc = history[:, "train_acc"], history[:, "train_auc"]
    assert len(acc) == len(auc) == 4
    assert all(0 <= a <= 1 for a in acc + auc + history[:, "train_f1"])
    assert acc[-1] > 0.75 and auc[-1] > 0.8  # an easy task, scored as labels / scores
    # the score is that of the epoch's own predictions: near the final model's accuracy
    assert abs(acc[-1] - accuracy_score(y, est.predict(X))) < 0.1


def test_epoch_scoring_of_the_training_rows_with_a_regression_metric():
    X, y = make_regression(150, 5, noise=1.0, random_state=0)
    est = LossValRegressor(max_epochs=3, random_state=0,
                           callbacks=[EpochScoring("r2", on_train=True, name="train_r2")])
    est.fit(X, y)
    assert len(est.net_.history[:, "train_r2"]) == 3


def test_epoch_scoring_of_validation_data_is_refused(data):
    X, y = data
    est = LossValClassifier(max_epochs=2, random_state=0, callbacks=[EpochScoring("accuracy")])
    with pytest.raises(ValueError, match=r"EpochScoring\('accuracy', on_train=True\)"):
        est.fit(X, y)


def test_the_net_scores_as_a_classifier_in_encoded_labels(data):
    X, y = data
    est = LossValClassifier(max_epochs=1, random_state=0).fit(X, y)
    net = est.net_
    np.testing.assert_array_equal(net.classes_, [0, 1])
    rows = RowDataset(torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y))
    proba = net.predict_proba(rows)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(net.predict(rows), proba.argmax(axis=1))
