"""Training and scoring from a stream of row batches that never sits in memory whole.

:class:`BatchStream` wraps a source that yields rows in batches (pandas DataFrames from
:class:`~sklearn_basemodel.warehouse.batches.WarehouseBatches`, or ``(X, y)`` tuples) and turns
each batch into float32 features with the transform fitted beforehand (the profile: sketchers,
a ``ColumnTransformer``). The sketch estimators take it in place of ``X``: ``fit(stream)``
trains on it with a hold-out slice chosen by hashing each row's key, shuffling within a
bounded buffer, and ``predict_stream(stream)`` yields predictions batch by batch. Memory is
bounded by the source's batch, the shuffle buffer and the model, never by the number of rows.
"""

from __future__ import annotations

from collections import namedtuple
from numbers import Integral, Real

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from skorch.callbacks import ProgressBar

from .._hashing import _splitmix64, key_hashes

__all__ = ["BatchStream", "StreamPart"]

# Rows whose targets fit the target encoding (classes, standardisation, target sketcher) when
# the stream is given no ``targets``.
TARGET_SAMPLE_ROWS = 100_000

_Part = namedtuple("_Part", "keys X y frame")


def _dense_float32(X) -> np.ndarray:
    """Transformer output (ndarray, CSR, DataFrame) as a dense, C-contiguous, writable float32
    array (torch refuses read-only memory, such as a pandas frame's under copy-on-write)."""
    if sp.issparse(X):
        X = X.toarray()
    return np.require(np.asarray(X, dtype=np.float32), requirements=["C", "W"])


