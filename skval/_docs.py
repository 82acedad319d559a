"""Parameter documentation shared by both estimators.

What the defaults were chosen on, and how they compare, is in BENCHMARKS.md, not
here: these texts say what each parameter does.
"""

from ._spec import AUTO_BATCH_MAX as _AUTO_BATCH_MAX
from ._spec import AUTO_BATCH_MIN as _AUTO_BATCH_MIN

_PARAMETERS = """
    module : None, torch.nn.Module class or instance, default=None
        The network. ``None`` builds an MLP from ``hidden_layer_sizes`` and
        ``activation``. A module class is built with the ``module__*`` keyword
        parameters; if its ``__init__`` accepts ``n_features`` / ``n_outputs`` they
        are filled in from the data. Its ``forward`` takes only the features.
    hidden_layer_sizes : tuple of int, default={hidden}
        Widths of the hidden layers of the default MLP.
    activation : {{"relu", "tanh", "sigmoid", "gelu", "elu", "leaky_relu"}} or nn.Module class, \
default="{activation}"
        Non-linearity of the default MLP.
    max_epochs : int, default=30
        Passes over the training rows.
    lr : float, default=0.01
        Learning rate of the network's parameters.
    batch_size : int or "auto", default="auto"
        Rows per training step. ``"auto"``: {auto_min} rows up to {auto_switch:,} rows
        (each weight's signal comes from many small steps), then about 100 steps
        per epoch (``n // 100`` rows), at most {auto_max}. Without ``X_val`` a batch never
        exceeds half the rows, so part of the reference always lies outside it.
    optimizer : torch.optim.Optimizer class, default=torch.optim.Adam
        Optimizer of the network (and of the data weights with
        ``weight_update="row"``); ``optimizer__*`` keyword parameters are passed to it.
        ``torch.optim.Adam`` steps through torch's fused kernel without importing
        ``torch._dynamo`` (``skval._adam.LeanAdam``: the same values, about a second
        less for the first fit in a process).
    weight_lr : float or None, default=None
        Learning rate of the data weights (``None``: ``lr``).
    weight_update : {{"batch", "row"}}, default="batch"
        How the data weights move. ``"row"``: the network's ``optimizer`` moves
        them as in the paper; with Adam each weight's step is divided by its own
        gradient history, so every row whose gradient keeps its sign falls at the
        same speed whatever the size of its loss. ``"batch"``: Adam's per-row
        momentum, but one second moment shared by the batch (the running squared
        median absolute gradient), so a typical row still moves about
        ``weight_lr`` per step and a row with three times the batch's median
        gradient moves three times as far.
    ot_method : {{"exact", "sinkhorn"}}, default="exact"
        Exact OT (network simplex) or entropic OT (log-domain Sinkhorn,
        regularised by ``ot_reg``) between each weighted batch and the reference
        rows. Exact is the faster of the two on the CPU. When a batch is large
        against the reference, the exact problem is solved in blocks: the batch
        and the reference are cut into the same number of random parts and part
        ``i`` is transported to part ``i``, a feasible plan of the full problem at
        a fraction of its cost.
    ot_reg : float, default=0.1
        Entropic regularisation of ``"sinkhorn"``, relative to the scaled cost.
    ot_power : float, default=2.0
        Exponent of the OT distance in the loss (the paper's formula squares it;
        the authors' code used 1).
    ot_scaling : {{"quantile", "standard"}}, default="quantile"
        The features the OT cost compares. ``"quantile"``: each feature mapped
        through its training quantiles to a standard normal, so that heavy tails,
        skew and far outliers weigh no more in the cost than the rows' ranks
        (applied to ``X_val`` too; the network's input is not changed).
        ``"standard"``: the features the network sees (after ``standardize``), as
        in the paper.
{target_scaling}    label_weight : float, default=0.0
        With ``y_val``, a weight > 0 makes the OT cost also compare targets (a
        label mismatch, or the squared difference of regression targets as the
        network sees them, costs ``label_weight`` in units of the mean scaled feature cost),
        so a row whose target disagrees with the reference near it is expensive
        to keep. Without ``y_val`` the cost uses features only, whatever this is.
{class_balanced}    n_reference : int, default=256
        Most reference rows the batches are transported to; a larger reference set
        is subsampled once per fit, so the OT cost per batch does not grow with n.
{canaries}    standardize : bool, default=True
        Standardise the features with the training rows' mean and standard
        deviation inside the estimator (also applied to ``X_val`` and at predict).
    positive_weights : bool, default=True
        Clip the data weights at 0 after every step. ``False`` lets them turn
        negative, as in the authors' code.
    record_history : bool, default=False
        Keep a copy of the data weights after every epoch in ``weight_history_``.
    device : str or torch.device, default="cpu"
        Where the network trains, e.g. ``"cuda"``.
    n_workers : int, default=1
        Processes of this machine that train this one fit together, with
        ``torch.distributed`` (gloo on the CPU; nccl with ``device="cuda"``, one
        GPU per process). The rows are shuffled once and cut into ``n_workers``
        fixed shards; each process trains its shard's data weights and a replica
        of the network, whose gradients are averaged at every step (only the
        network's gradients travel). A step's ``batch_size`` rows are shared by
        the processes (``batch_size / n_workers`` each, rounded up), so an epoch
        has as many steps as in one process; with ``"auto"`` the cap of
        {auto_max} rows applies to each process: above {auto_cap:,} rows a step
        trains up to ``n_workers`` x {auto_max} rows (an epoch keeps at least
        about 100 steps).
        Pays only on large data (see README): on small data, starting the
        processes and averaging the gradients at every step cost more than
        they save. ``1`` trains in this process, as always. Each process runs
        one torch thread unless ``OMP_NUM_THREADS`` is set. The processes run
        skval's own worker module, never the caller's main module: a script
        needs no ``if __name__ == "__main__":`` guard, and a script on
        standard input and a notebook work; a custom ``module`` and the
        ``callbacks`` must be picklable by ``cloudpickle`` (a class defined in
        the script or the notebook travels by value); a callback that stops
        training early must stop every process at the same epoch. Ctrl-C stops
        every process and ``fit`` raises ``KeyboardInterrupt``. Across machines,
        use ``torchrun ... -m skval.distributed`` (see README).
    random_state : int, RandomState instance or None, default=None
        Seeds the network's initial parameters, the shuffling and the reference
        subsample. An int gives identical ``data_values_`` on every fit.
    verbose : int, default=0
        0 prints nothing; 1 shows a progress bar and a log line per epoch.
    callbacks : list of skorch callbacks or None, default=None
        Extra callbacks for the underlying skorch net.
    **kwargs
        ``module__*`` and ``optimizer__*`` parameters (see ``module``, ``optimizer``).
"""



