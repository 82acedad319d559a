"""What LossValClassifier and LossValRegressor share: validation, the net, the values."""

from __future__ import annotations

import copy
import inspect
import numbers
import threading
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, validate_data
from skorch.callbacks import ProgressBar
from torch import nn
from torch.utils.data import DataLoader

from ._loss import LossValLoss
from ._mlp import MLP, resolve_activation
from ._net import LossValNet, RowDataset, WeightHistory, batch_collate

# Prefixes of the extra keyword parameters routed to the module and the optimizer.
_PREFIXES = ("module__", "optimizer__")
_OT_METHODS = ("exact", "sinkhorn")
_WEIGHT_UPDATES = ("batch", "row")
_PREDICT_CHUNK = 8192
_AUTO_BATCH_MIN, _AUTO_BATCH_MAX = 32, 1024

# torch's global RNG seeds the module's initial parameters: hold it while seeding and
# building so that estimators fitted in parallel threads stay reproducible.
_INIT_LOCK = threading.Lock()


def _import_pandas():
    try:
        import pandas
    except ImportError:  # pragma: no cover - pandas is an optional extra
        raise ImportError("This needs pandas: pip install 'skval[pandas]'.") from None
    return pandas


def _check_positive(name, value, kind=numbers.Real, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, kind):
        expected = "an int" if kind is numbers.Integral else "a number"
        raise TypeError(f"{name} must be {expected} > 0, got {value!r}.")
    if not value > 0 or not np.isfinite(value):
        raise ValueError(f"{name} must be > 0, got {value!r}.")


