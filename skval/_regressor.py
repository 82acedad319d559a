"""LossValRegressor."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import RegressorMixin

from ._base import _BaseLossVal, mean_and_scale, store_init_params
from ._docs import COMMON_ATTRIBUTES, FIT_DOC, parameters_doc


class LossValRegressor(RegressorMixin, _BaseLossVal):
    _task = "regression"
    _y_check_params = {"multi_output": True, "y_numeric": True}

    def __init__(
        self,
        module=None,
        *,
        hidden_layer_sizes=(90, 90, 90),
        activation="tanh",
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
        n_reference=256,
        canaries=0.0,
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

    fit.__doc__ = FIT_DOC.format(y_val_shape="(n_val,) or (n_val, n_targets)", y_shape="(n_samples,) or (n_samples, n_targets)")

    def _encode_target(self, y):
        self._y_ndim = y.ndim
        Y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        # Targets are standardised so the loss scale (and lr) do not depend on y's units.
        self._y_mean, self._y_scale = mean_and_scale(Y)
        return ((Y - self._y_mean) / self._y_scale).astype(np.float32), Y.shape[1]

    def _encode_reference_targets(self, y_val):
        Y = np.asarray(y_val, dtype=np.float64).reshape(len(y_val), -1)
        if Y.shape[1] != len(self._y_mean):
            raise ValueError(f"y_val has {Y.shape[1]} targets per row, y has {len(self._y_mean)}.")
        if not np.isfinite(Y).all():
            raise ValueError("y_val contains NaN or infinity.")
        return ((Y - self._y_mean) / self._y_scale).astype(np.float32)

    def predict(self, X):
        """Predicted targets of each row of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to predict.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
            Same number of dimensions as the ``y`` seen in ``fit``.
        """
        out = self._forward(X) * self._y_scale + self._y_mean
        return out.ravel() if self._y_ndim == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


LossValRegressor.__doc__ = f"""Neural-network regressor that values its training rows with LossVal.

    A network and one weight per training row are trained together on
    ``mean_n w_n * (y_n - f(x_n)) ** 2 * OT_w(batch, reference) ** 2`` (Wibiral
    et al., 2024, arXiv:2412.04158), with the targets standardised internally.
    Rows whose weight ends low are the ones that hurt the model: wrong targets and
    corrupted features.

    Parameters
    ----------{parameters_doc(hidden="(90, 90, 90)", activation="tanh")}
    Attributes
    ----------{COMMON_ATTRIBUTES}
    See Also
    --------
    LossValClassifier : The same for class labels.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from skval import LossValRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = LossValRegressor(max_epochs=5, random_state=0).fit(X, y)
    >>> reg.data_values_.shape
    (442,)
    """
