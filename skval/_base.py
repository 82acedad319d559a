"""What LossValClassifier and LossValRegressor share: validation, the net, the values."""

from __future__ import annotations

import copy
import inspect
import threading
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.preprocessing import QuantileTransformer
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, validate_data
from skorch.callbacks import ProgressBar
from torch import nn
from torch.utils.data import DataLoader

from ._callbacks import WeightHistory
from ._issues import IssuesMixin
from ._loss import LossValLoss
from ._mlp import MLP
from ._net import LossValNet, RowDataset, batch_collate
from ._params import EXTRA_PREFIXES, check_params, hidden_sizes, resolve_device

_PREDICT_CHUNK = 8192
# batch_size="auto": this many rows per step up to 100 x _AUTO_BATCH_MIN rows, then
# about 100 steps per epoch, at most _AUTO_BATCH_MAX rows per step.
_AUTO_BATCH_MIN, _AUTO_BATCH_MAX = 32, 1024
# ot_scaling="quantile": quantiles per feature, and the rows they are estimated from.
_N_QUANTILES, _QUANTILE_SUBSAMPLE = 1000, 100_000
# Training rows probed for the scale of the OT cost.
_COST_PROBE = 512

# torch's global RNG seeds the module's initial parameters: hold it while seeding and
# building so that estimators fitted in parallel threads stay reproducible.
_INIT_LOCK = threading.Lock()


def _import_pandas():
    try:
        import pandas
    except ImportError:  # pragma: no cover - pandas is an optional extra
        raise ImportError("This needs pandas: pip install 'skval[pandas]'.") from None
    return pandas


def mean_and_scale(A):
    """Column means and standard deviations of ``A``, with 1 where a column is constant."""
    std = A.std(axis=0)
    return A.mean(axis=0), np.where(std > 0, std, 1.0)


def store_init_params(est, params):
    """Set the parameters an ``__init__`` received (its ``locals()``) on ``est``, unchanged.

    ``**kwargs`` (``module__*`` / ``optimizer__*``) become attributes too; they are
    checked in ``fit``.
    """
    params = dict(params)
    params.pop("self")
    params.pop("__class__", None)
    vars(est).update(params.pop("kwargs"))
    vars(est).update(params)


def value_ranks(values):
    """Rank of each value, 1 for the lowest; ties in the order of the rows."""
    return values.rank(method="first").astype(int).to_numpy()


@dataclass
class _Reference:
    """The reference rows of the OT term, chosen once per fit."""

    X: np.ndarray                  # standardised features, float32
    targets: np.ndarray | None     # encoded targets (only from a user's y_val)
    training_rows: np.ndarray | None  # their row numbers when drawn from X itself


@dataclass
class _Prepared:
    """What ``fit`` has ready before it builds the net (``_BaseLossVal._prepare``)."""

    Xt: np.ndarray                 # standardised features, float32
    Xc: np.ndarray                 # the OT cost's features (``Xt`` itself with "standard")
    target: np.ndarray             # encoded targets
    n_outputs: int
    reference: _Reference
    cost_scale: float
    seed: int                      # seeds the network, the shuffling and the OT blocks
    row_index: object              # a DataFrame's index, or None