class _BaseLossVal(BaseEstimator):
    """Shared machinery; subclasses set ``_task`` and write their own ``__init__``."""

    _task: str

    def _extra_params(self):
        """The ``module__*`` / ``optimizer__*`` keyword parameters given to the estimator."""
        names = set(self._get_param_names())
        return {k: v for k, v in vars(self).items()
                if k not in names and not k.startswith("_") and not k.endswith("_")}

    def get_params(self, deep=True):
        """Get parameters for this estimator, including ``module__*`` and ``optimizer__*``.

        Parameters
        ----------
        deep : bool, default=True
            Also return the parameters of contained estimators.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        params = super().get_params(deep=deep)
        params.update(self._extra_params())
        return params

    def set_params(self, **params):
        """Set parameters, including ``module__*`` and ``optimizer__*`` ones.

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self : estimator
            This estimator.
        """
        for key in [k for k in params if k.startswith(_PREFIXES)]:
            setattr(self, key, params.pop(key))
        return super().set_params(**params)

    # ------------------------------------------------------------------ validation
    def _check_params(self):
        for key in self._extra_params():
            if not key.startswith(_PREFIXES):
                raise TypeError(
                    f"{type(self).__name__} got an unexpected parameter {key!r}; extra "
                    f"parameters must start with one of {_PREFIXES}."
                )
        _check_positive("max_epochs", self.max_epochs, numbers.Integral)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            _check_positive("batch_size", self.batch_size, numbers.Integral)
        _check_positive("lr", self.lr)
        _check_positive("weight_lr", self.weight_lr, allow_none=True)
        if self.weight_update not in _WEIGHT_UPDATES:
            raise ValueError(
                f"weight_update must be one of {_WEIGHT_UPDATES}, got {self.weight_update!r}."
            )
        _check_positive("n_reference", self.n_reference, numbers.Integral)
        if self.ot_method not in _OT_METHODS:
            raise ValueError(f"ot_method must be one of {_OT_METHODS}, got {self.ot_method!r}.")
        if self.ot_method == "sinkhorn":
            _check_positive("ot_reg", self.ot_reg)
        _check_positive("ot_power", self.ot_power)
        if isinstance(self.label_weight, bool) or not isinstance(self.label_weight, numbers.Real) \
                or not 0 <= self.label_weight < np.inf:
            raise ValueError(f"label_weight must be a number >= 0, got {self.label_weight!r}.")
        if self.module is None:
            sizes = self.hidden_layer_sizes
            if isinstance(sizes, numbers.Integral):
                sizes = (sizes,)
            try:
                sizes = tuple(sizes)
            except TypeError:
                raise TypeError(
                    f"hidden_layer_sizes must be a sequence of ints, got {self.hidden_layer_sizes!r}."
                ) from None
            for size in sizes:
                _check_positive("each of hidden_layer_sizes", size, numbers.Integral)
            resolve_activation(self.activation)
        elif not (
            isinstance(self.module, nn.Module)
            or (isinstance(self.module, type) and issubclass(self.module, nn.Module))
        ):
            raise TypeError(
                f"module must be None, a torch.nn.Module class or instance, got {self.module!r}."
            )
        if not (isinstance(self.optimizer, type) and issubclass(self.optimizer, torch.optim.Optimizer)):
            raise TypeError(
                f"optimizer must be a torch.optim.Optimizer class, got {self.optimizer!r}."
            )
        try:
            device = torch.device(self.device)
        except (RuntimeError, TypeError):
            raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda', got {self.device!r}.") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={self.device!r} was asked for but CUDA is not available.")
        if self.callbacks is not None and not isinstance(self.callbacks, (list, tuple)):
            raise TypeError(f"callbacks must be None or a list of skorch callbacks, got {self.callbacks!r}.")
        return device

    def _check_X_val(self, X_val, y_val):
        if X_val is None:
            if y_val is not None:
                raise ValueError("y_val was given without X_val.")
            return None, None
        X_val = check_array(X_val, dtype=(np.float64, np.float32), input_name="X_val",
                            estimator=self)
        if X_val.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X_val has {X_val.shape[1]} features, but X has {self.n_features_in_}."
            )
        if y_val is not None:
            y_val = np.asarray(y_val)
            if len(y_val) != len(X_val):
                raise ValueError(
                    f"X_val and y_val must have the same number of rows, got {len(X_val)} and {len(y_val)}."
                )
        return X_val, y_val

    # ------------------------------------------------------------------ fitting
    def _fit(self, X, y, X_val, y_val):
        device = self._check_params()
        row_index = X.index if hasattr(X, "columns") else None  # DataFrame rows keep their labels
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32), ensure_min_samples=2,
                             **self._y_check_params)
        X_val, y_val = self._check_X_val(X_val, y_val)
        target, n_outputs = self._encode_target(y)
        rng = check_random_state(self.random_state)

        if self.standardize:
            self._x_mean = X.mean(axis=0)
            std = X.std(axis=0)
            self._x_scale = np.where(std > 0, std, 1.0)
        else:
            self._x_mean, self._x_scale = 0.0, 1.0
        Xt = self._transform_X(X)

        n = len(Xt)
        source = Xt if X_val is None else self._transform_X(X_val)
        # Targets enter the cost only when the user vouches for them with y_val: the
        # training labels are the very thing under suspicion.
        source_targets = None if y_val is None else self._encode_reference_targets(y_val)
        ref_rows = np.arange(len(source))
        if len(source) > self.n_reference:
            ref_rows = np.sort(rng.choice(len(source), self.n_reference, replace=False))
        reference = source[ref_rows]
        ref_targets = None if source_targets is None else torch.from_numpy(source_targets[ref_rows])
        self.n_reference_ = len(reference)
        # Mean squared distance from training rows to the reference: divides the cost
        # once so the OT term is of order 1 whatever the number of features.
        probe = Xt[rng.choice(n, min(n, 512), replace=False)]
        cost_scale = float(torch.cdist(torch.from_numpy(probe), torch.from_numpy(reference)).pow(2).mean())
        if not cost_scale > 0:
            cost_scale = 1.0

        seed = int(rng.randint(np.iinfo(np.int32).max))
        weight_lr = self.lr if self.weight_lr is None else self.weight_lr
        callbacks = list(copy.deepcopy(self.callbacks)) if self.callbacks else []
        history = WeightHistory() if self.record_history else None
        if history is not None:  # first, so it records an epoch a user callback interrupts
            callbacks.insert(0, ("weight_history", history))
        if self.verbose:
            callbacks.append(("progress_bar", ProgressBar()))

        module, module_kwargs = self._module_and_kwargs(Xt.shape[1], n_outputs)
        optimizer_kwargs = {k: v for k, v in self._extra_params().items()
                            if k.startswith("optimizer__")}
        net = LossValNet(
            module=module,
            criterion=LossValLoss,
            criterion__n_samples=n,
            criterion__task=self._task,
            criterion__reference=torch.from_numpy(reference),
            criterion__cost_scale=cost_scale,
            criterion__ot_method=self.ot_method,
            criterion__ot_reg=self.ot_reg,
            criterion__ot_power=self.ot_power,
            criterion__reference_targets=ref_targets,
            criterion__label_weight=self.label_weight,
            criterion__reference_rows=torch.from_numpy(ref_rows) if X_val is None else None,
            criterion__random_state=seed,
            optimizer=self.optimizer,
            lr=self.lr,
            optimizer__param_groups=[("data_weights", {"lr": weight_lr})],
            max_epochs=self.max_epochs,
            batch_size=self._batch_size(n, X_val is None),
            train_split=None,
            iterator_train=DataLoader,
            iterator_train__shuffle=True,
            iterator_train__collate_fn=batch_collate,
            iterator_train__generator=torch.Generator().manual_seed(seed),
            iterator_valid__collate_fn=batch_collate,
            callbacks=callbacks,
            predict_nonlinearity=None,
            device=device,
            verbose=self.verbose,
            positive_weights=self.positive_weights,
            weight_update=self.weight_update,
            weight_lr=weight_lr,
            **module_kwargs,
            **optimizer_kwargs,
        )
        with _INIT_LOCK:
            torch.manual_seed(seed)
            net.initialize()
        dataset = RowDataset(torch.from_numpy(Xt), torch.from_numpy(target))
        net.partial_fit(dataset, None)  # fit() would re-initialise; partial_fit trains it as built

        epochs_done = len(net.history)
        if epochs_done < self.max_epochs:
            warnings.warn(
                f"fit stopped after {epochs_done} of {self.max_epochs} epochs (interrupted); "
                "data_values_ hold the weights reached so far.",
                RuntimeWarning,
                stacklevel=3,
            )
        net.iterator_train__generator = None  # the shuffling RNG is not part of the model
        self.net_ = net
        self._row_index = None if row_index is None else row_index.copy()
        self.n_epochs_ = epochs_done
        self.data_values_ = net.criterion_.data_weights.detach().cpu().numpy().astype(np.float64)
        if history is not None:
            self.weight_history_ = history.as_array()
        return self

    # ------------------------------------------------------------------ results
    def values_series(self, sort=False):
        """The data values as a pandas Series keyed by the rows of ``X``.

        Parameters
        ----------
        sort : bool, default=False
            Sort from the lowest (most harmful) value up.

        Returns
        -------
        values : pandas.Series
            Named ``"data_value"``; its index is ``X``'s index when ``X`` was a
            DataFrame, else the row numbers.
        """
        pd = _import_pandas()
        check_is_fitted(self, "data_values_")
        index = self._row_index if self._row_index is not None else pd.RangeIndex(len(self.data_values_))
        series = pd.Series(self.data_values_, index=index, name="data_value")
        return series.sort_values(kind="stable") if sort else series

    def worst_rows(self, X, y=None, k=10):
        """The ``k`` lowest-valued rows of the training data, with their values.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The data passed to ``fit`` (same rows, same order).
        y : array-like of shape (n_samples,) or None, default=None
            Its targets; added as a ``"target"`` column when given.
        k : int, default=10
            How many rows.

        Returns
        -------
        rows : pandas.DataFrame
            The ``k`` rows sorted from the lowest value, indexed like
            ``values_series``, with the features, ``"target"``, ``"data_value"`` and
            ``"rank"`` (1 = lowest value).
        """
        pd = _import_pandas()
        values = self.values_series()
        if len(X) != len(values):
            raise ValueError(
                f"X has {len(X)} rows but the estimator was fitted on {len(values)}; "
                "pass the training data."
            )
        if not (isinstance(k, numbers.Integral) and k > 0):
            raise ValueError(f"k must be a positive int, got {k!r}.")
        frame = pd.DataFrame(X).copy() if hasattr(X, "columns") else pd.DataFrame(np.asarray(X))
        frame.index = values.index
        if y is not None:
            if len(y) != len(values):
                raise ValueError(f"y has {len(y)} rows, X has {len(values)}.")
            frame["target"] = np.asarray(y)
        frame["data_value"] = values.to_numpy()
        frame["rank"] = values.rank(method="first").astype(int).to_numpy()
        return frame.sort_values("rank").head(k)

    def _batch_size(self, n, self_reference):
        if self.batch_size == "auto":
            # 32 rows up to 3,200 (each weight's signal comes from many small steps),
            # then about 100 steps per epoch, capped so the OT problem stays small.
            size = min(_AUTO_BATCH_MAX, max(_AUTO_BATCH_MIN, n // 100))
        else:
            size = self.batch_size
        if self_reference:
            # The reference is drawn from X: a batch must leave some of it outside itself.
            size = min(size, max(1, n // 2))
        return size

    def _module_and_kwargs(self, n_features, n_outputs):
        user_kwargs = {k: v for k, v in self._extra_params().items() if k.startswith("module__")}
        if self.module is None:
            sizes = self.hidden_layer_sizes
            sizes = (sizes,) if isinstance(sizes, numbers.Integral) else tuple(sizes)
            kwargs = {"module__hidden_layer_sizes": sizes, "module__activation": self.activation}
            module = MLP
        else:
            module = copy.deepcopy(self.module) if isinstance(self.module, nn.Module) else self.module
            kwargs = {}
        if isinstance(module, type):
            accepted = inspect.signature(module.__init__).parameters
            for name, value in (("n_features", n_features), ("n_outputs", n_outputs)):
                if name in accepted or module is MLP:
                    kwargs.setdefault(f"module__{name}", value)
        kwargs.update(user_kwargs)
        return module, kwargs

    def _transform_X(self, X):
        return np.ascontiguousarray((X - self._x_mean) / self._x_scale, dtype=np.float32)

    # ------------------------------------------------------------------ inference
    def _forward(self, X):
        check_is_fitted(self, "net_")
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        Xt = torch.from_numpy(self._transform_X(X)).double()
        # A float64 copy of the network: float32 matrix products differ in the last
        # bits with the number of rows, and a row's prediction must not depend on
        # which other rows are predicted with it.
        module = copy.deepcopy(self.net_.module_).double().eval()
        device = self.net_.device
        with torch.no_grad():
            out = [module(chunk.to(device)).cpu() for chunk in torch.split(Xt, _PREDICT_CHUNK)]
        return torch.cat(out).numpy().astype(np.float64)
