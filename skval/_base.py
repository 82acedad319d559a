"""What LossValClassifier and LossValRegressor share: validation, the net, the values."""

from __future__ import annotations

import copy
import functools
import inspect
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state, resample
from sklearn.utils.validation import check_array, check_is_fitted, validate_data
from torch import nn

from ._adam import lean_optimizer
from ._canary import (calibrated_values, canary_count, make_canaries, noise_shares,
                      plausible_shares)
from ._distributed import train_on_processes
from ._features import StandardisedRows, fill_rows
from ._mlp import MLP
from ._params import EXTRA_PREFIXES, check_params, hidden_sizes, resolve_device
from ._quantiles import NormalQuantiles
from ._issues import IssuesMixin
from ._results import ValuesMixin
from ._run_warnings import warn_if_canaries_blend_in, warn_if_flat, warn_if_interrupted
from ._tabular import TableInputMixin, needs_encoding
from ._spec import (LossSpec, NetSpec, Prepared, Reference, RowSpec, batch_size_for,
                    reference_position)
from ._train import train_local

_PREDICT_CHUNK = 8192
# ot_scaling="quantile": quantiles per feature, and the rows they are estimated from.
_N_QUANTILES, _QUANTILE_SUBSAMPLE = 1000, 100_000
# Training rows probed for the scale of the OT cost.
_COST_PROBE = 512
# X_val rows: below the first the OT term compares nothing (one point: every row's gradient is
# its distance to it, and a batch on it makes the loss 0); below the second, a warning.
_MIN_REFERENCE, _FEW_REFERENCE = 2, 10


def normal_quantiles(n_rows):
    """An unfitted quantile map to a standard normal (``NormalQuantiles``), for ``n_rows`` rows.

    Its own subsample of at most ``_QUANTILE_SUBSAMPLE`` rows is drawn with
    ``random_state=0``. Fit it on standardised values: it clips values within an
    absolute 1e-7 of a column's bounds, so a column of scale 1e-7 or less would be
    all bounds.
    """
    return NormalQuantiles(output_distribution="normal", n_quantiles=min(_N_QUANTILES, n_rows),
                           subsample=_QUANTILE_SUBSAMPLE, random_state=0)


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