class _BaseLossVal(IssuesMixin, BaseEstimator):
    """What LossValClassifier and LossValRegressor share.

    ``fit`` runs in named steps: check the parameters and the data
    (``_validate``), standardise (``_fit_scaler``), build the features the OT
    cost compares (``_fit_cost_features``), choose the reference rows
    (``_choose_reference``), scale the OT cost (``_cost_scale``) (together
    ``_prepare``), build the skorch net (``_build_net``), train it (``_train``)
    and store the results (``_store_results``). With ``n_workers > 1``,
    ``skval._distributed`` builds and trains the net on several processes instead
    and assembles an ordinary net from their results.

    A subclass must provide:

    - ``__init__`` with every parameter explicit in its signature (scikit-learn
      reads them), calling ``store_init_params(self, locals())``;
    - ``_task``: ``"classification"`` or ``"regression"`` (the criterion's
      per-row loss);
    - ``_y_check_params``: keyword arguments for ``validate_data`` about ``y``;
    - ``_encode_target(y)``: the targets as the network trains on them and the
      network's output width, ``(ndarray, int)``; it may store fitted
      attributes (``classes_``, the target scale);
    - ``_encode_reference_targets(y_val)``: ``y_val`` encoded the same way;
    - ``fit(X, y, X_val=None, y_val=None)`` calling ``self._fit`` (its own
      docstring), and the prediction methods on top of ``_forward``.
    """

    _task: str
    _y_check_params: dict

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
        for key in [k for k in params if k.startswith(EXTRA_PREFIXES)]:
            setattr(self, key, params.pop(key))
        return super().set_params(**params)

    # ------------------------------------------------------------------ fit, step by step
    def _fit(self, X, y, X_val, y_val):
        vars(self).pop("_distributed_stats", None)  # set by a fit on several processes
        prep = self._prepare(X, y, X_val, y_val)
        if self.n_workers > 1:
            from ._distributed import fit_on_processes

            net = fit_on_processes(self, prep)
        else:
            net = self._build_net(len(prep.Xt), prep.Xt.shape[1], prep.n_outputs,
                                  prep.reference, prep.cost_scale, prep.seed)
            self._train(net, prep.Xt, prep.Xc, prep.target, prep.seed)
        self._store_results(net, prep.row_index, len(prep.reference.X))
        return self

    def _prepare(self, X, y, X_val, y_val):
        """Every step before the net: validate, standardise, cost features, reference, scale."""
        row_index = X.index if hasattr(X, "columns") else None  # DataFrame rows keep their labels
        X, y, X_val, y_val = self._validate(X, y, X_val, y_val)
        target, n_outputs = self._encode_target(y)
        rng = check_random_state(self.random_state)
        rows_rng = _row_sampler(rng)
        Xt = self._fit_scaler(X)
        Xc = self._fit_cost_features(X, Xt)
        reference = self._choose_reference(Xc, X_val, y_val, rows_rng)
        cost_scale = _cost_scale(Xc, reference.X, rows_rng)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        return _Prepared(Xt, Xc, target, n_outputs, reference, cost_scale, seed, row_index)

    def _validate(self, X, y, X_val, y_val):
        """Check the parameters, then ``X, y`` and the reference data."""
        check_params(self, self._extra_params())
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32), ensure_min_samples=2,
                             **self._y_check_params)
        return (X, y) + self._check_X_val(X_val, y_val)

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

    def _fit_scaler(self, X):
        """Learn the feature standardisation (if ``standardize``) and apply it to ``X``."""
        if self.standardize:
            self._x_mean, self._x_scale = mean_and_scale(X)
        else:
            self._x_mean, self._x_scale = 0.0, 1.0
        return self._transform_X(X)

    def _fit_cost_features(self, X, Xt):
        """The features the OT cost compares (``ot_scaling``): ``Xt`` itself, or quantiles."""
        self._cost_quantiles = None
        if self.ot_scaling == "standard":
            return Xt
        self._cost_quantiles = QuantileTransformer(
            output_distribution="normal", n_quantiles=min(_N_QUANTILES, len(X)),
            subsample=_QUANTILE_SUBSAMPLE, random_state=0).fit(X)
        return self._cost_features(X)

    def _cost_features(self, X):
        if self._cost_quantiles is None:
            return self._transform_X(X)
        return np.ascontiguousarray(self._cost_quantiles.transform(X), dtype=np.float32)

    def _choose_reference(self, Xc, X_val, y_val, rng):
        """At most ``n_reference`` rows of ``X_val``, or of ``X`` itself without one (cost features)."""
        source = Xc if X_val is None else self._cost_features(X_val)
        # Targets enter the cost only when the user vouches for them with y_val: the
        # training labels are the very thing under suspicion.
        source_targets = None if y_val is None else self._encode_reference_targets(y_val)
        rows = np.arange(len(source))
        if len(source) > self.n_reference:
            rows = np.sort(rng.choice(len(source), self.n_reference, replace=False))
        return _Reference(
            X=source[rows],
            targets=None if source_targets is None else source_targets[rows],
            training_rows=rows if X_val is None else None,
        )

    def _build_net(self, n, n_features, n_outputs, reference, cost_scale, seed):
        """The skorch net that trains the network and the ``n`` data weights, initialised."""
        net = LossValNet(**self._net_params(n, n_features, n_outputs, reference, cost_scale,
                                            seed))
        with _INIT_LOCK:
            torch.manual_seed(seed)
            net.initialize()
        return net

    def _net_params(self, n, n_features, n_outputs, reference, cost_scale, seed):
        """The keyword arguments of ``LossValNet`` for ``n`` rows (see ``_build_net``)."""
        module, module_kwargs = self._module_and_kwargs(n_features, n_outputs)
        optimizer_kwargs = {k: v for k, v in self._extra_params().items()
                            if k.startswith("optimizer__")}
        return dict(
            module=module,
            criterion=LossValLoss,
            criterion__n_samples=n,
            criterion__task=self._task,
            criterion__reference=torch.from_numpy(reference.X),
            criterion__cost_scale=cost_scale,
            criterion__ot_method=self.ot_method,
            criterion__ot_reg=self.ot_reg,
            criterion__ot_power=self.ot_power,
            criterion__reference_targets=_tensor_or_none(reference.targets),
            criterion__label_weight=self.label_weight,
            criterion__reference_rows=_tensor_or_none(reference.training_rows),
            criterion__random_state=seed,
            optimizer=self.optimizer,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self._batch_size(n, reference.training_rows is not None),
            train_split=None,
            iterator_train=DataLoader,
            iterator_train__shuffle=True,
            iterator_train__collate_fn=batch_collate,
            iterator_train__generator=torch.Generator().manual_seed(seed),
            iterator_valid__collate_fn=batch_collate,
            callbacks=self._callbacks(),
            predict_nonlinearity=None,
            device=resolve_device(self.device),
            verbose=self.verbose,
            positive_weights=self.positive_weights,
            weight_update=self.weight_update,
            weight_lr=self.weight_lr,
            **module_kwargs,
            **optimizer_kwargs,
        )

    def _callbacks(self):
        """The user's callbacks (copied), the weight history and the progress bar."""
        callbacks = list(copy.deepcopy(self.callbacks)) if self.callbacks else []
        if self.record_history:  # first, so it records an epoch a user callback interrupts
            callbacks.insert(0, ("weight_history", WeightHistory()))
        if self.verbose:
            callbacks.append(("progress_bar", ProgressBar()))
        return callbacks

    def _train(self, net, Xt, Xc, target, seed):
        """Train ``net`` on every row; warn when training stopped early (Ctrl-C)."""
        X_cost = None if Xc is Xt else torch.from_numpy(Xc)
        dataset = RowDataset(torch.from_numpy(Xt), torch.from_numpy(target), X_cost)
        net.partial_fit(dataset, None)  # fit() would re-initialise; partial_fit trains it as built
        net.iterator_train__generator = None  # the shuffling RNG is not part of the model
        self._warn_if_interrupted(net)

    def _warn_if_interrupted(self, net):
        """Warn when fewer epochs ran than asked (a KeyboardInterrupt stopped ``fit``)."""
        epochs_done = len(net.history)
        if epochs_done < self.max_epochs:
            warnings.warn(
                f"fit stopped after {epochs_done} of {self.max_epochs} epochs (interrupted); "
                "data_values_ hold the weights reached so far.",
                RuntimeWarning,
                stacklevel=5,  # the user's fit: fit -> _fit -> _train or fit_on_processes -> here
            )

    def _store_results(self, net, row_index, n_reference):
        """The fitted attributes: the net, the values and what the run did."""
        self.net_ = net
        self._row_index = None if row_index is None else row_index.copy()
        self.n_epochs_ = len(net.history)
        self.n_reference_ = n_reference
        self.data_values_ = net.criterion_.data_values().cpu().numpy().astype(np.float64)
        self.evidence_ = net.criterion_.evidence.cpu().numpy().astype(np.float64)
        if self.record_history:
            self.weight_history_ = dict(net.callbacks_)["weight_history"].as_array()

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

    def _batch_size(self, n, self_reference, cap=_AUTO_BATCH_MAX):
        if self.batch_size == "auto":
            # each weight's signal comes from many small steps: small batches up to a
            # few thousand rows, then about 100 steps per epoch, capped (cap=None: not).
            size = max(_AUTO_BATCH_MIN, n // 100)
            size = size if cap is None else min(cap, size)
        else:
            size = self.batch_size
        if self_reference:
            # The reference is drawn from X: a batch must leave some of it outside itself.
            size = min(size, max(1, n // 2))
        return size

    def _module_and_kwargs(self, n_features, n_outputs):
        user_kwargs = {k: v for k, v in self._extra_params().items() if k.startswith("module__")}
        if self.module is None:
            kwargs = {"module__hidden_layer_sizes": hidden_sizes(self.hidden_layer_sizes),
                      "module__activation": self.activation}
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


def _tensor_or_none(array):
    return None if array is None else torch.from_numpy(array)


def _row_sampler(rng):
    """The generator that draws the reference and probe rows, seeded from ``rng``.

    Not ``rng`` itself: with an int ``random_state`` that would be
    ``RandomState(seed)``, whose ``choice(n, k, replace=False)`` is the first ``k``
    rows of ``RandomState(seed).permutation(n)``, the very rows that a split or a
    corruption seeded with the same int picks (``inject_noise(random_state=seed)``
    among them). Users seed everything with 0; the reference would then be made of
    the rows they corrupted. A PCG64 stream seeded by a draw of ``rng`` shares no
    such prefix.
    """
    return np.random.default_rng(rng.randint(np.iinfo(np.int32).max))


def _cost_scale(Xt, reference, rng):
    """Mean squared distance from (a probe of) the training rows to the reference.

    Divides the cost once so that the OT term is of order 1 whatever the number and
    scale of the features.
    """
    probe = Xt[rng.choice(len(Xt), min(len(Xt), _COST_PROBE), replace=False)]
    scale = float(torch.cdist(torch.from_numpy(probe), torch.from_numpy(reference)).pow(2).mean())
    return scale if scale > 0 else 1.0
