"""Shared skorch base of the sketch estimators.

Everything the three estimators have in common lives here: friendly scikit-learn parameters
mapped onto skorch's prefixed ones, float32 input checks, a dataset that batches rows of a CSR
matrix and densifies one batch at a time, seeding, early stopping / progress / trunk-freezing /
divergence callbacks, taking a trunk over from a pretrained estimator (with a from-scratch
fallback), and attribution (``explain``).
"""

from __future__ import annotations

import copy
import inspect
import math
from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import validate_data
from skorch import NeuralNet
from skorch.callbacks import Freezer, Unfreezer
from skorch.utils import is_dataset, to_tensor

from .._compat import (
    SKORCH_BOOKKEEPING_ATTRIBUTES,
    Interval,
    Options,
    StrOptions,
    num_samples,
    validate_parameter_constraints,
)
from ._module import ResidualSketchNet
from .callbacks import _FiniteLoss, _TrunkEarlyStopping
from .data import SketchDataset, _RowBatches
from .streaming import BatchStream, StreamPart, StreamProgressBar

__all__ = ["SHARED_ATTRIBUTES_DOC", "SHARED_PARAMETERS_DOC", "SketchDataset", "SketchNetBase"]


# The parameters every sketch estimator shares, spliced into each class docstring.
SHARED_PARAMETERS_DOC = """
    hidden_units : int, default=1024
        Width of the residual trunk (``module__hidden_units`` overrides it, skorch-style).
    n_blocks : int, default=3
        Residual blocks after the input layer (the network has ``n_blocks + 2`` linear layers).
    dropout : float, default=0.1
        Dropout after every trunk layer.
    max_epochs : int or "auto", default="auto"
        Most training epochs (fewer with early stopping). "auto": 10 without early stopping;
        with it, up to 50, so that the held-out rows, not a cap, choose the number of epochs
        (a small learning rate or a fine-tuning can need more than 10). ``max_epochs_`` says
        what ``fit`` used; ``partial_fit`` trains that many more.
    batch_size : int >= 2, default=256
        Rows per mini-batch (``-1``: all rows). At least 2: the trunk's BatchNorm cannot
        normalise a training batch of one row (a leftover last batch of one row is merged into
        the batch before it).
    lr : float, default=1e-3
        Learning rate of the optimizer (AdamW by default; ``optimizer__weight_decay`` etc.
        are passed through).
    early_stopping : "auto" or bool, default="auto"
        Stop when the validation loss has not improved by ``tol`` (relative) for
        ``n_iter_no_change`` epochs, and restore the best weights. With ``pretrained`` and
        ``freeze_epochs``, the frozen epochs neither count towards the patience nor can be
        restored: the weights come from an epoch in which the whole network had trained.
        "auto" turns it on for 10,000 training rows or more and for a ``BatchStream`` (as
        scikit-learn's ``HistGradientBoostingClassifier`` does), so that on real data the
        number of epochs is chosen on held-out rows; ``early_stopping_`` says what ``fit``
        used.
    validation_fraction : float in (0, 1) or None, default=None
        Share of the training rows held out to report ``valid_loss`` (for early stopping and
        ``pretrained_fallback``). None: 0.1 when ``early_stopping`` is on or the fallback runs,
        otherwise no hold-out. A skorch ``train_split`` takes precedence.
    n_iter_no_change : int, default=5
        Patience of early stopping, in epochs.
    tol : float, default=1e-4
        Minimum relative improvement of the validation loss for early stopping.
    pretrained : fitted sketch estimator, FrozenEstimator of one, or ResidualSketchNet, \
default=None
        Start from this network's trunk (weights copied; trunk shape taken from it, so
        ``hidden_units`` and ``n_blocks`` are ignored) with a new, randomly initialised head: the
        fine-tuning step of the BaseModel recipe. X must have the width the pretrained network
        was trained on. Wrap the estimator in :class:`sklearn.frozen.FrozenEstimator` so that
        ``clone`` (and hence ``GridSearchCV``) keeps it fitted.
    freeze_epochs : int, default=0
        With ``pretrained``: train only the head for this many epochs, then the whole network.
    pretrained_fallback : bool, default=True
        With ``pretrained``: also train the same network from scratch (``pretrained=None``,
        ``hidden_units``/``n_blocks`` as given) on the same training rows and keep whichever
        has the lower loss on the same validation rows, so that starting from a pretrained
        trunk never scores below not using it. Doubles the cost of ``fit``; ``pretrained_kept_``
        tells which one was kept. Ignored by ``partial_fit`` and warm-started refits.
    progress_bar : bool, default=False
        Show a tqdm progress bar over the batches of each epoch.
    verbose : int, default=0
        1 prints one line of losses per epoch.
    device : str or torch.device, default="cpu"
        Where the network trains and predicts (``"cuda"``, ``"cuda:1"``). A model pickled on a
        GPU loads on a machine without one: its weights are mapped to the CPU and ``device`` is
        set to ``"cpu"`` (with a ``skorch.exceptions.DeviceWarning``).
    random_state : int, RandomState instance or None, default=None
        Seeds the weight initialisation, dropout, batch order and validation split (torch's
        global RNG state is restored after ``fit``). Same seed, same data: same predictions
        (on the same device and torch build).
    module, criterion, optimizer, callbacks, train_split, **kwargs
        skorch's parameters, passed through: e.g. ``module__hidden_units``,
        ``optimizer__weight_decay``, ``callbacks=[...]`` (added to the defaults),
        ``iterator_train__num_workers``. ``criterion=None`` picks the loss from the task.
        A ``"finite_loss"`` callback is always added: when a training or validation loss, or
        a weight, stops being finite (a learning rate far too high, X of extreme scale),
        ``fit`` restores the weights of the last epoch that ended finite and raises a
        ``FloatingPointError``; pass ``callbacks__finite_loss=None`` to drop it."""


