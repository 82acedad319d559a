"""LossValClassifier."""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import softmax
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets

from ._base import _BaseLossVal, store_init_params
from ._docs import COMMON_ATTRIBUTES, FIT_DOC, parameters_doc


class LossValClassifier(ClassifierMixin, _BaseLossVal):
    _task = "classification"
    _y_check_params = {}

    def __init__(
        self,
        module=None,
        *,
        hidden_layer_sizes=(100, 100, 100, 100, 100),
        activation="relu",
        max_epochs=30,
        lr=0.01,
        batch_size="auto",
        optimizer=torch.optim.Adam,
        weight_lr=None,
        weight_update="batch",
        ot_method="exact",
        ot_reg=0.1,
        ot_power=2.0,
        ot_scaling="quantile",
        label_weight=0.0,
        class_balanced=False,
        n_reference=256,
        canaries=0.025,
        standardize=True,
        positive_weights=True,
        record_history=False,
        device="cpu",
        n_workers=1,
        random_state=None,
        verbose=0,
        callbacks=None,
        **kwargs,
    ):
        store_init_params(self, locals())

    def fit(self, X, y, X_val=None, y_val=None):
        return self._fit(X, y, X_val, y_val)

    fit.__doc__ = FIT_DOC.format(y_val_shape="(n_val,)", y_shape="(n_samples,)")

    def _balanced_classes(self, n_outputs):
        # class_balanced: the weights' gradient from losses adjusted for the class frequencies
        return n_outputs if self.class_balanced else None

    def _encode_target(self, y):
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                "LossValClassifier needs samples of at least 2 classes in y, but y "
                f"contains only one class: {self.classes_[0]!r}."
            )
        return encoded.astype(np.int64), len(self.classes_)

    def _encode_reference_targets(self, y_val):
        y_val = np.asarray(y_val)
        unknown = ~np.isin(y_val, self.classes_)
        if unknown.any():
            raise ValueError(f"y_val has labels not seen in y: {np.unique(y_val[unknown])[:5]!r}.")
        return np.searchsorted(self.classes_, y_val).astype(np.int64)

    def predict_proba(self, X):
        """Class probabilities of each row of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to predict.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities in the order of ``classes_``.
        """
        return softmax(self._forward(X), axis=1)

    def predict(self, X):
        """Most probable class of each row of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to predict.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        scores = self._forward(X)  # checks fitted-ness before classes_ is read
        return self.classes_[np.argmax(scores, axis=1)]


LossValClassifier.__doc__ = f"""Neural-network classifier that values its training rows with LossVal.

    A network and one weight per training row are trained together on
    ``mean_n w_n * CE_n * OT_w(batch, reference) ** 2`` (Wibiral et al., 2024,
    arXiv:2412.04158). Rows whose weight ends low are the ones that hurt the
    model: wrong labels and corrupted features.

    Parameters
    ----------{parameters_doc(hidden="(100, 100, 100, 100, 100)", activation="relu",
                                  classifier=True)}
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.{COMMON_ATTRIBUTES}
    See Also
    --------
    LossValRegressor : The same for regression targets.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from skval import LossValClassifier
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> clf = LossValClassifier(max_epochs=5, random_state=0).fit(X, y)
    >>> clf.data_values_.shape
    (569,)
    """