class _BaseLossVal(TableInputMixin, IssuesMixin, ValuesMixin, BaseEstimator):
    """What LossValClassifier and LossValRegressor share.

    ``fit`` runs in named steps: check the parameters and the data
    (``_validate``), make the canary rows (``_canaries``), standardise the rows
    and the canaries after them (``_fit_scaler``), build the features the OT cost
    compares (``_fit_cost_features``), choose the reference rows
    (``_choose_reference``), scale the OT cost (``_cost_scale``) (together
    ``_prepare``), describe the net
    (``_net_spec``), train it (a trainer: ``skval._train.train_local``, or
    ``skval._distributed`` on several processes; both return a ``FitResult``) and
    store the results (``_store_results``).

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
    - optionally ``_reads_feature_tail(label_share)``: False to read the canaries'
      feature share at the feature canaries' median (``skval._canary.noise_shares``);
    - optionally ``_balanced_classes(n_outputs)``: the number of classes whose labels
      the row state counts (``class_balanced``), or None;
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
    def _fit(self, X, y, X_val, y_val, trainer=None, random_state=None):
        """Fit in named steps; ``trainer(spec, prep)`` trains (None: by ``n_workers``).

        ``random_state`` replaces ``self.random_state`` for this fit (a seed shared by
        the processes of a group) without changing the parameter. Returns ``self``, or
        None where the trainer returns no result (a process of a group other than 0).
        """
        vars(self).pop("_distributed_stats", None)  # set by a fit on several processes
        prep = self._prepare(X, y, X_val, y_val, random_state)
        spec = self._net_spec(prep)
        if trainer is None:
            trainer = train_local if self.n_workers == 1 else functools.partial(
                train_on_processes, n_workers=self.n_workers)
        result = trainer(spec, prep)
        if result is None:
            return None
        label_share = self._label_share(result.net, prep)
        prep = prep.without_rows()  # the rows' copies are no longer needed
        self._store_results(result, prep, label_share)
        warn_if_interrupted(result.net, self.max_epochs)
        return self

    def _prepare(self, X, y, X_val, y_val, random_state=None):
        """Every step before the net: validate, canaries, standardise, cost features, reference.

        The features of the rows and of the canaries after them are written once,
        chunk by chunk, into arrays of their final size (at a million rows a copy of
        the features is 80 MB).
        """
        row_index = X.index if hasattr(X, "columns") else None  # DataFrame rows keep their labels
        X, y, X_val, y_val = self._validate(X, y, X_val, y_val)
        target, n_outputs = self._encode_target(y)
        rng = check_random_state(self.random_state if random_state is None else random_state)
        rows_rng = _row_sampler(rng)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        X_canary, target_canary = self._canaries(X, target, n_outputs, seed)
        Xt = self._fit_scaler(X, X_canary)
        Xc = self._fit_cost_features(X, Xt, X_canary)
        n = len(X)  # the reference and the cost's scale come from the rows, not the canaries
        reference = self._choose_reference(Xc, n, X_val, y_val, rows_rng)
        cost_scale = _cost_scale(Xc, n, reference.X, rows_rng)
        return Prepared(Xt, Xc, np.concatenate([target, target_canary]), n_outputs, reference,
                        cost_scale, seed, row_index, n_canaries=len(X_canary) // 2)

    def _canaries(self, X, target, n_outputs, seed):
        """The canaries' raw features and targets (``skval._canary``); none: empty arrays."""
        count = canary_count(len(X), self.canaries)
        if count == 0:
            return X[:0], target[:0]
        n_classes = n_outputs if self._task == "classification" else None
        return make_canaries(X, target, n_classes, count, np.random.RandomState(seed))

    def _validate(self, X, y, X_val, y_val):
        """Check the parameters, then ``X, y`` and the reference data."""
        check_params(self, self._extra_params())
        self._table = None
        if needs_encoding(X):
            X, y = self._validate_table(X, y)
        else:
            X, y = validate_data(self, X, y, dtype=(np.float64, np.float32), ensure_min_samples=2,
                                 **self._y_check_params)
        X_val, y_val = self._check_X_val(X_val, y_val)
        if self.label_weight > 0 and y_val is None:
            warnings.warn(
                f"label_weight={self.label_weight} has no effect without y_val: the label part "
                "of the OT cost compares the batch's labels with the reference's, and only "
                "y_val's labels are trusted. Pass X_val and y_val, or leave label_weight=0.",
                UserWarning, stacklevel=5)
        return X, y, X_val, y_val

    def _check_X_val(self, X_val, y_val):
        if X_val is None:
            if y_val is not None:
                raise ValueError("y_val was given without X_val.")
            return None, None
        if self._table is not None:
            X_val = self._encoded_rows(X_val, "X_val")
        elif hasattr(X_val, "columns") and hasattr(self, "feature_names_in_"):
            X_val = self._match_columns(X_val, "X_val")
        X_val = check_array(X_val, dtype=(np.float64, np.float32), input_name="X_val",
                            estimator=self)
        width = self._n_encoded if self._table is not None else self.n_features_in_
        if X_val.shape[1] != width:
            raise ValueError(
                f"X_val has {X_val.shape[1]} features, but X has {self.n_features_in_}."
            )
        _check_reference_size(len(X_val))
        if y_val is not None:
            y_val = np.asarray(y_val)
            if len(y_val) != len(X_val):
                raise ValueError(
                    f"X_val and y_val must have the same number of rows, got {len(X_val)} and {len(y_val)}."
                )
        return X_val, y_val

    def _fit_scaler(self, X, X_canary):
        """Learn the feature standardisation (if ``standardize``) on ``X``: the rows of
        ``X`` and then ``X_canary``, standardised as they are read (no copy of ``X``)."""
        if self.standardize:
            self._x_mean, self._x_scale = mean_and_scale(X)
        else:
            self._x_mean, self._x_scale = 0.0, 1.0
        return StandardisedRows(X, self._x_mean, self._x_scale, self._transform_X(X_canary))

    def _fit_cost_features(self, X, Xt, X_canary):
        """The features the OT cost compares (``ot_scaling``): ``Xt`` itself, or quantiles
        (learnt on ``X``; of ``X`` and then ``X_canary``)."""
        self._cost_quantiles = None
        if self.ot_scaling == "standard":
            return Xt
        # standardised first (see normal_quantiles)
        self._cost_quantiles = make_pipeline(StandardScaler(), normal_quantiles(len(X))).fit(
            _quantile_rows(X))
        return fill_rows((X, X_canary), self._cost_features)

    def _cost_features(self, X):
        if self._cost_quantiles is None:
            return self._transform_X(X)
        return np.ascontiguousarray(self._cost_quantiles.transform(X), dtype=np.float32)

    def _choose_reference(self, Xc, n_rows, X_val, y_val, rng):
        """At most ``n_reference`` rows of ``X_val``, or without one of the first ``n_rows``
        rows of ``Xc`` (the training rows' cost features; the canaries follow them)."""
        source = Xc if X_val is None else self._cost_features(X_val)
        n_source = n_rows if X_val is None else len(source)
        # Targets enter the cost only when the user vouches for them with y_val: the
        # training labels are the very thing under suspicion.
        source_targets = None if y_val is None else self._encode_reference_targets(y_val)
        rows = np.arange(n_source)
        if n_source > self.n_reference:
            rows = np.sort(rng.choice(n_source, self.n_reference, replace=False))
        return Reference(
            X=source[rows],
            targets=None if source_targets is None else source_targets[rows],
            training_rows=rows if X_val is None else None,
        )

    def _net_spec(self, prep):
        """The ``NetSpec`` of the net that trains the network and the rows' weights."""
        n, n_features = prep.Xt.shape
        module, module_kwargs = self._module_and_kwargs(n_features, prep.n_outputs)
        optimizer_kwargs = {k[len("optimizer__"):]: v for k, v in self._extra_params().items()
                            if k.startswith("optimizer__")}
        optimizer = lean_optimizer(self.optimizer)  # Adam without torch._dynamo's import
        reference = prep.reference
        loss = LossSpec(
            task=self._task, reference=torch.from_numpy(reference.X), cost_scale=prep.cost_scale,
            ot_method=self.ot_method, ot_reg=self.ot_reg, ot_power=self.ot_power,
            reference_targets=_tensor_or_none(reference.targets), label_weight=self.label_weight,
            reference_position=reference_position(reference.training_rows, np.arange(n)),
            block_seed=prep.seed)
        rows = RowSpec(
            n_rows=n, weight_update=self.weight_update,
            lr=self.lr if self.weight_lr is None else self.weight_lr, clip=self.positive_weights,
            n_classes=self._balanced_classes(prep.n_outputs), record_history=self.record_history,
            optimizer=optimizer, optimizer_kwargs={
                k: v for k, v in optimizer_kwargs.items() if not k.startswith("param_groups")})
        return NetSpec(
            module=module, module_kwargs=module_kwargs, loss=loss, rows=rows,
            optimizer=optimizer, optimizer_kwargs=optimizer_kwargs, lr=self.lr,
            max_epochs=self.max_epochs,
            # the batch size suits the user's rows; an epoch also covers the canaries
            batch_size=batch_size_for(self.batch_size, n - 2 * prep.n_canaries,
                                      reference.training_rows is not None),
            batch_rule=self.batch_size, init_seed=prep.seed, shuffle_seed=prep.seed,
            device=resolve_device(self.device), verbose=self.verbose,
            callbacks=list(copy.deepcopy(self.callbacks)) if self.callbacks else [],
            progress_bar=bool(self.verbose))

    def _balanced_classes(self, n_outputs):
        """The number of classes whose labels the row state counts (None: not counted)."""
        return None

    def _label_share(self, net, prep):
        """The share of wrong labels (targets) if estimated otherwise than by the label
        canaries (see ``LossValRegressor``); None: by them."""
        return None

    def _reads_feature_tail(self, label_share):
        """Whether the canaries' feature share and odds read the rows' own feature tail
        (``skval._canary.noise_shares``): a classifier always."""
        return True

    def _store_results(self, result, prep, label_share=None):
        """The fitted attributes: the net, the values and what the run did."""
        net = self.net_ = result.net
        self._row_index = None if prep.row_index is None else prep.row_index.copy()
        self.n_epochs_ = len(net.history)
        self.n_reference_ = len(prep.reference.X)
        n_rows = len(net.rows_.weights) - 2 * prep.n_canaries
        weights = net.rows_.values().cpu().numpy().astype(np.float64)
        evidence = net.rows_.evidence.cpu().numpy().astype(np.float64)
        self.weights_, self.evidence_ = weights[:n_rows], evidence[:n_rows]
        self.noise_shares_, self.data_values_ = None, self.weights_
        if prep.n_canaries:
            tail = self._reads_feature_tail(label_share)
            estimate = noise_shares(evidence, n_rows, prep.n_canaries, tail)
            if label_share is not None:
                estimate[0] = label_share
            self.noise_shares_ = plausible_shares(estimate)
            warn_if_canaries_blend_in(estimate, self.noise_shares_)
            self.data_values_ = calibrated_values(evidence, n_rows, prep.n_canaries,
                                                  self.noise_shares_, tail)
        if self.record_history:
            self.weight_history_ = net.rows_.history()[:, :n_rows]
        if result.stats is not None:
            self._distributed_stats = result.stats
        warn_if_flat(self.weights_, net.history)

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
        return module, {k[len("module__"):]: v for k, v in kwargs.items()}

    def _transform_X(self, X):
        return np.ascontiguousarray((X - self._x_mean) / self._x_scale, dtype=np.float32)

    # ------------------------------------------------------------------ inference
    def _forward(self, X):
        check_is_fitted(self, "net_")
        X = self._predict_input(X)
        Xt = torch.from_numpy(self._transform_X(X)).double()
        # A float64 copy of the network: float32 matrix products differ in the last
        # bits with the number of rows, and a row's prediction must not depend on
        # which other rows are predicted with it.
        module = self.net_.float64_module()  # cached per fitted network
        device = self.net_.device
        with torch.no_grad():
            out = [module(chunk.to(device)).cpu() for chunk in torch.split(Xt, _PREDICT_CHUNK)]
        return torch.cat(out).numpy().astype(np.float64)