# The fitted attributes every sketch estimator shares (as resolved by fit), spliced in too.
SHARED_ATTRIBUTES_DOC = """    pretrained_kept_ : bool
        Whether ``module_`` started from the ``pretrained`` trunk (False without one, or when
        ``pretrained_fallback`` found training from scratch better).
    fallback_valid_losses_ : dict or None
        ``{"pretrained": loss, "scratch": loss}`` on the validation rows when
        ``pretrained_fallback`` ran, else None.
    early_stopping_ : bool
        Whether early stopping was on in the last ``fit`` (``early_stopping`` resolved).
    max_epochs_ : int
        The epoch cap of the last training call (``max_epochs`` resolved)."""


def _splice_shared_docs(cls) -> None:
    """Put the shared parameter and attribute docs in a sketch estimator's docstring."""
    cls.__doc__ = cls.__doc__.replace("{shared}", SHARED_PARAMETERS_DOC).replace(
        "{shared_attributes}", SHARED_ATTRIBUTES_DOC
    )


# early_stopping="auto" is on from this many training rows (scikit-learn's
# HistGradientBoosting uses the same threshold): below it a 10% hold-out costs more
# training rows than early stopping saves epochs.
_AUTO_EARLY_STOPPING_ROWS = 10_000

# max_epochs="auto": the cap without early stopping (a fixed budget), and with it. Early
# stopping ends most fits well before 50 (patience 5); the cap only bounds the time of a fit
# whose held-out loss keeps improving slowly.
_AUTO_MAX_EPOCHS = 10
_AUTO_MAX_EPOCHS_EARLY_STOPPING = 50


def _unavailable(estimator) -> bool:
    """For ``available_if``: hides an inherited skorch method that does not apply."""
    return False