_CLASS_BALANCED = """    class_balanced : bool, default=False
        Judge each row's loss against its class's base rate. A weight is pushed
        down in proportion to its row's loss, and a network's output carries each
        class's frequency as an offset, so a rare class's rows have large losses
        and fill the lowest values even when every label is right. ``True``: the
        loss behind each weight's gradient (and the label side of ``evidence_``)
        is the cross-entropy of the logits minus the log of the class frequencies
        of ``y`` (logit adjustment); the network still trains on the plain
        cross-entropy. Keeps a clean rare class out of the lowest values and out
        of what a clean-and-refit drops, but where many labels of a rare class
        are wrong (uniform flips swell it) they are found less well, because the
        whole class is no longer suspect. ``False``: the paper's formulation.
"""


_TARGET_SCALING = """    target_scaling : {{"quantile", "standard"}}, default="quantile"
        The targets the network trains on (and ``predict`` maps back).
        ``"quantile"``: each target standardised, then mapped through its
        training quantiles to a standard normal, so that a skewed or heavy-tailed
        target's extreme rows do not get low weights for their large residuals
        alone (on the benchmark's skewed tables dropping the lowest-valued rows
        no longer removes its largest targets; BENCHMARKS section 1); predictions
        stay within the training targets' range. ``"standard"``: standardised
        only, as in the paper.
"""


_CANARIES = """    canaries : float in [0, 0.5], default={default}
        Share of the rows added to the run twice as known-corrupted copies: as
        many *label canaries* (random rows, slightly jittered, given another
        {wrong}) and *feature canaries* (random rows with Gaussian noise of each
        feature's scale added). They train with the rows (at least 10 of each;
        none when the two kinds would exceed a tenth of the rows, as below 200
        rows) and calibrate the two sides of ``evidence_``: ``noise_shares_``
        estimates how many rows are corrupted each way, and ``data_values_``
        weigh each side by that share, so the value ranks like the label side on
        label noise and like the feature side on feature noise. They are left
        out of every fitted attribute (the network has trained on them: a few
        percent more rows). ``0``: no canaries; ``data_values_`` are the LossVal
        weights, the paper's formulation.{note}
"""
_REGRESSION_CANARIES_NOTE = """ In regression the label share is not
        read from the label canaries but from the network's residuals on the rows
        (``skval._canary.swapped_target_share``: how many targets are as far from
        their predictions as another row's target would be): residuals of clean
        rows are wide on noisy or heavy-tailed targets, and the label canaries
        (another row's target) did not stand out from them (a label share of
        0.25-0.69 with no target swapped; BENCHMARKS section 1). The feature
        share reads the rows' own feature tail, as a classifier's does, only where
        those residuals show under 5 % swapped targets (else the feature canaries'
        median): under target noise a regressor's clean rows have a feature tail
        of their own."""