def _quantile_rows(X):
    """The rows the OT cost's quantiles are learnt from: all, or QuantileTransformer's
    own draw of ``_QUANTILE_SUBSAMPLE`` (its ``resample`` with ``random_state=0``).

    Drawn here, so that the standardisation before it is learnt on the same rows and
    no standardised copy of every row is made (80 MB at a million rows).
    """
    if len(X) <= _QUANTILE_SUBSAMPLE:
        return X
    rows = resample(np.arange(len(X)), replace=False, n_samples=_QUANTILE_SUBSAMPLE,
                    random_state=0)
    return X[rows]


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


def _cost_scale(Xc, n_rows, reference, rng):
    """Mean squared distance from (a probe of) the training rows to the reference.

    The training rows are the first ``n_rows`` of ``Xc``. Divides the cost once so
    that the OT term is of order 1 whatever the number and scale of the features.
    """
    probe = Xc[rng.choice(n_rows, min(n_rows, _COST_PROBE), replace=False)]
    scale = float(torch.cdist(torch.from_numpy(probe), torch.from_numpy(reference)).pow(2).mean())
    return scale if scale > 0 else 1.0


def _check_reference_size(n_val):
    """Refuse an ``X_val`` of one row, warn below ``_FEW_REFERENCE`` rows."""
    if n_val < _MIN_REFERENCE:
        raise ValueError(
            f"X_val has {n_val} row; the OT term compares each batch with the distribution of "
            f"the reference rows and needs at least {_MIN_REFERENCE} (one point makes it the "
            "distance to that point). Pass more clean rows, or leave X_val out to use the "
            "training rows.")
    if n_val < _FEW_REFERENCE:
        warnings.warn(
            f"X_val has only {n_val} rows: the OT distance to so few points is mostly their own "
            f"sampling noise. Pass at least {_FEW_REFERENCE} clean rows (n_reference of them are "
            "used), or leave X_val out to use the training rows.", UserWarning, stacklevel=7)