def _accepted_kwargs(factory, candidates: dict) -> dict:
    """The entries of ``candidates`` that ``factory`` (a class or function) accepts."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(candidates)
    return {k: v for k, v in candidates.items() if k in params}


# Devices whose batches are gathered and densified on the device itself, from one copy of the
# rows there (SketchDataset.on_device): on a GPU, densifying each batch on the CPU and copying
# it over cost more than the training step (issue #10's shape, H200: 0.36 s an epoch against
# 0.14 s for a plain MLP reading its input from the GPU's memory).
_GATHER_ON_DEVICE = ("cuda",)


class SketchNetBase(NeuralNet):
    """Base class of the skorch sketch estimators; not meant to be used directly.

    Subclasses define ``_fit_target(y)`` (learn classes / target sketcher; set ``n_outputs_``),
    ``_encode_target(y)`` (array or CSR for the dataset), ``_default_criterion(**kwargs)`` and
    the prediction methods.
    """

    _parameter_constraints: dict = {
        "hidden_units": [Interval(Integral, 1, None, closed="left")],
        "n_blocks": [Interval(Integral, 0, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "batch_size": [Interval(Integral, 2, None, closed="left"), Options(Integral, {-1})],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "validation_fraction": [None, Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "pretrained": [None, ResidualSketchNet, FrozenEstimator, NeuralNet],
        "freeze_epochs": [Interval(Integral, 0, None, closed="left")],
        "pretrained_fallback": ["boolean"],
        "progress_bar": ["boolean"],
        "verbose": ["verbose"],
        "device": [str, torch.device],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        hidden_units=1024,
        n_blocks=3,
        dropout=0.1,
        max_epochs="auto",
        batch_size=256,
        lr=1e-3,
        early_stopping="auto",
        validation_fraction=None,
        n_iter_no_change=5,
        tol=1e-4,
        pretrained=None,
        freeze_epochs=0,
        pretrained_fallback=True,
        progress_bar=False,
        verbose=0,
        device="cpu",
        random_state=None,
        module=ResidualSketchNet,
        criterion=None,
        optimizer=torch.optim.AdamW,
        callbacks=None,
        train_split=None,
        **kwargs,
    ):
        # Our parameters first: before skorch's __init__ marks the net as created, it accepts a
        # torch module (pretrained=ResidualSketchNet) as a plain attribute.
        self.hidden_units = hidden_units
        self.n_blocks = n_blocks
        self.dropout = dropout
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.pretrained = pretrained
        self.freeze_epochs = freeze_epochs
        self.pretrained_fallback = pretrained_fallback
        self.progress_bar = progress_bar
        self.random_state = random_state
        kwargs.setdefault("dataset", SketchDataset)
        super().__init__(
            module=module,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            train_split=train_split,
            callbacks=callbacks,
            verbose=verbose,
            device=device,
            **kwargs,
        )

    # ------------------------------------------------------------------ parameters
    def _get_param_names(self):
        # skorch keeps bookkeeping in __dict__ that __init__ rebuilds from the arguments: it is
        # not a parameter to clone or tune.
        names = super()._get_param_names()
        return [name for name in names if name not in SKORCH_BOOKKEEPING_ATTRIBUTES]

    def _check_params(self) -> None:
        params = {name: getattr(self, name) for name in self._parameter_constraints}
        try:
            validate_parameter_constraints(
                self._parameter_constraints, params, caller_name=type(self).__name__
            )
        except ValueError as error:
            if not str(error).startswith("The 'batch_size' parameter"):
                raise
            # same error type (scikit-learn's InvalidParameterError), with the reason added
            raise type(error)(
                f"{error} The trunk's BatchNorm cannot normalise a training batch of one row."
            ) from None
        if self.freeze_epochs and self.pretrained is None:
            raise ValueError(
                f"freeze_epochs={self.freeze_epochs} freezes a pretrained trunk, but "
                "pretrained=None. Pass pretrained=<fitted SketchRecommender> or set "
                "freeze_epochs=0."
            )
        device = torch.device(self.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device={self.device!r} was requested but CUDA is not available in this "
                "torch installation; use device='cpu'."
            )

    def _validation_fraction(self):
        if self.validation_fraction is not None:
            return self.validation_fraction
        return 0.1 if self._stops_early() or self._runs_fallback() else None

    def _stops_early(self) -> bool:
        """Whether training stops early: ``early_stopping`` as resolved by the last ``fit``."""
        return getattr(self, "early_stopping_", self.early_stopping is True)

    def _resolve_early_stopping(self, data) -> None:
        """``early_stopping_``: "auto" is on for a stream or ``_AUTO_EARLY_STOPPING_ROWS``
        rows or more."""
        if self.early_stopping == "auto":
            large = isinstance(data, BatchStream) or len(data) >= _AUTO_EARLY_STOPPING_ROWS
            self.early_stopping_ = bool(large)
        else:
            self.early_stopping_ = bool(self.early_stopping)

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        # skorch reads ``max_epochs`` here: resolve "auto" (from the current parameters, so
        # that set_params between partial_fit calls counts) and record it as ``max_epochs_``
        if epochs is None:
            epochs = self.max_epochs
            if epochs == "auto":
                stops = self._stops_early()
                epochs = _AUTO_MAX_EPOCHS_EARLY_STOPPING if stops else _AUTO_MAX_EPOCHS
        self.max_epochs_ = int(epochs)
        return super().fit_loop(X, y, epochs=epochs, **fit_params)

    # ------------------------------------------------------------------ pretrained trunk
    def _uses_pretrained(self) -> bool:
        """Whether the network being built starts from the pretrained trunk (not during the
        from-scratch run of ``pretrained_fallback``)."""
        return self.pretrained is not None and not getattr(self, "_training_from_scratch", False)

    def _runs_fallback(self) -> bool:
        return self.pretrained is not None and self.pretrained_fallback

    def _pretrained_module(self) -> ResidualSketchNet:
        source = self.pretrained
        if isinstance(source, FrozenEstimator):
            source = source.estimator
        if isinstance(source, NeuralNet):
            if not source.initialized_:
                raise ValueError(
                    f"pretrained={type(source).__name__}(...) is not fitted. Pass a fitted "
                    "estimator; to keep it fitted through clone() and GridSearchCV, wrap it: "
                    "pretrained=sklearn.frozen.FrozenEstimator(fitted_recommender)."
                )
            source = source.module_
        if not (hasattr(source, "trunk") and hasattr(source, "trunk_config")):
            raise TypeError(
                "pretrained must be a fitted sketch estimator (e.g. SketchRecommender), a "
                f"FrozenEstimator wrapping one, or a ResidualSketchNet; got {type(source).__name__}."
            )
        return source

    def _check_pretrained_width(self) -> None:
        if self.pretrained is None:
            return
        expected = self._pretrained_module().trunk_config()["n_features"]
        if expected != self.n_features_in_:
            raise ValueError(
                f"The pretrained trunk takes {expected} input features but X has "
                f"{self.n_features_in_}. Build X with the same fitted preprocessing as the "
                "pretrained estimator (e.g. reuse its pipeline's sketchers, frozen)."
            )

    # ------------------------------------------------------------------ skorch hooks
    def get_params_for(self, prefix):
        params = super().get_params_for(prefix)
        if prefix != "module" or isinstance(self.module, torch.nn.Module):
            return params
        if not hasattr(self, "n_outputs_"):
            raise AttributeError(
                f"{type(self).__name__} sizes its network from the data; call fit(X, y) "
                "instead of initialize()."
            )
        defaults = {
            "n_features": self.n_features_in_,
            "n_outputs": self.n_outputs_,
            "hidden_units": self.hidden_units,
            "n_blocks": self.n_blocks,
            "dropout": self.dropout,
        }
        if self._uses_pretrained():
            trunk = self._pretrained_module().trunk_config()
            conflicts = sorted(k for k, v in params.items() if k in trunk and v != trunk[k])
            if conflicts:
                raise ValueError(
                    f"module__{conflicts[0]}={params[conflicts[0]]!r} contradicts the pretrained "
                    f"trunk ({conflicts[0]}={trunk[conflicts[0]]!r}); the trunk's shape comes "
                    "from pretrained, drop that parameter."
                )
            defaults.update(trunk)
        return {**_accepted_kwargs(self.module, defaults), **params}

    def initialize_module(self):
        super().initialize_module()
        if self._uses_pretrained():
            trunk = self._pretrained_module().trunk.state_dict()
            self.module_.trunk.load_state_dict(trunk)
        return self

    def initialize_criterion(self):
        if self.criterion is not None:
            return super().initialize_criterion()
        self.criterion_ = self._default_criterion(**self.get_params_for("criterion"))
        return self

    def get_default_callbacks(self):
        callbacks = list(super().get_default_callbacks())
        callbacks.append(("finite_loss", _FiniteLoss()))
        frozen = self.freeze_epochs if self._uses_pretrained() else 0
        if self._stops_early():
            callbacks.append((
                "early_stopping",
                _TrunkEarlyStopping(
                    monitor="valid_loss",
                    patience=self.n_iter_no_change,
                    threshold=self.tol,
                    threshold_mode="rel",
                    load_best=True,
                    frozen_epochs=frozen,
                ),
            ))
        if frozen:
            callbacks.append(("freeze_trunk", Freezer("trunk.*", at=1)))
            callbacks.append(("unfreeze_trunk", Unfreezer("trunk.*", at=self.freeze_epochs + 1)))
        if self.progress_bar:
            callbacks.append(("progress_bar", StreamProgressBar()))
        return callbacks

    def get_dataset(self, X, y=None):
        if is_dataset(X):
            return X
        X = self._validate_X(X, reset=False)
        return self.dataset(X, None if y is None else self._encode_target(y))

    def get_split_datasets(self, X, y=None, **fit_params):
        if getattr(self, "_fixed_split", None) is not None:
            return self._fixed_split
        if isinstance(X, BatchStream):  # held-out rows picked by key hash; train_split ignored
            return X.split(self._validation_fraction(), seed=self._seed_)
        if self.train_split is not None:
            return super().get_split_datasets(X, y, **fit_params)
        dataset = self.get_dataset(X, y)
        fraction = self._validation_fraction()
        if fraction is None:
            return dataset, None
        if not isinstance(dataset, SketchDataset):
            raise TypeError(
                "validation_fraction splits a SketchDataset; for another dataset pass a skorch "
                "train_split (e.g. skorch.dataset.ValidSplit(0.1))."
            )
        positions = np.arange(len(dataset))
        stratify = self._stratify_labels(dataset)
        try:
            train, valid = train_test_split(
                positions, test_size=fraction, random_state=self._seed_, stratify=stratify
            )
        except ValueError:  # a class too small to stratify: fall back to a plain split
            train, valid = train_test_split(
                positions, test_size=fraction, random_state=self._seed_
            )
        if len(train) < 2:
            raise ValueError(
                f"validation_fraction={fraction} leaves {len(train)} training row(s); pass more "
                "rows or a smaller validation_fraction."
            )
        return dataset.subset(np.sort(train)), dataset.subset(np.sort(valid))

    def _stratify_labels(self, dataset):
        return None

    def get_iterator(self, dataset, training=False):
        if isinstance(dataset, StreamPart):  # a stream cuts (and shuffles) its own batches
            return dataset.minibatches(self, training=training)
        prefix = "iterator_train" if training else "iterator_valid"
        kwargs = self.get_params_for(prefix)
        iterator = self.iterator_train if training else self.iterator_valid
        batch_size = kwargs.pop("batch_size", self.batch_size)
        if batch_size == -1:
            batch_size = len(dataset)
        if training and min(int(batch_size), len(dataset)) < 2:
            raise ValueError(
                f"Training batches of {min(int(batch_size), len(dataset))} row(s): the trunk's "
                "BatchNorm needs at least 2 rows per training batch. Pass batch_size >= 2 "
                "(and at least 2 training rows)."
            )
        shuffle = kwargs.pop("shuffle", training)
        seed = None
        if shuffle and self.history_ is not None:
            # a different order every epoch and every partial_fit call, all fixed by the seed
            seed = [getattr(self, "_seed_", 0), len(self.history_)]
        device = torch.device(self.device)
        if device.type in _GATHER_ON_DEVICE and isinstance(dataset, SketchDataset) \
                and not kwargs.get("num_workers"):  # fmt: skip
            dataset = dataset.on_device(device)
        sampler = _RowBatches(
            len(dataset),
            max(int(batch_size), 1),
            shuffle=shuffle,
            seed=seed,
            drop_last=kwargs.pop("drop_last", False),
            training=training,
        )
        return iterator(dataset, batch_size=None, sampler=sampler, **kwargs)

    # ------------------------------------------------------------------ fitting
    def _validate_X(self, X, *, reset: bool):
        X = validate_data(
            self, X, reset=reset, accept_sparse="csr", dtype=np.float32, ensure_min_samples=1
        )
        if sp.issparse(X):
            X = sp.csr_matrix(X)
        return X

    @contextmanager
    def _seeded(self):
        """Seed torch (in a forked RNG state, the caller's is restored) and the numpy draws."""
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        devices = []
        device = torch.device(self.device)
        if device.type == "cuda":
            devices = [device.index if device.index is not None else torch.cuda.current_device()]
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            self._seed_ = seed
            yield

    def _prepare_dataset(self, X, y, *, reset: bool) -> SketchDataset:
        if isinstance(X, BatchStream):  # rows arrive batch by batch; the stream holds y
            return X.prepare(self, y=y, reset=reset)
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        X = self._validate_X(X, reset=reset)
        if num_samples(y) != X.shape[0]:
            raise ValueError(
                f"X has {X.shape[0]} rows but y has {num_samples(y)}; pass one target per row."
            )
        if reset:
            if X.shape[0] < 2:
                raise ValueError(
                    f"n_samples={X.shape[0]}: at least 2 rows are needed to fit (BatchNorm)."
                )
            self._fit_target(y)
            self._check_pretrained_width()
        return self.dataset(X, self._encode_target(y))

    def fit(self, X, y=None, **fit_params):
        """Initialise the network and train it.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_rows, n_features) or BatchStream
            Input features, typically sketches from a ``ColumnTransformer`` of
            ``EMDESketcher``s. float64 and pandas input are converted to float32; a CSR matrix
            stays sparse and is densified one batch at a time. A
            :class:`~sklearn_basemodel.nn.streaming.BatchStream` (rows read and featurised
            batch by batch, e.g. from the warehouse) trains without holding the rows in
            memory: shuffled within its buffer, validated (``validation_fraction``, early
            stopping) on rows held out by a hash of their key; ``train_split`` does not apply.
        y : targets, or None with a BatchStream
            See the class documentation. A stream carries its own targets.
        **fit_params : dict
            Passed to skorch (forwarded to the module's ``forward``).

        Returns
        -------
        self

        Raises
        ------
        FloatingPointError
            When training diverges (a non-finite loss or weight); the network is left at its
            last finite state (see the ``callbacks`` parameter).
        """
        self._check_params()
        fresh = not self.warm_start or not self.initialized_
        with self._seeded():
            dataset = self._prepare_dataset(X, y, reset=fresh)
            if fresh:
                self._resolve_early_stopping(dataset)
            if fresh and self._runs_fallback():
                return self._fit_keeping_the_better_start(dataset, **fit_params)
            super().fit(dataset, None, **fit_params)
            if fresh:
                self._record_start(self.pretrained is not None, None)
            return self

    def _record_start(self, kept: bool, losses) -> None:
        self.pretrained_kept_ = bool(kept)
        self.fallback_valid_losses_ = losses

    # Everything skorch's initialize() rebuilds: one complete trained network and its history.
    _TRAINED_STATE = ("module_", "criterion_", "optimizer_", "callbacks_", "history_")

    def _fit_keeping_the_better_start(self, dataset, **fit_params):
        """``pretrained_fallback``: fine-tune, train from scratch, keep the better on validation.

        Both runs start from the same torch RNG state and train and validate on the very same
        rows (the split is made once); a tie keeps the pretrained start.
        """
        split = self.get_split_datasets(dataset)
        if split[1] is None:
            raise ValueError(
                "pretrained_fallback compares the two starts on validation rows, but the "
                "train_split returned none; pass validation_fraction, a train_split that "
                "holds rows out, or pretrained_fallback=False."
            )
        losses = {}
        for start in ("pretrained", "scratch"):
            torch.manual_seed(self._seed_)
            with self._run_state(split=split, from_scratch=start == "scratch"):
                # skorch's fit, minus its warm_start shortcut: each start is a new network
                self.initialize()
                super().partial_fit(dataset, None, **fit_params)
            losses[start] = self._validation_loss(split[1])
            if start == "pretrained":
                finetuned = {name: getattr(self, name) for name in self._TRAINED_STATE}
                # skorch clears the same History object when the next run starts: keep a copy
                finetuned["history_"] = copy.deepcopy(self.history_)
        self._record_start(losses["pretrained"] <= losses["scratch"], losses)
        if self.pretrained_kept_:
            for name, value in finetuned.items():
                setattr(self, name, value)
        return self

    @contextmanager
    def _run_state(self, *, split, from_scratch: bool):
        """Within: ``get_split_datasets`` returns ``split`` and, with ``from_scratch``, the
        network is built without the pretrained trunk."""
        self._fixed_split, self._training_from_scratch = split, from_scratch
        try:
            yield
        finally:
            del self._fixed_split, self._training_from_scratch

    def _validation_loss(self, dataset) -> float:
        """Mean loss of the current network over ``dataset`` (rows weighted equally)."""
        total, rows = 0.0, 0
        for batch in self.get_iterator(dataset, training=False):
            n = len(batch[0])
            total += float(self.validation_step(batch)["loss"]) * n
            rows += n
        return total / rows if math.isfinite(total) else math.inf

    def held_out_loss(self, X, y=None):
        """Loss of the network as it is on the rows that training on ``X, y`` would hold out.

        The rows are the ones ``fit`` / ``partial_fit`` with the same ``random_state`` would
        validate on (``validation_fraction``, ``train_split`` or a stream's hash split), so the
        figure compares with the ``valid_loss`` of a copy trained further on ``X, y``: e.g.
        whether fine-tuning a pretrained network on new rows helps at all.

        Parameters
        ----------
        X, y
            As in :meth:`fit`.

        Returns
        -------
        float or None
            The mean loss per held-out row; None when training on ``X, y`` would hold out no
            rows (early stopping off and no ``validation_fraction``).

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_basemodel import SketchClassifier
        >>> X = np.random.default_rng(0).random((200, 4)).astype(np.float32)
        >>> y = X[:, 0] > 0.5
        >>> clf = SketchClassifier(hidden_units=8, n_blocks=1, max_epochs=3,
        ...                        validation_fraction=0.2, random_state=0).fit(X, y)
        >>> # the network after its last epoch, scored on the rows that epoch validated on
        >>> bool(np.isclose(clf.held_out_loss(X, y), clf.history[-1, "valid_loss"]))
        True
        """
        self.check_is_fitted()
        with self._seeded():
            dataset = self._prepare_dataset(X, y, reset=False)
            _, valid = self.get_split_datasets(dataset)
        return None if valid is None else self._validation_loss(valid)

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Train for ``max_epochs_`` more epochs without re-initialising the network.

        Parameters
        ----------
        X, y
            As in :meth:`fit`.
        classes : None
            Unused; for scikit-learn compatibility.
        **fit_params : dict
            Passed to skorch.

        Returns
        -------
        self
        """
        if is_dataset(X):  # already prepared (the path fit() takes)
            return super().partial_fit(X, y, **fit_params)
        self._check_params()
        fresh = not self.initialized_
        with self._seeded():
            dataset = self._prepare_dataset(X, y, reset=fresh)
            if fresh:
                self._resolve_early_stopping(dataset)
            super().partial_fit(dataset, None, **fit_params)
        if fresh:
            self._record_start(self.pretrained is not None, None)
        return self

    # ------------------------------------------------------------------ outputs
    def predict_stream(self, stream, method="predict", *, columns=None, **kwargs):
        """Predict over a :class:`~sklearn_basemodel.nn.streaming.BatchStream`, batch by batch.

        Parameters
        ----------
        stream : BatchStream
            The rows to score (its ``target`` may be None).
        method : str, default="predict"
            The prediction method applied to each batch: ``"predict"``, ``"predict_proba"``,
            ``"decision_function"``, ``"predict_scores"``, ``"embed"``...
        columns : dict of str -> str, default=None
            Per-row arguments of ``method`` taken from columns of the stream's DataFrame
            batches, e.g. ``{"history": "history_items"}`` for a recommender.
        **kwargs
            Passed to ``method`` (e.g. ``k=20``).

        Yields
        ------
        keys : ndarray
            The batch's row keys (the stream's ``key`` column, else row positions).
        predictions : ndarray
            ``method`` of the batch; concatenated they equal ``method`` of all rows.
        """
        self.check_is_fitted()
        yield from stream.predictions(self, method, columns=columns, **kwargs)

    def _iter_network_output(self, X):
        """Raw module output (logits, first head) for X, one float32 batch at a time."""
        self.check_is_fitted()
        dataset = self.dataset(self._validate_X(X, reset=False))
        for output in self.forward_iter(dataset, training=False, device="cpu"):
            yield (output[0] if isinstance(output, tuple) else output).numpy()

    def _network_output(self, X) -> np.ndarray:
        """Raw module output (logits, first head) for X, float32."""
        return np.concatenate(list(self._iter_network_output(X)))

    def embed(self, X) -> np.ndarray:
        """Trunk output for each row: the network's learned representation.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_rows, n_features)

        Returns
        -------
        ndarray of shape (n_rows, hidden_units), float32
        """
        self.check_is_fitted()
        dataset = self.dataset(self._validate_X(X, reset=False))
        self.module_.eval()
        chunks = []
        with torch.no_grad():
            for Xb, _ in self.get_iterator(dataset, training=False):
                chunks.append(self.module_.embed(to_tensor(Xb, device=self.device)).cpu())
        return torch.cat(chunks).numpy()

    # ------------------------------------------------------------------ explanations
    def _explain_targets(self, X, target) -> np.ndarray:
        """Per-row index of the output whose value is explained (subclasses decide)."""
        raise NotImplementedError

    def _explained_value(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The scalar per row that attributions explain: the targeted logit by default."""
        return logits.gather(1, targets[:, None])[:, 0]

    def explain(self, X, *, target=None, method="integrated_gradients", n_steps=32, blocks=None):
        """Attribute each row's prediction to the input features and blocks of features.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_rows, n_features)
            The model's input (e.g. sketches); keep it to the rows you want explained.
        target : optional
            What to explain; see the estimator's documentation (default: the prediction).
        method : {"integrated_gradients", "gradient_x_input"}, default="integrated_gradients"
            Integrated gradients from a zero baseline (``n_steps`` midpoint steps) or the
            plain gradient times the input.
        n_steps : int, default=32
            Steps of the integrated-gradients path integral.
        blocks : dict of str -> slice or array of int, default=None
            Named groups of input columns to aggregate over (e.g. one per sketch); one block
            ``"X"`` by default. :func:`sklearn_basemodel.nn.explain` fills this in from a fitted
            pipeline and also maps sketch attributions back to entities.

        Returns
        -------
        Explanation
            ``attributions`` (n_rows, n_features) and ``blocks`` (tidy DataFrame
            ``row, block, attribution``); ``entities`` is empty here.
        """
        from .explain import Explanation, attribute

        self.check_is_fitted()
        X = self._validate_X(X, reset=False)
        targets = self._explain_targets(X, target)
        attributions = attribute(
            self, X, targets, method=method, n_steps=n_steps
        )
        if blocks is None:
            blocks = {"X": slice(0, X.shape[1])}
        return Explanation.from_attributions(attributions, blocks)

    # ------------------------------------------------------------------ persistence
    def __setstate__(self, state):
        # skorch maps CUDA tensors to the CPU when CUDA is missing and then sets
        # self.device = 'cpu' (with a DeviceWarning); make sure the module really sits there.
        super().__setstate__(state)
        if isinstance(self.device, torch.device):
            self.device = str(self.device)
        module = self.__dict__.get("module_")
        if isinstance(module, torch.nn.Module):
            self.module_ = module.to(self.device)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.non_deterministic = self.random_state is None
        return tags