def _held_out(keys: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Rows in the validation slice: a stable hash of (key, seed) below ``fraction``.

    The same key falls on the same side in every pass and every process, so the slice never
    drifts between epochs and needs no memory.
    """
    salt = _splitmix64(np.array([seed], dtype=np.int64).view(np.uint64))[0]
    hashed = _splitmix64(key_hashes(keys) ^ salt)
    uniform = (hashed >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return uniform < fraction


def _target_array(y):
    """Targets of a batch as an array that row masks can index (rows of keys: an object array)."""
    if isinstance(y, (pd.Series, pd.DataFrame)):
        return y.to_numpy()
    if isinstance(y, np.ndarray) or sp.issparse(y):
        return y
    y = list(y)
    if any(isinstance(value, (list, tuple, set, frozenset, dict, np.ndarray)) for value in y):
        rows = np.empty(len(y), dtype=object)
        for i, value in enumerate(y):
            rows[i] = value
        return rows
    return np.asarray(y)


def _take(rows, mask: np.ndarray):
    """The rows of a batch (features or targets) where ``mask`` is True."""
    if isinstance(rows, (pd.Series, pd.DataFrame)):
        return rows.iloc[mask]
    if isinstance(rows, np.ndarray) or sp.issparse(rows):
        return rows[mask]
    return [row for row, keep in zip(rows, mask) if keep]


def _concat(parts):
    """Rows of several encoded blocks (dense arrays or CSR) stacked."""
    if sp.issparse(parts[0]):
        return sp.vstack(parts, format="csr")
    return np.concatenate(parts)


def _gather(parts: list, offsets: np.ndarray, rows: np.ndarray):
    """Rows ``rows`` (positions in the concatenation of ``parts``, a list of (X, y)) as one
    (X, y), in ascending order: a mini-batch's order does not matter, and sorted positions
    are cut into one contiguous run per part."""
    rows = np.sort(rows)
    bounds = np.searchsorted(rows, offsets)
    Xs, ys = [], []
    for i, (X, y) in enumerate(parts):
        if bounds[i] < bounds[i + 1]:
            local = rows[bounds[i] : bounds[i + 1]] - offsets[i]
            Xs.append(X[local])
            ys.append(y[local])
    if len(Xs) == 1:
        return Xs[0], ys[0]
    return _concat(Xs), _concat(ys)


def _tensor(block) -> torch.Tensor:
    if sp.issparse(block):
        block = block.toarray()
    return torch.from_numpy(np.ascontiguousarray(block))


class BatchStream(torch.utils.data.IterableDataset):
    """Rows arriving in batches, featurised on the fly; what the sketch estimators stream.

    Pass it as ``X`` to ``fit`` (``y`` stays None: the stream carries the targets) of
    :class:`~sklearn_basemodel.nn.SketchClassifier`, :class:`~sklearn_basemodel.nn.SketchRegressor`
    or :class:`~sklearn_basemodel.nn.SketchRecommender`, and to their ``predict_stream``.

    Parameters
    ----------
    batches : re-iterable or callable
        The source: an object that yields the batches anew each time it is iterated (a
        :class:`~sklearn_basemodel.warehouse.batches.WarehouseBatches`, a list) or a function
        without arguments that returns a fresh iterator of them. Training reads it once per
        epoch, so a one-shot generator is refused. A batch is a pandas DataFrame (columns
        named by ``features``, ``target``, ``key``) or a tuple ``(X, y)`` / ``(X, y, keys)``
        (``y`` may be None for scoring).
    features : str or list of str, default=None
        With DataFrame batches: the column (a Series goes to ``transform``, e.g. histories for
        an ``EMDESketcher``) or columns (a DataFrame, e.g. for a ``ColumnTransformer``) that
        make the model input. Required for DataFrame batches.
    target : str, default=None
        With DataFrame batches: the target column (labels, values, or rows of keys for a
        ``SketchRecommender``). Needed for training, not for scoring.
    key : str, default=None
        With DataFrame batches: the row identity (e.g. ``customer_id``). It decides the
        validation slice and is returned with every batch of predictions. Without it rows
        are identified by their position in the stream, which must then come in the same
        order in every pass.
    transform : fitted transformer, default=None
        Applied to each batch's features (``transform.transform``), e.g. a fitted
        ``EMDESketcher`` or ``ColumnTransformer``: the feature transforms created in the
        fit phase. Its output (dense, sparse or a DataFrame) becomes a float32 array. None:
        the features are used as they are (numbers).
    targets : array-like, default=None
        What ``fit`` learns the target encoding from instead of the stream: the class labels
        of a classifier (e.g. ``[0, 1]``), a sample of values for a regressor's
        standardisation, rows of keys for a recommender's (unfrozen) target sketcher. None:
        the targets of the stream's first ``TARGET_SAMPLE_ROWS`` (100,000) rows, so a class
        that first appears after them makes ``fit`` fail with "labels not seen in fit".
    shuffle_buffer : int, default=16384
        Training rows shuffled together: featurised rows are gathered until the buffer
        holds this many, shuffled, and cut into mini-batches. Memory grows with it (rows x
        features x 4 bytes), randomness too.

    Attributes
    ----------
    None before use; the estimators keep nothing of the stream but the network.

    See Also
    --------
    sklearn_basemodel.warehouse.batches.WarehouseBatches : A warehouse relation as a source.
    sklearn_basemodel.warehouse.batches.write_predictions : Writes ``predict_stream`` back.

    Notes
    -----
    The validation slice (``validation_fraction`` of the estimator; 0.1 with early stopping)
    is taken by hashing each row's key with the estimator's seed: disjoint from the training
    rows, the same in every epoch, and needing no memory. Shuffling is within the buffer only:
    rows far apart in the source never share a mini-batch, so a source ordered by the target
    (all churners last) should be ordered otherwise (e.g. by a hash of the key) in SQL.

    Iterating the stream itself (the ``IterableDataset`` protocol) yields ``(X, y)`` per source
    batch: featurised float32 ``X`` and the raw targets.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_basemodel.nn import SketchClassifier
    >>> from sklearn_basemodel.nn.streaming import BatchStream
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(512, 8)).astype(np.float32)
    >>> y = (X[:, 0] > 0).astype(int)
    >>> chunks = [(X[i:i + 64], y[i:i + 64]) for i in range(0, 512, 64)]
    >>> stream = BatchStream(chunks, shuffle_buffer=256)
    >>> clf = SketchClassifier(hidden_units=16, n_blocks=1, max_epochs=10, batch_size=32,
    ...                        lr=1e-2, random_state=0).fit(stream)
    >>> keys, labels = next(clf.predict_stream(stream))
    >>> float(np.mean(labels == y[:64])) > 0.85
    True
    """

    def __init__(
        self,
        batches,
        *,
        features=None,
        target=None,
        key=None,
        transform=None,
        targets=None,
        shuffle_buffer=16384,
    ):
        self.batches = batches
        self.features = features
        self.target = target
        self.key = key
        self.transform = transform
        self.targets = targets
        self.shuffle_buffer = shuffle_buffer

    # ------------------------------------------------------------------ reading the source
    def _source(self):
        source = self.batches() if callable(self.batches) else self.batches
        iterator = iter(source)
        if iterator is source and not callable(self.batches):
            raise TypeError(
                "BatchStream reads its batches once per epoch, but got a one-shot iterator "
                f"({type(source).__name__}); pass a re-iterable (a list, WarehouseBatches) or "
                "a function that returns a new iterator, e.g. lambda: read_my_batches()."
            )
        return iterator

    def _split_batch(self, batch, offset: int):
        """(raw features, raw targets or None, keys, the batch) of one source batch."""
        if isinstance(batch, pd.DataFrame):
            if self.features is None:
                raise ValueError(
                    "DataFrame batches need features= (the column or columns of the model input)."
                )
            raw = batch[self.features]
            y = None if self.target is None else batch[self.target].to_numpy()
            keys = None if self.key is None else batch[self.key].to_numpy()
        elif isinstance(batch, tuple) and len(batch) in (2, 3):
            raw, y = batch[0], None if batch[1] is None else _target_array(batch[1])
            keys = batch[2] if len(batch) == 3 else None
        else:
            raise TypeError(
                "A batch must be a pandas DataFrame or a tuple (X, y) or (X, y, keys), got "
                f"{type(batch).__name__}."
            )
        n_rows = raw.shape[0] if hasattr(raw, "shape") else len(raw)
        if keys is None:
            keys = np.arange(offset, offset + n_rows, dtype=np.int64)
        keys = np.asarray(keys)
        if len(keys) != n_rows or (y is not None and len(y) != n_rows):
            raise ValueError(
                f"A batch has {n_rows} feature rows, {len(keys)} keys and "
                f"{'no' if y is None else len(y)} targets; pass one of each per row."
            )
        return raw, y, keys, batch

    def _raw_parts(self):
        """The source's batches as (raw features, raw targets, keys, batch), in order."""
        offset = 0
        for batch in self._source():
            raw, y, keys, batch = self._split_batch(batch, offset)
            offset += len(keys)
            if len(keys):
                yield raw, y, keys, batch

    def featurise(self, raw) -> np.ndarray:
        """Model input of one batch: the fitted transform applied, as float32."""
        if self.transform is not None:
            raw = self.transform.transform(raw)
        return _dense_float32(raw)

    def parts(self):
        """Every row, featurised: ``(keys, X, y, batch)`` per source batch."""
        for raw, y, keys, batch in self._raw_parts():
            yield _Part(keys, self.featurise(raw), y, batch)

    def __iter__(self):
        for part in self.parts():
            yield part.X, part.y

    def target_sample(self) -> object:
        """What the target encoding is fitted on: ``targets``, else the first rows' targets."""
        if self.targets is not None:
            return self.targets
        sample, n_rows = [], 0
        for _, y, _, _ in self._raw_parts():
            if y is None:
                raise ValueError(
                    "The stream yields no targets: name the target column (target=) or yield "
                    "(X, y) tuples to train on it."
                )
            sample.append(y)
            n_rows += len(y)
            if n_rows >= TARGET_SAMPLE_ROWS:
                break
        if not sample:
            raise ValueError("The stream yielded no rows.")
        if isinstance(sample[0], np.ndarray) and sample[0].dtype != object:
            return np.concatenate(sample)[:TARGET_SAMPLE_ROWS]
        return [row for block in sample for row in block][:TARGET_SAMPLE_ROWS]

    # ------------------------------------------------------------------ for the estimators
    def prepare(self, net, *, y=None, reset: bool):
        """Check the stream against ``net`` and, with ``reset``, fit its target encoding.

        Called by the estimators' ``fit``: reads the first batch (the input width, and names
        of DataFrame features) and the target sample; nothing else is kept.
        """
        if y is not None:
            raise ValueError(
                "fit(stream) takes the targets from the stream; pass y=None (the stream's "
                "targets= parameter sets what the target encoding is fitted on)."
            )
        buffer = self.shuffle_buffer
        if not isinstance(buffer, Integral) or isinstance(buffer, bool) or buffer < 1:
            raise ValueError(f"shuffle_buffer must be a positive integer, got {buffer!r}.")
        first = next(self._raw_parts(), None)
        if first is None:
            raise ValueError("The stream yielded no rows.")
        # The network sees plain float32 arrays (no column names): so must its input checks.
        net._validate_X(self.featurise(first[0]), reset=reset)
        if reset:
            net._fit_target(self.target_sample())
            net._check_pretrained_width()
        return self

    def split(self, validation_fraction, seed: int):
        """The training part and the held-out part (None without a fraction) of the stream."""
        if validation_fraction is None:
            return StreamPart(self, None, seed=seed), None
        if not isinstance(validation_fraction, Real) or not 0 < validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction!r}.")
        train = StreamPart(self, validation_fraction, seed=seed, held_out=False)
        valid = StreamPart(self, validation_fraction, seed=seed, held_out=True)
        return train, valid

    def predictions(self, net, method: str = "predict", columns=None, **kwargs):
        """``(keys, net.<method>(X_batch, **kwargs))`` for every batch; see ``predict_stream``."""
        predict = getattr(net, method)
        columns = {} if columns is None else dict(columns)
        for part in self.parts():
            if columns and not isinstance(part.frame, pd.DataFrame):
                raise TypeError("columns= names DataFrame columns; the batches are not DataFrames.")
            per_row = {name: part.frame[column].tolist() for name, column in columns.items()}
            yield part.keys, predict(part.X, **per_row, **kwargs)


