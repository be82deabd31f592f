"""EMDESketcher: density-aware sketches of sets of entities, as a scikit-learn transformer.

An entity (a product, a page, a category) is coded by ``n_sketches`` independent partitionings of
its vector space, each into ``sketch_dim`` buckets; the sketch of a set of entities (a customer's
history, a basket) is the weighted count of its members in every bucket.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from numbers import Real

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._compat import (
    HasMethods,
    IntegerInterval,
    Interval,
    StrOptions,
    _fit_context,
    align_api_if_sparse,
    dense_output_requested,
)
from ..decay import parse_half_life, parse_reference_time, time_values
from ..embed._base import input_column_name
from ..exceptions import UnknownEntityWarning
from ..rows import FlatRows, flatten_parallel, flatten_rows, lookup, split_timed_rows
from .codebook import SketchCodebook
from .kernel import sketch_matrix
from .partition import check_vectors, given_vectors, partition

__all__ = ["EMDESketcher"]


@dataclass
class _Events:
    """Parsed input: keys per row, per-event weights (mapping or given weights), the log2 of
    the time decay of every event (None without ``half_life``), and the part of X an embedder
    fits on."""

    rows: FlatRows
    given: np.ndarray | None
    keys_input: object
    log2_decay: np.ndarray | None = None

    def weights(self, relative):
        """Per-event weights (None means all 1): given weights times decay.

        ``relative=True`` measures each row's decay from its newest event, which leaves
        normalised sketches unchanged (a per-row factor cancels in every block) but keeps weights
        finite however old the row is; raw sketches need the absolute decay.
        """
        if self.log2_decay is None:
            return self.given
        log2_decay = self.log2_decay
        if relative and len(log2_decay):
            indptr = self.rows.indptr
            lengths = np.diff(indptr)
            full = lengths > 0
            newest = np.maximum.reduceat(log2_decay, indptr[:-1][full])
            log2_decay = log2_decay - np.repeat(newest, lengths[full])
        with np.errstate(over="ignore"):
            weights = np.exp2(log2_decay)
        if not np.isfinite(weights).all():
            raise ValueError(
                "Some decay weights overflow: events lie hundreds of half-lives after "
                "reference_time. Set reference_time to (about) the latest event."
            )
        return weights if self.given is None else weights * self.given


class EMDESketcher(TransformerMixin, BaseEstimator):
    """Density-aware sketches of sets of entities (EMDE), one fixed-size vector per row.

    Fit learns entity vectors (with the ``embedder``, or takes them as given) and then
    ``n_sketches`` independent partitionings of the vector space, each into ``sketch_dim``
    buckets by ``log2(sketch_dim)`` hyperplanes through a quantile of the data, so that dense
    regions get finer buckets. Transform turns every row — a customer's products, a basket, a
    session — into the weighted count of its entities in every bucket: a vector of length
    ``n_sketches * sketch_dim`` whose similarity reflects the similarity of the sets, a far
    richer summary than the mean of the entity vectors.

    Parameters
    ----------
    embedder : estimator, default=None
        Gives the entity vectors through ``entity_vectors(column=None) -> (keys, vectors)``:
        ``CleoraEmbedder`` (None means ``CleoraEmbedder()``), ``RandomVectorEmbedder`` (ID
        hashing), ``TextEmbedder`` (item descriptions), or any estimator with that method. It is
        cloned and fitted on the rows in ``fit``; when its ``random_state`` is None it is seeded
        from this sketcher's ``random_state``. Wrap a prefit embedder in
        :class:`sklearn.frozen.FrozenEstimator` to use it as it is (required for
        ``TextEmbedder``, which fits on descriptions, not rows).
    n_sketches : int, default=10
        Number of independent partitionings N (EMDE's "depth"; typically 10-40).
    sketch_dim : int, default=128
        Buckets per partitioning W (EMDE's "width"; a power of two, typically 64-256).
    normalize : {"l2", "l1"} or None, default="l2"
        Normalisation of each partitioning's block of ``sketch_dim`` values, per row:
        ``"l2"`` for model inputs, ``"l1"`` for targets (every block becomes a distribution
        over its buckets), None for raw weighted counts (additive; see :meth:`update`).
    output : {"sparse", "dense"}, default="sparse"
        Scipy CSR matrix (canonical: sorted, no duplicates) or ndarray. Dense output is used
        whatever this says when ``set_output(transform="pandas")`` (or "polars") is set.
    bias_quantile : float in (0, 1) or "random", default=0.5
        The quantile of the entities' projections through which each hyperplane passes:
        0.5 (the median) splits the entities evenly at every hyperplane; "random" draws one
        quantile per hyperplane uniformly in (0, 1), as the first EMDE version did.
    entity_vectors : mapping, DataFrame or (keys, vectors) pair, default=None
        Entity vectors given directly instead of an embedder: key -> vector, a DataFrame indexed
        by key with one column per dimension, or a pair as returned by ``entity_vectors()``.
    embedder_column : str, default=None
        The column whose entities to use when the (frozen) embedder was fitted on several
        columns kept apart (e.g. ``"products"`` of a customer x products Cleora).
    half_life : float, str or timedelta, default=None
        Time decay of event weights, ``weight = 0.5 ** (age / half_life)``. A number when the
        timestamps (or ages) are numbers (same unit), a duration (``"14D"``,
        ``datetime.timedelta``, ``pandas.Timedelta``) when they are datetimes. When set, every
        row is a pair ``(keys, timestamps)`` of parallel lists, optionally a triple ``(keys,
        timestamps, weights)``, or X is a DataFrame with a keys column, a timestamps column and
        optionally a weights column. Decay ``alpha ** age`` is ``half_life = log(0.5) /
        log(alpha)``.
    reference_time : float, str or datetime, default=None
        The time at which ages are measured (``age = reference_time - timestamp``). None: the
        latest timestamp seen in fit (``reference_time_``). Events after it get weights above
        one. With ``normalize`` set, the reference time cancels out within each row.
    time_input : {"timestamp", "age"}, default="timestamp"
        Whether the second element of a row holds timestamps or ages (numbers or durations
        computed elsewhere, e.g. in the warehouse; ages must not be negative).
    handle_unknown : {"warn", "ignore", "error"}, default="warn"
        Keys without an entity vector are skipped (a row with no known key gives a zero
        sketch) and counted in ``n_unknown_keys_``; "warn" also issues an
        :class:`UnknownEntityWarning`, "error" raises a ValueError instead.
    name : str, default=None
        Prefix of the output feature names (``products`` -> ``products_s3_b17``). None: the
        input column name when X is a named Series or a DataFrame, else ``"emdesketcher"``.
    random_state : int, RandomState instance or None, default=None
        Seeds the hyperplanes and, when its own ``random_state`` is None, the embedder. The
        same int gives identical sketches.

    Attributes
    ----------
    embedder_ : estimator or None
        The fitted (or frozen) embedder; None when ``entity_vectors`` was given.
    keys_ : ndarray of shape (n_entities,)
        The entity keys: the entities that have vectors.
    vocabulary_ : pandas.Index
        ``keys_`` as an index: position i is entity i of ``codes_``.
    codes_ : ndarray of shape (n_entities, n_sketches), int32
        The bucket of every entity in every partitioning; bit k of a bucket is the side of
        hyperplane k.
    entity_counts_ : ndarray of shape (n_entities,), float64
        Occurrences of every entity in the fit rows (0 for entities only known from the
        vectors): the popularity used by ``score_entities``.
    mean_, scale_ : ndarray of shape (n_features_vectors,)
        Standardisation of the entity vectors.
    hyperplanes_ : ndarray of shape (n_sketches, log2(sketch_dim), n_features_vectors)
        The random directions, in standardised coordinates.
    biases_ : ndarray of shape (n_sketches, log2(sketch_dim))
        The offset of every hyperplane (a quantile of the projections).
    reference_time_ : float or pandas.Timestamp or None
        Reference of the ages with ``time_input="timestamp"`` (UTC for datetimes).
    n_features_out_ : int
        ``n_sketches * sketch_dim``.
    n_unknown_keys_ : int
        Keys without a vector in the rows of the latest fit/transform/update call.
    column_ : str or None
        The input column name seen in fit, used for feature names.

    See Also
    --------
    CleoraEmbedder : Entity vectors from co-occurrence (the usual embedder).
    RandomVectorEmbedder : Hashed random entity vectors (ID hashing).
    TextEmbedder : Entity vectors from item descriptions.

    Notes
    -----
    Column ``j * sketch_dim + b`` of a sketch is bucket ``b`` of partitioning ``j``. A single
    entity's raw sketch has exactly one 1 per partitioning; raw sketches of disjoint parts of a
    history add up to the sketch of the whole history, which :meth:`update` uses to fold new
    events into stored profiles. Sketches are built without a Python loop over rows: events are
    mapped to vocabulary positions at once and every chunk of rows is summed with one
    ``bincount``, which also sorts and merges the columns of the CSR output.

    Feed the sketches to a model with L2-normalised blocks; train a model that predicts
    sketches against L1-normalised targets with a per-block softmax; turn predicted sketches
    back into ranked entities with :meth:`score_entities`.

    References
    ----------
    .. [1] Dabrowski, J., Rychalska, B., Daniluk, M., Basaj, D., Goluchowski, K., Babel, P.,
       Michalowski, A., Jakubowski, A. (2020). "An efficient manifold density estimator for
       all recommendation systems". arXiv:2006.01894.

    Examples
    --------
    >>> from sklearn_basemodel import EMDESketcher, RandomVectorEmbedder
    >>> histories = [["milk", "bread"], ["milk", "butter", "milk"], ["beer"], []]
    >>> sketcher = EMDESketcher(RandomVectorEmbedder(16), n_sketches=4, sketch_dim=8,
    ...                         normalize=None, name="products", random_state=0)
    >>> S = sketcher.fit_transform(histories)
    >>> S.shape
    (4, 32)
    >>> S[2].toarray().reshape(4, 8).sum(axis=1)  # one entity: a single 1 per partitioning
    array([1., 1., 1., 1.], dtype=float32)
    >>> S[3].nnz  # an empty row gives a zero sketch
    0
    >>> sketcher.get_feature_names_out()[:2].tolist()
    ['products_s0_b0', 'products_s0_b1']

    Time decay with a half-life of 7 days; ages are measured from the latest event seen in
    fit, so the first customer's week-old purchase weighs 0.5 in every partitioning:

    >>> import pandas as pd
    >>> events = [(["milk"], pd.to_datetime(["2024-01-01"])),
    ...           (["milk", "bread"], pd.to_datetime(["2024-01-08", "2024-01-08"]))]
    >>> decayed = EMDESketcher(RandomVectorEmbedder(16), n_sketches=4, sketch_dim=8,
    ...                        normalize=None, half_life="7D", random_state=0)
    >>> decayed.fit_transform(events).toarray().reshape(2, 4, 8).sum(axis=2)
    array([[0.5, 0.5, 0.5, 0.5],
           [2. , 2. , 2. , 2. ]], dtype=float32)
    >>> decayed.reference_time_
    Timestamp('2024-01-08 00:00:00+0000', tz='UTC')
    """

    _parameter_constraints: dict = {
        "embedder": [HasMethods(["fit", "entity_vectors"]), None],
        "n_sketches": [IntegerInterval(1, None, closed="left")],
        "sketch_dim": [IntegerInterval(2, None, closed="left")],
        "normalize": [StrOptions({"l2", "l1"}), None],
        "output": [StrOptions({"sparse", "dense"})],
        "bias_quantile": [Interval(Real, 0, 1, closed="neither"), StrOptions({"random"})],
        "entity_vectors": [Mapping, pd.DataFrame, tuple, None],
        "embedder_column": "no_validation",
        "half_life": [
            Interval(Real, 0, None, closed="neither"),
            str,
            timedelta,
            np.timedelta64,
            None,
        ],
        "reference_time": [Real, str, datetime, np.datetime64, None],
        "time_input": [StrOptions({"timestamp", "age"})],
        "handle_unknown": [StrOptions({"warn", "ignore", "error"})],
        "name": [str, None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        embedder=None,
        *,
        n_sketches=10,
        sketch_dim=128,
        normalize="l2",
        output="sparse",
        bias_quantile=0.5,
        entity_vectors=None,
        embedder_column=None,
        half_life=None,
        reference_time=None,
        time_input="timestamp",
        handle_unknown="warn",
        name=None,
        random_state=None,
    ):
        self.embedder = embedder
        self.n_sketches = n_sketches
        self.sketch_dim = sketch_dim
        self.normalize = normalize
        self.output = output
        self.bias_quantile = bias_quantile
        self.entity_vectors = entity_vectors
        self.embedder_column = embedder_column
        self.half_life = half_life
        self.reference_time = reference_time
        self.time_input = time_input
        self.handle_unknown = handle_unknown
        self.name = name
        self.random_state = random_state

    # ----------------------------------------------------------------------- parsing rows
    def _parse(self, X, *, fitting):
        """X -> _Events; in fit also sets ``reference_time_`` (and ``column_``)."""
        if self.half_life is None:
            rows = flatten_rows(X, name="X")
            events = _Events(rows, rows.weights, X)
        else:
            keys_input, time_rows, weight_rows = split_timed_rows(X)
            rows = flatten_rows(keys_input, name="X (keys)", allow_weights=False)
            log2_decay = self._log2_decay(rows, time_rows, fitting=fitting)
            given = None
            if weight_rows is not None:
                given = flatten_parallel(weight_rows, rows.indptr, "weights")
                try:
                    given = np.asarray(given, dtype=np.float64)
                except (TypeError, ValueError):
                    raise TypeError("The weights of the rows must be numbers.") from None
                if not np.isfinite(given).all():
                    raise ValueError("The weights of the rows contain NaN or infinite values.")
            events = _Events(rows, given, keys_input, log2_decay)
        if fitting:
            self.column_ = input_column_name(events.keys_input)
        return events

    def event_weights(self, X):
        """The parsed rows and the weight of every event as the sketches count it.

        Parameters
        ----------
        X : rows, as in :meth:`transform`

        Returns
        -------
        rows : FlatRows
            Keys of every row (``rows.keys``, ``rows.indptr``).
        weights : ndarray of shape (n_events,), float64
            Mapping weights times the time decay (1 for plain keys); the decay is measured
            from each row's newest event, as normalised sketches are.
        """
        check_is_fitted(self)
        events = self._parse(X, fitting=False)
        weights = events.weights(relative=True)
        weights = weights if weights is not None else events.rows.weights_or_ones()
        return events.rows, np.asarray(weights, dtype=np.float64)

    def _log2_decay(self, rows, time_rows, *, fitting):
        """``-age / half_life`` of every event (the log2 of its decay weight)."""
        unit, half_life = parse_half_life(self.half_life)
        what = "ages" if self.time_input == "age" else "timestamps"
        kind, values = time_values(flatten_parallel(time_rows, rows.indptr, what), what)
        if len(values) and self.time_input == "age":
            if (kind == "duration") != (unit == "duration") or kind == "datetime":
                raise ValueError(
                    f"The ages are {kind}s but half_life={self.half_life!r} is a "
                    f"{unit}; give both as numbers in the same unit or both as durations."
                )
            if (values < 0).any():
                raise ValueError("The ages contain negative values; ages must be >= 0.")
            ages = values.astype(np.float64)
        elif len(values):
            if kind == "duration":
                raise ValueError(
                    "The timestamps are durations; with durations (ages) set time_input='age'."
                )
            if (kind == "datetime") != (unit == "duration"):
                raise ValueError(
                    f"The timestamps are {kind}s but half_life={self.half_life!r} is a {unit}; "
                    "use a number half-life (same unit) with numeric timestamps and a duration "
                    "such as '14D' with datetimes."
                )
            if fitting:
                self._fit_reference_time(kind, values)
            ref_kind, ref = self._fitted_reference()
            if ref_kind != kind:
                raise ValueError(
                    f"reference_time is a {ref_kind} but the timestamps are {kind}s; give them "
                    "in the same form."
                )
            ages = (ref - values).astype(np.float64)  # int64 nanoseconds stay exact until here
        else:
            if fitting and self.time_input == "timestamp":
                self._fit_reference_time(None, values)
            ages = values.astype(np.float64)
        return -ages / half_life

    def _fit_reference_time(self, kind, values):
        if self.reference_time is not None:
            ref_kind, ref = parse_reference_time(self.reference_time)
        elif len(values):
            ref_kind, ref = kind, values.max().item()
        else:
            raise ValueError(
                "reference_time=None takes the latest timestamp of the fit rows, but they hold "
                "no events; set reference_time."
            )
        self.reference_time_ = (
            pd.Timestamp(ref, unit="ns", tz="UTC") if ref_kind == "datetime" else float(ref)
        )

    def _fitted_reference(self):
        ref = getattr(self, "reference_time_", None)
        if ref is None:
            raise ValueError(
                "This sketcher was fitted without timestamps (half_life=None or "
                "time_input='age'); refit it with the time settings it is used with."
            )
        if isinstance(ref, pd.Timestamp):
            return "datetime", int(ref.as_unit("ns").value)
        return "number", ref

    def _locate(self, events, relative=False):
        """Vocabulary positions of the known events, their row pointers and weights."""
        rows = events.rows
        position = lookup(rows.keys, self.vocabulary_)
        known = position >= 0
        n_unknown = int(len(position) - np.count_nonzero(known))
        self.n_unknown_keys_ = n_unknown
        if not n_unknown:
            return position, rows.indptr, events.weights(relative)
        share = n_unknown / len(position)
        examples = list(dict.fromkeys(rows.keys[~known][:50].tolist()))[:5]
        message = (
            f"{n_unknown} of {len(position)} keys ({share:.1%}) have no entity vector, e.g. "
            f"{examples!r}"
        )
        if self.handle_unknown == "error":
            raise ValueError(
                f"{message}. Set handle_unknown='ignore' or 'warn' to skip such keys."
            )
        if self.handle_unknown == "warn":
            warnings.warn(
                f"{message}; they were ignored (a row of unknown keys only gets a zero sketch).",
                UnknownEntityWarning,
                stacklevel=3,
            )
        kept = np.zeros(len(position) + 1, dtype=np.int64)
        np.cumsum(known, out=kept[1:])
        weights = events.weights(relative)
        weights = None if weights is None else weights[known]
        return position[known], kept[rows.indptr], weights

    def _sketch(self, events, norm, dense):
        return self._sketch_located(*self._locate(events, relative=norm is not None), norm, dense)

    def _sketch_located(self, entity, indptr, weights, norm, dense):
        out = sketch_matrix(entity, indptr, weights, self.codebook_, norm, dense)
        return out if dense else align_api_if_sparse(out)

    @property
    def codebook_(self):
        """The sketch layout (:class:`SketchCodebook`) of the fitted partitionings."""
        check_is_fitted(self, "codes_")
        return SketchCodebook(self.codes_, self.sketch_dim)

    def _dense_output(self):
        """True for output="dense", or when set_output asked for a (dense) DataFrame."""
        return self.output == "dense" or dense_output_requested(self)

    # ----------------------------------------------------------------------- fitting
    def _fit_embedder(self, events, seed):
        embedder = self.embedder
        if embedder is None:
            from ..embed import CleoraEmbedder

            embedder = CleoraEmbedder()
        if isinstance(embedder, FrozenEstimator):
            try:
                check_is_fitted(embedder)
            except NotFittedError:
                raise NotFittedError(
                    "The embedder wrapped in FrozenEstimator is not fitted; fit it before "
                    "freezing it, or pass it unwrapped to have it fitted on the rows."
                ) from None
            return embedder
        if events is None:
            raise ValueError(
                "fit(X=None) needs prefit entity vectors: pass entity_vectors or a "
                "FrozenEstimator-wrapped fitted embedder, or give rows to fit the embedder on."
            )
        embedder = clone(embedder)
        if embedder.get_params(deep=False).get("random_state", 0) is None:
            embedder.set_params(random_state=seed)
        return embedder.fit(events.keys_input)

    def _fit(self, X):
        """Fit and return the parsed, located events of X (or None) for fit_transform."""
        width = int(self.sketch_dim)
        if width & (width - 1):
            raise ValueError(
                f"sketch_dim must be a power of two (each partitioning uses log2(sketch_dim) "
                f"hyperplanes), got {width}; e.g. {1 << width.bit_length()}."
            )
        if self.n_sketches * width >= np.iinfo(np.int32).max:
            raise ValueError("n_sketches * sketch_dim must stay below 2**31.")
        if self.embedder is not None and self.entity_vectors is not None:
            raise ValueError("Pass either embedder or entity_vectors, not both.")
        if self.time_input == "age" and self.reference_time is not None:
            raise ValueError(
                "reference_time is only used with time_input='timestamp' (ages are already "
                "relative); leave it None."
            )
        rng = check_random_state(self.random_state)
        # always drawn, so the hyperplanes do not depend on where the vectors come from
        embedder_seed = int(rng.randint(np.iinfo(np.int32).max))
        if isinstance(X, Iterator):
            X = list(X)  # parsed here and fitted on by the embedder
        self.reference_time_ = None
        events = None if X is None else self._parse(X, fitting=True)
        if X is None:
            if self.half_life is not None and self.time_input == "timestamp":
                self._fit_reference_time(None, np.empty(0))
            self.column_ = None
        if self.entity_vectors is not None:
            self.embedder_ = None
            keys, vectors = given_vectors(self.entity_vectors)
        else:
            self.embedder_ = self._fit_embedder(events, embedder_seed)
            keys, vectors = self.embedder_.entity_vectors(column=self.embedder_column)
        self.keys_, self.vocabulary_, vectors = check_vectors(keys, vectors)
        part = partition(vectors, self.n_sketches, width, self.bias_quantile, rng)
        self.mean_, self.scale_, self.hyperplanes_, self.biases_, self.codes_ = part
        self.n_features_out_ = self.n_sketches * width
        self._n_features_out = self.n_features_out_
        self.entity_counts_ = np.zeros(len(self.keys_), dtype=np.float64)
        self.n_unknown_keys_ = 0
        if events is None:
            return None
        located = self._locate(events, relative=self.normalize is not None)
        self.entity_counts_ += np.bincount(located[0], minlength=len(self.keys_))
        return located

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Learn the entity vectors (unless given or frozen) and the partitionings.

        Parameters
        ----------
        X : sequence of rows, pandas Series of rows or one-column DataFrame, or None
            A row is an iterable of entity keys or a mapping key -> weight; with ``half_life``
            set, a pair (keys, timestamps) (see ``half_life``). None is allowed when the vectors
            need no fitting (``entity_vectors`` or a frozen embedder); ``entity_counts_`` are
            then zero.
        y : None
            Ignored.

        Returns
        -------
        self : EMDESketcher
        """
        self._fit(X)
        return self

    @_fit_context(prefer_skip_nested_validation=False)
    def fit_transform(self, X, y=None):
        """Fit on X and return its sketches (parses X once).

        Parameters
        ----------
        X : rows, as in :meth:`fit`
        y : None
            Ignored.

        Returns
        -------
        sketches : CSR matrix or ndarray of shape (n_rows, n_sketches * sketch_dim), float32
        """
        if X is None:
            raise ValueError("fit_transform needs rows; use fit(None) to fit without rows.")
        return self._sketch_located(*self._fit(X), self.normalize, self._dense_output())

    # ----------------------------------------------------------------------- sketching
    def transform(self, X):
        """Sketch every row: the weighted count of its entities in every bucket.

        Parameters
        ----------
        X : sequence of rows, pandas Series of rows or one-column DataFrame
            As in :meth:`fit`. Keys without a vector are ignored and counted
            (``n_unknown_keys_``, see ``handle_unknown``); an empty row gives a zero sketch.

        Returns
        -------
        sketches : CSR matrix or ndarray of shape (n_rows, n_sketches * sketch_dim), float32
            Normalised per ``normalize``; column ``j * sketch_dim + b`` is bucket ``b`` of
            partitioning ``j``.
        """
        check_is_fitted(self)
        return self._sketch(self._parse(X, fitting=False), self.normalize, self._dense_output())

    def raw_sketches(self, X):
        """Un-normalised sketches (weighted counts) of the rows, whatever ``normalize`` says.

        These are additive: store them, fold new events in with :meth:`update` and normalise
        with :meth:`normalize_sketches` when feeding a model.

        Parameters
        ----------
        X : rows, as in :meth:`transform`

        Returns
        -------
        sketches : CSR matrix or ndarray of shape (n_rows, n_sketches * sketch_dim), float32
        """
        check_is_fitted(self)
        return self._sketch(self._parse(X, fitting=False), None, self.output == "dense")

    def update(self, old_raw_sketches, new_rows, decay=1.0):
        """Fold new events into stored raw sketches: ``decay * old + raw_sketches(new_rows)``.

        Equal to the raw sketches of the full histories (old events followed by new ones),
        without recomputing them. With time decay, if the old sketches were computed with ages
        measured at time ``t0`` and ``new_rows`` at ``t1``, use ``decay = 0.5 ** ((t1 - t0) /
        half_life)``.

        Parameters
        ----------
        old_raw_sketches : CSR matrix, ndarray, DataFrame or None
            Raw (``normalize=None``) sketches of shape (n_rows, n_features_out_); None means
            zeros.
        new_rows : rows, as in :meth:`transform`
            The new events of the same entities (customers), one row each, in the same order.
        decay : float or array-like of shape (n_rows,), default=1.0
            Non-negative factor applied to the old sketches (per row when an array).

        Returns
        -------
        sketches : same kind as ``old_raw_sketches`` (``output`` when None), float32
        """
        check_is_fitted(self)
        events = self._parse(new_rows, fitting=False)
        n_rows = events.rows.n_rows
        if old_raw_sketches is None:
            return self._sketch(events, None, self.output == "dense")
        if not (sp.issparse(old_raw_sketches) or isinstance(old_raw_sketches, pd.DataFrame)):
            old_raw_sketches = np.asarray(old_raw_sketches)
        if old_raw_sketches.shape != (n_rows, self.n_features_out_):
            raise ValueError(
                f"old_raw_sketches has shape {old_raw_sketches.shape} but new_rows has {n_rows} "
                f"rows and the sketches have {self.n_features_out_} columns; pass one old sketch "
                "per new row."
            )
        old_values = old_raw_sketches.data if sp.issparse(old_raw_sketches) else old_raw_sketches
        if not np.isfinite(np.asarray(old_values, dtype=np.float64)).all():
            raise ValueError("old_raw_sketches contain NaN or infinite values.")
        decay = np.asarray(decay, dtype=np.float64)
        if decay.ndim > 1 or (decay.ndim == 1 and len(decay) != n_rows):
            raise ValueError(
                f"decay must be a number or an array of {n_rows} numbers (one per row)."
            )
        if not (np.isfinite(decay).all() and (decay >= 0).all()):
            raise ValueError("decay must be finite and non-negative.")
        if sp.issparse(old_raw_sketches):
            old = old_raw_sketches.tocsr().astype(np.float32)  # a copy we may scale in place
            old.data *= (np.repeat(decay, np.diff(old.indptr)) if decay.ndim else decay).astype(
                np.float32
            )
            return old + type(old)(self._sketch(events, None, dense=False))
        row_decay = decay[:, None] if decay.ndim else decay
        updated = (np.asarray(old_raw_sketches, dtype=np.float32) * row_decay).astype(np.float32)
        updated += self._sketch(events, None, dense=True)
        if isinstance(old_raw_sketches, pd.DataFrame):
            return pd.DataFrame(
                updated, index=old_raw_sketches.index, columns=old_raw_sketches.columns
            )
        return updated

    def normalize_sketches(self, sketches, norm="auto"):
        """Normalise every partitioning's block of raw sketches (as ``transform`` does).

        Parameters
        ----------
        sketches : CSR matrix or ndarray of shape (n_rows, n_features_out_)
            Raw sketches, e.g. from :meth:`update`.
        norm : {"auto", "l2", "l1"} or None, default="auto"
            "auto" uses the ``normalize`` parameter.

        Returns
        -------
        CSR matrix or ndarray of the same shape, float32 (a new object)
        """
        check_is_fitted(self)
        norm = self.normalize if norm == "auto" else norm
        if norm not in ("l2", "l1", None):
            raise ValueError(f"norm must be 'auto', 'l2', 'l1' or None, got {norm!r}.")
        return self.codebook_.normalize(sketches, norm)

    # ----------------------------------------------------------------------- decoding
    def score_entities(self, log_probs, popularity_correction=False, *, smoothing=1.0):
        """Score every entity from predicted output sketches (count-min style read-out).

        ``score(i) = sum_j log_probs[:, j * sketch_dim + codes_[i, j]]``, the log of the
        geometric mean of the probabilities of the entity's buckets. With
        ``popularity_correction``, ``score(i) = sum_j (log p_j[b_j(i)] - log pi_j[b_j(i)]) +
        log pop(i)``, where ``pi_j[b]`` is the popularity mass of bucket ``b`` of partitioning
        ``j``: the entity gets its share of the bucket's predicted probability by popularity
        instead of the whole bucket.

        Parameters
        ----------
        log_probs : array-like of shape (n_rows, n_sketches * sketch_dim)
            Per-block log-softmax of a model's output. Raw logits give the same ranking within
            each row (a per-block log-sum-exp is a per-row constant).
        popularity_correction : bool, default=False
            Apply the popularity correction.
        smoothing : float, default=1.0
            Added to ``entity_counts_`` for the popularity, so entities unseen in fit keep a
            finite score.

        Returns
        -------
        scores : ndarray of shape (n_rows, n_entities), float32
            Column i scores ``vocabulary_[i]``; higher is better.
        """
        check_is_fitted(self)
        if sp.issparse(log_probs):
            raise TypeError("log_probs must be dense (log-probabilities are never zero).")
        log_probs = np.asarray(log_probs, dtype=np.float32)
        if log_probs.ndim != 2 or log_probs.shape[1] != self.n_features_out_:
            raise ValueError(
                f"log_probs must have shape (n_rows, {self.n_features_out_}), got "
                f"{log_probs.shape}."
            )
        if np.isnan(log_probs).any():
            raise ValueError("log_probs contains NaN.")
        if not smoothing > 0:
            raise ValueError(f"smoothing must be positive, got {smoothing!r}.")
        book = self.codebook_
        offset = None
        if popularity_correction:
            offset = book.popularity_offset(self.entity_counts_ + smoothing)
        return book.decode(log_probs, offset)

    # ----------------------------------------------------------------------- metadata
    def get_feature_names_out(self, input_features=None):
        """Output feature names ``<prefix>_s<partitioning>_b<bucket>``.

        Parameters
        ----------
        input_features : array-like of str, default=None
            Input column names; the first is the prefix when ``name`` is None.

        Returns
        -------
        ndarray of str objects, of length n_sketches * sketch_dim
        """
        check_is_fitted(self, "codes_")
        if self.name is not None:
            prefix = self.name
        elif input_features is not None and len(input_features):
            prefix = str(input_features[0])
        elif self.column_ is not None:
            prefix = str(self.column_)
        else:
            prefix = type(self).__name__.lower()
        return self.codebook_.feature_names(prefix)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.input_tags.dict = True
        tags.transformer_tags.preserves_dtype = []
        tags.requires_fit = True
        return tags