def parameters_doc(hidden, activation, classifier=False):
    """The Parameters section of an estimator with these default network settings."""
    canaries = _CANARIES.format(
        default="0.025",
        wrong="class" if classifier else "row's target",
        note="" if classifier else _REGRESSION_CANARIES_NOTE)
    return _PARAMETERS.format(hidden=hidden, activation=activation, auto_min=_AUTO_BATCH_MIN,
                              auto_switch=100 * _AUTO_BATCH_MIN, auto_max=_AUTO_BATCH_MAX,
                              auto_cap=100 * _AUTO_BATCH_MAX,
                              class_balanced=_CLASS_BALANCED if classifier else "",
                              target_scaling="" if classifier else _TARGET_SCALING,
                              canaries=canaries)


COMMON_ATTRIBUTES = """
    data_values_ : ndarray of shape (n_samples,)
        The value of each training row, in the order of ``X``; low values mark
        harmful rows (wrong labels, corrupted features). With canaries (the
        default): minus the log of the estimated odds that the row is corrupted,
        ``-log(s_label * o_label + s_feature * o_feature)``, where ``s`` are
        ``noise_shares_`` (floored at one row) and ``o`` each side's odds of the
        row's evidence against the canaries' (a logistic fit on the side's robust
        z); a value near 0 or above is ordinary. With ``canaries=0`` (or below 200
        rows): ``weights_``.
    weights_ : ndarray of shape (n_samples,)
        Each row's learned LossVal weight (the paper's data value). Rows start at
        1. With ``positive_weights=True`` a weight that reaches 0 stays there;
        such rows get a value just below 0 instead of a tie at 0 (within 0.001 of
        it, lower the further their own training steps would have taken them
        below 0), so that the lowest rows are ranked too (a row that reached 0
        only through momentum, between its own steps, stays at 0).
    noise_shares_ : ndarray of shape (2,) or None
        Estimated shares of the rows corrupted in their labels (targets) and in
        their features, from the canaries (see ``canaries``; a regressor's label
        share from its residuals). A rough figure: on
        the benchmark's classification tables with a fifth of the rows corrupted
        one way, 0.10-0.18 of that kind on average and 0.00-0.03 of the other,
        a single run's total 0.00-0.47; on clean imbalanced tables a total of at
        most 0.055. A side whose
        estimate exceeds one half (its canaries blend in with the rows, as the
        feature side may on a table of few or discrete features) gets 0, with a
        warning. None without canaries.
    net_ : skorch.NeuralNet
        The trained net; ``net_.module_`` is the network, ``net_.rows_`` (a
        ``RowState``) owns the data weights and all else the run keeps per row.
    n_epochs_ : int
        Epochs actually run (fewer than ``max_epochs`` if ``fit`` was interrupted
        with Ctrl-C; the values reached so far are kept and a warning is issued).
    n_reference_ : int
        Number of reference rows used by the OT term.
    weight_history_ : ndarray of shape (n_epochs_, n_samples)
        The data weights after every epoch; only with ``record_history=True``.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features, when ``X`` had string column names.
"""

FIT_DOC = """Train the network and the data weights on every row of ``X``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Training features: numbers, or a DataFrame, which may also hold text,
            ``category`` and boolean columns and missing values (encoded inside
            the estimator, see the user guide's "Tables" page; identifier columns
            are left out with a warning, date columns refused).
        y : array-like of shape {y_shape}
            Training targets.
        X_val : array-like of shape (n_val, n_features), default=None
            Clean reference rows for the OT term, at least 2 (a warning below 10); a
            DataFrame must have ``X``'s columns (taken in ``X``'s order). Without it the reference is a
            random subsample of ``X`` itself (at most ``n_reference`` rows): the
            bulk of the training data stands in for the clean distribution, so rows
            far from it (corrupted features) are still pushed down, and the loss
            term pushes down rows the network cannot fit (wrong targets). With
            metadata routing, request it with ``set_fit_request(X_val=True)``.
        y_val : array-like of shape {y_val_shape}, default=None
            Targets of ``X_val``. Used when ``label_weight > 0``: the OT cost then
            compares features and targets; otherwise features only.

        Returns
        -------
        self : object
            The fitted estimator.
        """