class StreamPart(torch.utils.data.IterableDataset):
    """The training rows or the held-out rows of a :class:`BatchStream`.

    Built by :meth:`BatchStream.split`; the estimators read it through :meth:`minibatches`.

    Parameters
    ----------
    stream : BatchStream
    validation_fraction : float or None
        None: every row (no hold-out).
    seed : int
        Salts the key hash that picks the held-out rows, and seeds the shuffling.
    held_out : bool, default=False
        This part is the held-out rows (else the others).
    """

    def __init__(self, stream, validation_fraction, *, seed, held_out=False):
        self.stream = stream
        self.validation_fraction = validation_fraction
        self.seed = seed
        self.held_out = held_out

    def encoded_parts(self, encode):
        """This part's rows of each source batch: (float32 X, encoded y).

        Rows are picked by key before they are featurised: the other part's rows cost a read,
        never a sketch.
        """
        for raw, y, keys, _ in self.stream._raw_parts():
            if y is None:
                raise ValueError(
                    "The stream yields no targets: name the target column (target=) or yield "
                    "(X, y) tuples to train on it."
                )
            if self.validation_fraction is not None:
                mine = _held_out(keys, self.validation_fraction, self.seed) == self.held_out
                if not mine.any():
                    continue
                if not mine.all():
                    raw, y = _take(raw, mine), _take(y, mine)
            yield self.stream.featurise(raw), encode(y)

    def __iter__(self):
        return iter(self.encoded_parts(lambda y: y))

    def minibatches(self, net, *, training: bool):
        """The re-iterable mini-batches ``net`` trains (or validates) on."""
        kwargs = net.get_params_for("iterator_train" if training else "iterator_valid")
        batch_size = kwargs.get("batch_size", net.batch_size)
        if batch_size == -1:
            raise ValueError(
                "batch_size=-1 (all rows in one batch) needs every row in memory; a stream "
                "takes a mini-batch size such as 256."
            )
        shuffle = kwargs.get("shuffle", training)
        seed = None
        if shuffle:
            # a different order every epoch and every partial_fit call, all fixed by the seed
            seed = [self.seed, len(net.history_) if net.history_ is not None else 0]
        return _Minibatches(self, net, int(batch_size), seed=seed, training=training)


