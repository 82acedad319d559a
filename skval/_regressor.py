"""LossValRegressor."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import RegressorMixin

from ._base import _BaseLossVal, mean_and_scale, normal_quantiles, store_init_params
from ._canary import swapped_target_share
from ._docs import COMMON_ATTRIBUTES, FIT_DOC, parameters_doc


# rows per forward pass when the training rows' outputs are computed
_CHUNK = 65_536
# Below this share of swapped targets (the residuals') the feature share reads the rows' tail.
_TAIL_TARGET_SHARE = 0.05


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
        target_scaling="quantile",
        label_weight=0.0,
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

    fit.__doc__ = FIT_DOC.format(y_val_shape="(n_val,) or (n_val, n_targets)", y_shape="(n_samples,) or (n_samples, n_targets)")

    def _encode_target(self, y):
        self._y_ndim = y.ndim
        Y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        self._targets = TargetScaling(quantile=self.target_scaling == "quantile")
        return self._targets.fit_encode(Y), Y.shape[1]

    def _reads_feature_tail(self, label_share):
        """Only where the residuals show few swapped targets (``label_share`` below
        ``_TAIL_TARGET_SHARE``): under target noise the clean rows' feature evidence has
        a tail of its own, which the rows'-tail threshold read as corrupted features
        (gross target errors: a feature share of 0.16-0.32 with no feature noise)."""
        return label_share is not None and label_share < _TAIL_TARGET_SHARE

    @torch.no_grad()
    def _label_share(self, net, prep):
        """With canaries: the share of swapped targets the network's residuals on its
        training rows allow (``swapped_target_share``), in place of the label canaries'.

        A label canary (another row's target) does not stand out from the clean rows'
        residuals where they are wide (a noisy or heavy-tailed target), which made that
        share 0.25-0.69 with no target swapped.
        """
        if not prep.n_canaries:
            return None
        n_rows = len(prep.Xt) - 2 * prep.n_canaries
        module, device = net.module_, net.device
        training = module.training
        module.eval()  # as predict sees it (a user's module may have dropout)
        try:
            outputs = torch.cat([
                module(torch.from_numpy(prep.Xt[start:min(start + _CHUNK, n_rows)]).to(device))
                .cpu() for start in range(0, n_rows, _CHUNK)]).numpy()
        finally:
            module.train(training)
        return swapped_target_share(outputs, prep.target[:n_rows])

    def _encode_reference_targets(self, y_val):
        Y = np.asarray(y_val, dtype=np.float64).reshape(len(y_val), -1)
        if Y.shape[1] != self._targets.n_targets:
            raise ValueError(f"y_val has {Y.shape[1]} targets per row, y has "
                             f"{self._targets.n_targets}.")
        if not np.isfinite(Y).all():
            raise ValueError("y_val contains NaN or infinity.")
        return self._targets.encode(Y)

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
        out = self._forward(X)  # first: it raises NotFittedError before fit
        out = self._targets.decode(out)
        return out.ravel() if self._y_ndim == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class TargetScaling:
    """The targets as the network trains on them (``target_scaling``), and back.

    Always standardised, so that the loss's scale (and ``lr``) do not depend on the
    targets' units. With ``quantile``, each target is then mapped through its
    training quantiles to a standard normal (and standardised again): a squared
    loss on a skewed or heavy-tailed target is dominated by its few extreme rows,
    whose large residuals push their weights down for being extreme, not wrong;
    on ranks a swapped target (another row's) is still as far from its
    prediction as its rank is from the row's.

    Parameters
    ----------
    quantile : bool
        Map through the quantiles.
    """

    def __init__(self, quantile):
        self.quantile = quantile

    def fit_encode(self, Y):
        """Learn the scaling from the training targets ``Y`` (float64, 2-D); ``Y`` encoded."""
        self.n_targets = Y.shape[1]
        self.mean, self.scale = mean_and_scale(Y)
        Z = (Y - self.mean) / self.scale
        self.quantiles = None
        if self.quantile:
            self.quantiles = normal_quantiles(len(Y)).fit(Z)
            Z = self.quantiles.transform(Z)
            self.normal_mean, self.normal_scale = mean_and_scale(Z)
            Z = (Z - self.normal_mean) / self.normal_scale
        return Z.astype(np.float32)

    def encode(self, Y):
        """``Y`` (float64, 2-D) as the network trains on it, float32."""
        Z = (Y - self.mean) / self.scale
        if self.quantiles is not None:
            Z = (self.quantiles.transform(Z) - self.normal_mean) / self.normal_scale
        return Z.astype(np.float32)

    def decode(self, Z):
        """The network's outputs ``Z`` (2-D) in the targets' units, float64."""
        Z = np.asarray(Z, dtype=np.float64)
        if self.quantiles is not None:
            Z = self.quantiles.inverse_transform(Z * self.normal_scale + self.normal_mean)
        return Z * self.scale + self.mean


LossValRegressor.__doc__ = f"""Neural-network regressor that values its training rows with LossVal.

    A network and one weight per training row are trained together on
    ``mean_n w_n * (y_n - f(x_n)) ** 2 * OT_w(batch, reference) ** 2`` (Wibiral
    et al., 2024, arXiv:2412.04158), with the targets mapped internally to a
    standard normal through their quantiles (``target_scaling``).
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
