"""SketchRecommender: predict the sketch of future behaviour and decode it into entities."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from scipy.special import log_softmax
from sklearn.base import clone
from sklearn.utils import _safe_indexing
from sklearn.utils.metaestimators import available_if
from skorch.utils import is_dataset

from .._compat import HasMethods, Interval, StrOptions, num_samples
from .._hashing import seed_from_random_state
from ..metrics import check_k, recall_at_k, top_k
from ..rows import flatten_rows, lookup, rows_matrix
from ..sketch import EMDESketcher, codebook_of
from ._base import SketchNetBase, _splice_shared_docs, _unavailable
from ._loss import SketchCrossEntropy, sketch_log_softmax
from .data import SketchDataset
from .streaming import BatchStream, _held_out, _target_array

__all__ = ["SketchRecommender"]

# Entity scores decoded at once: rows x entities (float32), bounds the memory of predict.
_MAX_SCORES = 1 << 23
# Training rows the item prior is estimated on (a seeded sample when there are more): enough
# for the target share of every item that matters, a few seconds of decoding.
_PRIOR_ROWS = 20_000
# The item prior's strengths compared on the held-out rows (0: the sketch as decoded).
_PRIOR_STRENGTHS = (0.0, 0.5, 1.0)


class SketchRecommender(SketchNetBase):
    """Predict which entities a row will have next (self-supervised BaseModel pretraining).

    The network maps input features (sketches of the history) to the sketch of the target
    rows (e.g. the items bought after the split point). ``fit`` turns ``y`` into target sketches
    with ``target_sketcher`` (each partitioning L1-normalised: a distribution over its buckets)
    and minimises the per-partitioning softmax cross-entropy. ``predict`` decodes the output
    sketch into a ranking of the target sketcher's entities (geometric-mean read-out, optionally
    popularity-corrected) and returns the top ``k`` keys of each row.

    Parameters
    ----------
    target_sketcher : EMDESketcher, default=None
        Encodes the target rows and decodes predictions; ``EMDESketcher()`` when None. It is
        cloned and fitted on ``y`` in ``fit``; pass ``FrozenEstimator(fitted_sketcher)`` to use a
        prefit one as is (e.g. the sketcher of the input history, so that inputs and targets
        share entity codes and the vocabulary covers all entities).
    k : int, default=10
        Number of entities ``predict`` returns per row; ``score`` is Recall@k.
    history_mode : {"boost", "exclude", "ignore"}, default="boost"
        What to do with the ``history`` passed to ``predict``/``predict_scores``/``score``:
        ``"boost"`` blends the model's per-row probabilities with the row's own history
        frequencies (repeat purchases: in grocery baskets a customer's own past items are the
        strongest signal); ``"exclude"`` removes history entities from the ranking (recommend
        only new items); ``"ignore"`` disregards it. Without ``history`` nothing changes.
    history_weight : float in [0, 1], default=0.5
        For ``"boost"``: ``p = (1 - history_weight) * p_model + history_weight * p_history``,
        where ``p_history`` is the row's history weights normalised to sum to one (counts for
        lists of keys, e.g. decayed weights for mappings key -> weight). See ``history_blend``.
    history_blend : {"linear", "log"}, default="linear"
        How ``"boost"`` combines the model with the history. ``"linear"``: the mixture of
        probabilities above. ``"log"``: a log-linear blend of the model's log-probabilities and
        the log of one plus the row's raw (un-normalised) history weights, ``score = (1 -
        history_weight) * log p_model + history_weight * log(1 + h)``, renormalised per row;
        ``history_weight=0.5`` ranks by ``p_model * (1 + h)``. The model then re-ranks the
        customer's own items and still ranks new items among them, which suits repeat-purchase
        data (on Ta-Feng next baskets it is far stronger than the linear mixture); pass
        decayed weights (mappings key -> weight) as ``history`` for recency.
    popularity_correction : bool, default=False
        Decode with the popularity-corrected read-out (docs/ALGORITHMS.md, section 2.5)
        instead of the plain geometric mean.
    item_prior : {"calibrated", "none"}, default="calibrated"
        A per-entity term added to the decoded log-probabilities, learned at the end of
        ``fit`` and ``partial_fit`` from (up to 20,000 of) their training rows so that the
        decoded distribution, averaged over those rows, matches how often each entity is a
        target (``item_prior_``). The sketch spreads each bucket's probability over all the
        entities that share it; the prior restores the differences between them (a frequent
        and a rare item in the same buckets) and undoes any bias of the read-out, including
        ``popularity_correction``'s. Whether it helps depends on the data, so its strength
        (0, 0.5 or 1) is chosen by Recall@k on the rows the network was validated on
        (``validation_fraction`` or ``early_stopping``; a stream's held-out rows); without
        held-out rows (or with a custom ``train_split`` whose validation set is not a
        ``SketchDataset.subset`` of the training rows), the strength is 0. ``"none"`` skips
        it.{shared}

    Attributes
    ----------
    target_sketcher_ : EMDESketcher
        The fitted (or frozen) target sketcher.
    entities_ : ndarray
        The keys that can be recommended: the columns of ``predict_scores``.
    n_sketches_, sketch_dim_ : int
        Shape of the target sketch (N partitionings of W buckets).
    n_outputs_ : int
        ``n_sketches_ * sketch_dim_``, the output width of the network.
    n_features_in_ : int
    module_ : ResidualSketchNet
{shared_attributes}
    item_prior_ : ndarray of shape (n_entities,) or None
        The learned per-entity log-prior at strength 1; None with ``item_prior="none"`` or
        without held-out rows.
    item_prior_strength_ : float
        The multiple of ``item_prior_`` added when decoding (0.0: none).
    item_prior_scores_ : dict or None
        Recall@k on the held-out rows of each strength tried, or None without held-out rows.
    validation_rows_ : ndarray of int or None
        Positions, in the ``X`` of the last ``fit``, of the rows held out from training
        (``validation_fraction``): rows the network has not learned from, on which a
        second stage such as :class:`~sklearn_basemodel.history_ranker.HistoryRanker` can
        be fitted; None without held-out rows (or for a stream, whose rows are not kept).

    See Also
    --------
    SketchClassifier : Fine-tunes this model's trunk for churn or propensity (``pretrained``).
    sklearn_basemodel.metrics.recall_at_k : The metric of ``score``.

    Notes
    -----
    Decoding: for each row, ``score(i) = sum_j log p_j[b_j(i)]`` over the N partitionings
    (``b_j(i)`` the bucket of entity i in partitioning j). ``predict_scores`` returns
    ``log softmax(score / N)`` over the entities: the normalised geometric mean of the
    bucket probabilities, a proper per-row distribution that can be blended with the history.

    The calibrated item prior: with ``m_i`` the decoded probability of entity i averaged over
    the training rows and ``c_i`` its target share summed over those ``C`` rows (each row's
    targets weighing one in all), ``item_prior_[i] = log((c_i + K m_i) / (C + K)) - log m_i``
    with ``K`` the number of entities: the empirical share, shrunk towards the model's own by
    one pseudo-row per entity, so an entity never seen as a target is lowered by a bounded
    amount rather than removed. The rows the network was validated on are left out of it and
    choose its strength.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.frozen import FrozenEstimator
    >>> from sklearn_basemodel import RandomVectorEmbedder
    >>> from sklearn_basemodel import EMDESketcher
    >>> from sklearn_basemodel.nn import SketchRecommender
    >>> history = [["milk", "bread"], ["beer", "chips"]] * 20
    >>> future = [["butter"], ["nuts"]] * 20
    >>> sketcher = EMDESketcher(embedder=RandomVectorEmbedder(n_components=8, random_state=0),
    ...                         n_sketches=4, sketch_dim=16, random_state=0)
    >>> sketcher.fit(history + future)  # doctest: +ELLIPSIS
    EMDESketcher(...)
    >>> X = sketcher.transform(history)
    >>> rec = SketchRecommender(target_sketcher=FrozenEstimator(sketcher), k=2,
    ...                         hidden_units=32, n_blocks=1, max_epochs=10, batch_size=8,
    ...                         lr=1e-2, random_state=0)
    >>> rec.fit(X, future).predict(X[:2])[:, 0].tolist()
    ['butter', 'nuts']
    >>> _ = rec.set_params(history_weight=0.9)
    >>> str(rec.predict(X[:1], history=[["milk"]])[0, 0])  # repeat purchase boosted
    'milk'
    """

    _parameter_constraints: dict = {
        **SketchNetBase._parameter_constraints,
        "target_sketcher": [None, HasMethods(["fit", "transform"])],
        "k": [Interval(Integral, 1, None, closed="left")],
        "history_mode": [StrOptions({"boost", "exclude", "ignore"})],
        "history_weight": [Interval(Real, 0, 1, closed="both")],
        "history_blend": [StrOptions({"linear", "log"})],
        "popularity_correction": ["boolean"],
        "item_prior": [StrOptions({"calibrated", "none"})],
    }

    def __init__(
        self,
        target_sketcher=None,
        *,
        k=10,
        history_mode="boost",
        history_weight=0.5,
        history_blend="linear",
        popularity_correction=False,
        item_prior="calibrated",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.target_sketcher = target_sketcher
        self.k = k
        self.history_mode = history_mode
        self.history_weight = history_weight
        self.history_blend = history_blend
        self.popularity_correction = popularity_correction
        self.item_prior = item_prior

    def _check_params(self) -> None:
        super()._check_params()
        check_k(self.k)

    # ------------------------------------------------------------------ targets
    def _fit_target(self, y):
        sketcher = self.target_sketcher
        if sketcher is None:
            # seeded from this estimator, so that the same random_state gives the same codes
            seed = None if self.random_state is None else seed_from_random_state(self.random_state)
            sketcher = EMDESketcher(random_state=seed)
        self.target_sketcher_ = clone(sketcher).fit(y, None)  # a FrozenEstimator stays as is
        self.codebook_ = codebook_of(self.target_sketcher_)
        self.n_sketches_ = self.codebook_.n_sketches
        self.sketch_dim_ = self.codebook_.sketch_dim
        self.n_outputs_ = self.codebook_.width

    def _encode_target(self, y):
        """Target sketches with every partitioning (block of W columns) summing to one."""
        sketcher = self.target_sketcher_
        # raw weighted counts when the sketcher offers them, whatever its ``normalize`` says
        S = sketcher.raw_sketches(y) if hasattr(sketcher, "raw_sketches") else sketcher.transform(y)
        S = sp.csr_matrix(S, dtype=np.float32)
        if not np.isfinite(S.data).all():
            raise ValueError(
                "The target sketches are not finite: y has NaN, infinite or overflowing weights "
                "(mappings key -> weight); pass finite weights of moderate scale."
            )
        if S.shape[1] != self.n_outputs_:
            raise ValueError(
                f"The target sketcher returns {S.shape[1]} columns; expected {self.n_outputs_}."
            )
        if S.nnz and S.data.min() < 0:
            raise ValueError("Target sketches must be non-negative (weights of target rows >= 0).")
        S = self.codebook_.normalize(S, "l1")
        n_empty = S.shape[0] - np.count_nonzero(np.diff(S.indptr))
        if n_empty == S.shape[0]:
            raise ValueError(
                "No target row contains an entity known to the target sketcher; check y (and "
                "the vocabulary of a frozen target_sketcher)."
            )
        return S

    def _default_criterion(self, **kwargs):
        return SketchCrossEntropy(sketch_dim=self.sketch_dim_, **kwargs)

    # ------------------------------------------------------------------ decoding
    @property
    def entities_(self) -> np.ndarray:
        return np.asarray(self.target_sketcher_.keys_)

    def _output_log_probs(self, X) -> np.ndarray:
        logits = torch.from_numpy(self._network_output(X))
        return sketch_log_softmax(logits, self.sketch_dim_).numpy()

    def predict_sketch(self, X) -> np.ndarray:
        """The predicted target sketch: each partitioning's bucket probabilities.

        Returns
        -------
        ndarray of shape (n_rows, n_sketches_ * sketch_dim_), float32
            Each block of ``sketch_dim_`` columns sums to one.
        """
        return np.exp(self._output_log_probs(X))

    def _history_matrix(self, history, n_rows: int, normalize: bool = True):
        """Rows x entities of history weights (CSR), each row normalised to sum to one unless
        ``normalize`` is False."""
        H = rows_matrix(history, self.target_sketcher_.vocabulary_, name="history")
        if H.shape[0] != n_rows:
            raise ValueError(f"history has {H.shape[0]} rows but X has {n_rows}; pass one per row.")
        if not normalize:
            return H
        total = np.asarray(H.sum(axis=1)).ravel()
        scale = np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)
        return sp.csr_matrix(sp.diags(scale) @ H)

    def _decode(self, log_probs: np.ndarray, history, prior: bool = True) -> np.ndarray:
        """Per-row log-probabilities over the entities, with the item prior (unless ``prior``
        is False) and the history (a matrix from :meth:`_blend_matrix`, or None) applied."""
        scores = self.target_sketcher_.score_entities(
            log_probs, popularity_correction=self.popularity_correction
        )
        scores = np.asarray(scores, dtype=np.float64) / self.n_sketches_
        strength = getattr(self, "item_prior_strength_", 0.0)  # absent: saved before it existed
        if prior and strength:
            scores += strength * self.item_prior_
        return self._blend(log_softmax(scores, axis=1), history)

    def _blend_matrix(self, history, n_rows: int):
        """The history rows as the blend reads them (normalised unless the log blend boosts);
        None when there is no history or it is ignored."""
        if history is None or self.history_mode == "ignore":
            return None
        normalize = self.history_mode != "boost" or self.history_blend == "linear"
        return self._history_matrix(history, n_rows, normalize=normalize)

    def _blend(self, scores: np.ndarray, H) -> np.ndarray:
        """Log-probabilities ``scores`` (float64) with the history matrix ``H`` applied as
        ``history_mode`` and ``history_blend`` say: the one place of the blend's formula."""
        if H is None:
            return scores.astype(np.float32)
        if self.history_mode == "exclude":
            rows, cols = H.nonzero()
            scores[rows, cols] = -np.inf
            return scores.astype(np.float32)
        if self.history_blend == "log":
            boost = np.log1p(H.toarray())
            blended = (1.0 - self.history_weight) * scores + self.history_weight * boost
            return log_softmax(blended, axis=1).astype(np.float32)
        blended = (1.0 - self.history_weight) * np.exp(scores) + self.history_weight * H.toarray()
        with np.errstate(divide="ignore"):
            return np.log(blended).astype(np.float32)

    def apply_history(self, scores, history) -> np.ndarray:
        """Apply a history to scores predicted without one, as ``predict_scores`` would.

        ``predict_scores(X, history)`` equals ``apply_history(predict_scores(X), history)`` up
        to float32 rounding, so several history settings (``history_mode``,
        ``history_weight``, ``history_blend``) can be compared on one pass of the network
        (:func:`~sklearn_basemodel.recipes.tune_history_boost` does).

        Parameters
        ----------
        scores : ndarray of shape (n_rows, n_entities)
            ``predict_scores(X)`` (no history) of the rows.
        history : rows of keys or mappings key -> weight
            One per row of ``scores``.

        Returns
        -------
        ndarray of shape (n_rows, n_entities), float32
        """
        self.check_is_fitted()
        scores = np.array(scores, dtype=np.float64)  # a copy: "exclude" writes into it
        if scores.ndim != 2 or scores.shape[1] != len(self.entities_):
            raise ValueError(f"scores must have one column per entity ({len(self.entities_)}); "
                             f"got shape {scores.shape}.")  # fmt: skip
        return self._blend(scores, self._blend_matrix(history, len(scores)))

    def _iter_decoded(self, X, history, prior: bool = True):
        """Decoded scores, a chunk of rows at a time (never all logits or scores at once)."""
        self.check_is_fitted()
        H = self._blend_matrix(history, num_samples(X))
        chunk = max(1, _MAX_SCORES // max(len(self.entities_), 1))
        start = 0
        for logits in self._iter_network_output(X):
            log_probs = sketch_log_softmax(torch.from_numpy(logits), self.sketch_dim_).numpy()
            for offset in range(0, len(log_probs), chunk):
                part = log_probs[offset : offset + chunk]
                rows = slice(start, start + len(part))
                yield self._decode(part, None if H is None else H[rows], prior=prior)
                start += len(part)

    # ------------------------------------------------------------------ the item prior
    def fit(self, X, y=None, **fit_params):
        super().fit(X, y, **fit_params)
        self._fit_item_prior(X, y)
        return self

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        if is_dataset(X):  # a step of fit(), which learns the prior when training ends
            return super().partial_fit(X, y, classes=classes, **fit_params)
        super().partial_fit(X, y, classes=classes, **fit_params)
        self._fit_item_prior(X, y)
        return self

    fit.__doc__ = SketchNetBase.fit.__doc__
    partial_fit.__doc__ = SketchNetBase.partial_fit.__doc__

    def get_split_datasets(self, X, y=None, **fit_params):
        train, valid = super().get_split_datasets(X, y, **fit_params)
        # the rows the network does not train on: they choose the item prior's strength
        self._held_out_rows_ = valid.rows if isinstance(valid, SketchDataset) else None
        self.validation_rows_ = (None if self._held_out_rows_ is None
                                 else np.sort(np.asarray(self._held_out_rows_, dtype=np.int64)))
        return train, valid

    def _prior_batches(self, X, y, seed):
        """``(X, y, held_out)`` batches of up to ``_PRIOR_ROWS`` training rows: a sample of
        in-memory rows drawn with ``seed``, the first batches of a stream (read again, one batch
        at a time). ``held_out`` marks the rows the network was validated on."""
        if isinstance(X, BatchStream):
            fraction, n_rows = self._validation_fraction(), 0
            for part in X.parts():
                size = min(len(part.keys), _PRIOR_ROWS - n_rows)
                held_out = _held_out(part.keys, fraction, self._seed_)[:size]
                yield part.X[:size], list(_target_array(part.y))[:size], held_out
                n_rows += size
                if n_rows >= _PRIOR_ROWS:
                    return
            return
        n_rows = num_samples(X)
        held_out = np.zeros(n_rows, dtype=bool)
        held_out[self._held_out_rows_] = True
        if n_rows > _PRIOR_ROWS:
            rows = np.sort(np.random.default_rng(seed).choice(n_rows, _PRIOR_ROWS, replace=False))
            X, y, held_out = _safe_indexing(X, rows), _safe_indexing(y, rows), held_out[rows]
        yield X, list(y), held_out

    def _fit_item_prior(self, X, y) -> None:
        """``item_prior_`` (the log-ratio of the shrunk target share of every entity to its
        decoded probability averaged over the training rows, class Notes) and its strength,
        chosen by Recall@k on the held-out rows."""
        self.item_prior_, self.item_prior_strength_, self.item_prior_scores_ = None, 0.0, None
        if isinstance(X, BatchStream):
            validated = self._validation_fraction() is not None
        else:
            validated = getattr(self, "_held_out_rows_", None) is not None
        if self.item_prior == "none" or not validated:  # without held-out rows: strength 0
            return
        seed = seed_from_random_state(self.random_state)
        batches = self._prior_batches(X, y, seed)
        if not isinstance(X, BatchStream):
            batches = list(batches)  # one sample, drawn once for both passes
        n_entities = len(self.entities_)
        counts, mean = np.zeros(n_entities), np.zeros(n_entities)
        n_rows = n_targeted = 0
        for X_part, y_part, held_out in batches:
            train = np.flatnonzero(~held_out)
            flat = flatten_rows([y_part[i] for i in train], name="y", allow_empty=True)
            position = lookup(flat.keys, self.target_sketcher_.vocabulary_)
            keep = position >= 0
            weight = flat.weights_or_ones()[keep].astype(np.float64)
            row = flat.row_ids()[keep]
            # each row's known targets weigh one in all, as in the L1-normalised target sketch
            row_total = np.bincount(row, weights=weight, minlength=flat.n_rows)
            share = weight / np.where(row_total[row] > 0, row_total[row], 1.0)
            counts += np.bincount(position[keep], weights=share, minlength=n_entities)
            n_targeted += int(np.count_nonzero(row_total > 0))
            n_rows += len(train)
            # every row decoded, the held-out ones masked out: no copy of the rows' features
            start = 0
            for scores in self._iter_decoded(X_part, None, prior=False):
                kept = scores[~held_out[start : start + len(scores)]]
                mean += np.exp(kept.astype(np.float64)).sum(axis=0)
                start += len(scores)
        mean = np.maximum(mean / max(n_rows, 1), np.finfo(np.float64).tiny)
        shrunk = (counts + n_entities * mean) / (n_targeted + n_entities)
        self.item_prior_ = (np.log(shrunk) - np.log(mean)).astype(np.float32)

        # second pass, over the held-out rows: the top-k at each strength (never all scores)
        k, targets = min(self.k, n_entities), []
        tops = {strength: [] for strength in _PRIOR_STRENGTHS}
        if isinstance(X, BatchStream):
            batches = self._prior_batches(X, y, seed)  # the stream read again
        for X_part, y_part, held_out in batches:
            rows = np.flatnonzero(held_out)
            targets += [y_part[i] for i in rows]
            if not len(rows):
                continue
            for scores in self._iter_decoded(_safe_indexing(X_part, rows), None, prior=False):
                for strength in _PRIOR_STRENGTHS:
                    tops[strength].append(top_k(scores + strength * self.item_prior_, k)[0])
        if any(len(row) for row in targets):  # Recall@k needs a row with targets
            keys = self.entities_
            recalls = [recall_at_k(targets, keys[np.vstack(tops[s])], k=k) for s in _PRIOR_STRENGTHS]
            self.item_prior_scores_ = dict(zip(_PRIOR_STRENGTHS, recalls))
            self.item_prior_strength_ = float(_PRIOR_STRENGTHS[int(np.argmax(recalls))])
        self._held_out_rows_ = None  # used: the next fit records its own

    def predict_scores(self, X, history=None) -> np.ndarray:
        """Score of every entity for every row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_rows, n_features)
        history : rows of keys or mappings key -> weight, default=None
            Each row's own history (e.g. past purchases, possibly decayed weights), applied as
            set by ``history_mode`` and ``history_weight``.

        Returns
        -------
        ndarray of shape (n_rows, n_entities), float32
            Per-row log-probabilities; column i is entity ``entities_[i]``. Excluded entities
            get ``-inf``.
        """
        return np.vstack(list(self._iter_decoded(X, history)))

    def predict(self, X, history=None, k=None) -> np.ndarray:
        """Top-k entity keys per row, best first.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_rows, n_features)
        history : rows of keys or mappings key -> weight, default=None
            See :meth:`predict_scores`.
        k : int, default=None
            Overrides the ``k`` parameter.

        Returns
        -------
        ndarray of shape (n_rows, min(k, n_entities))
            Entity keys. With ``history_mode="exclude"`` a row whose history leaves fewer than
            k entities ends with excluded ones.
        """
        self.check_is_fitted()
        k = check_k(self.k if k is None else k)
        keys = self.entities_
        k = min(k, len(keys))
        tops = []
        for scores in self._iter_decoded(X, history):
            tops.append(top_k(scores, k)[0])
        return keys[np.vstack(tops)]

    def score(self, X, y, history=None) -> float:
        """Recall@k of :meth:`predict` against the rows of true keys ``y``."""
        return recall_at_k(y, self.predict(X, history=history), k=self.k)

    # A recommender has no class probabilities: hide skorch's predict_proba.
    predict_proba = available_if(_unavailable)(SketchNetBase.predict_proba)

    # ------------------------------------------------------------------ explanations
    def _explain_targets(self, X, target) -> np.ndarray:
        """Entity index per row: the top-1 prediction by default, or the given key(s)."""
        n_rows = X.shape[0]
        if target is None:
            top = self.predict(X, k=1)[:, 0]
            return lookup(np.asarray(top), self.target_sketcher_.vocabulary_)
        keys = np.asarray([target] * n_rows if np.ndim(target) == 0 else target, dtype=object)
        position = lookup(keys, self.target_sketcher_.vocabulary_)
        if len(position) != n_rows or (position < 0).any():
            raise ValueError(
                "target must be an entity key known to the target sketcher, or one per row."
            )
        return position

    def _explained_value(self, logits, targets):
        columns = torch.as_tensor(
            self.codebook_.columns(targets), dtype=torch.int64, device=logits.device
        )
        log_probs = sketch_log_softmax(logits, self.sketch_dim_)
        return log_probs.gather(1, columns).sum(dim=1)


_splice_shared_docs(SketchRecommender)