class _Minibatches:
    """Mini-batches of a stream part: shuffled within a buffer when training.

    Each pass draws a new order from the seed. While training, a last mini-batch of a single
    row is merged into the one before: BatchNorm cannot normalise a batch of one row.
    """

    def __init__(self, part, net, batch_size, *, seed, training):
        self.part = part
        self.net = net
        self.batch_size = batch_size
        self.rng = None if seed is None else np.random.default_rng(seed)
        self.training = training

    def _check_width(self, X):
        expected = self.net.n_features_in_
        if X.shape[1] != expected:
            raise ValueError(
                f"A stream batch has {X.shape[1]} features; the network takes {expected}. "
                "Featurise every batch with the same fitted transform."
            )

    def _blocks(self):
        """Blocks of at least ``shuffle_buffer`` rows (the last may be shorter), as lists of
        encoded batches; send back the block's leftover rows to have them lead the next."""
        limit = self.part.stream.shuffle_buffer
        pending, n_pending = [], 0
        for X, y in self.part.encoded_parts(self.net._encode_target):
            self._check_width(X)
            pending.append((X, y))
            n_pending += X.shape[0]
            if n_pending >= limit:
                block, pending = pending, []
                carry = yield block
                del block
                pending, n_pending = ([carry], carry[0].shape[0]) if carry else ([], 0)
        if pending:
            yield pending

    def _cut(self):
        """Mini-batches of ``batch_size`` rows drawn at random from each block when shuffling
        (in order otherwise); a block's leftover rows lead the next block, so only the very
        last mini-batch is short. Rows are gathered from the block's batches straight into
        the mini-batch: the block is never stacked into one more copy."""
        size = self.batch_size
        blocks = self._blocks()
        parts = next(blocks, None)
        while parts is not None:
            offsets = np.cumsum([0] + [X.shape[0] for X, _ in parts])
            n_rows = int(offsets[-1])
            order = np.arange(n_rows) if self.rng is None else self.rng.permutation(n_rows)
            n_full = n_rows // size * size
            for start in range(0, n_full, size):
                yield _gather(parts, offsets, order[start : start + size])
            carry = _gather(parts, offsets, order[n_full:]) if n_full < n_rows else None
            parts = None  # the block's memory goes before the next one is gathered
            try:
                parts = blocks.send(carry)
            except StopIteration:
                if carry is not None:
                    yield carry

    def __iter__(self):
        previous = None
        for X, y in self._cut():
            if self.training and X.shape[0] == 1 and previous is not None:
                # only the very last mini-batch can be this short
                previous = (_concat([previous[0], X]), _concat([previous[1], y]))
                continue
            if previous is not None:
                yield _tensor(previous[0]), _tensor(previous[1])
            previous = (X, y)
        if previous is None:
            return
        if self.training and previous[0].shape[0] < 2:
            raise ValueError(
                "The stream's training part holds a single row: the trunk's BatchNorm needs at "
                "least 2 rows per training batch. Stream more rows or hold fewer out."
            )
        yield _tensor(previous[0]), _tensor(previous[1])


class StreamProgressBar(ProgressBar):
    """skorch's progress bar; for a stream (no length) the total is the last epoch's count."""

    def _get_batches_per_epoch(self, net, dataset_train, dataset_valid):
        if isinstance(dataset_train, StreamPart) or isinstance(dataset_valid, StreamPart):
            return len(net.history[-2, "batches"]) if len(net.history) > 1 else None
        return super()._get_batches_per_epoch(net, dataset_train, dataset_valid)
