"""The learned recommender on plain history rows: Cleora, EMDE and a sketch network in one.

:class:`HistoryRecommender` takes the same rows as the baselines (a customer's items, or items
with weights) and learns, self-supervised, which items a customer goes on to have: it embeds the
items with Cleora on the customers' rows, sketches every row with EMDE, and trains a
:class:`~sklearn_basemodel.SketchRecommender` from the sketch of part of a row to the sketch of
the rest. It is the learned candidate of :class:`~sklearn_basemodel.selection.BlendedRecommender`.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.frozen import FrozenEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._compat import IntegerInterval, Interval, StrOptions, _fit_context
from ._hashing import seed_from_random_state
from .metrics import check_k, recall_at_k
from .recipes import resolve_sketch_dim
from .rows import hide_items

__all__ = ["HistoryRecommender"]


# Share of the customers (rows) whose pairs validate the network: early stopping and the
# item prior's strength (SketchRecommender's own default share).
_VALIDATION_FRACTION = 0.1


def _split_rows(rows, fraction, rng):
    """Self-supervised pairs: the rows that have a hidden part, split into input and target,
    with the position of the row each pair comes from."""
    inputs, targets = hide_items(rows, fraction, rng)
    source = [i for i, y in enumerate(targets) if y]
    return [inputs[i] for i in source], [targets[i] for i in source], source


class _HeldOutCustomers:
    """A skorch ``train_split``: the pairs at ``valid`` validate, the others train.

    Pairs drawn from the same customer share most of their items, so a random split of the
    pairs would validate on customers the network trained on; the pairs are split by customer
    instead.
    """

    def __init__(self, valid):
        self.valid = np.asarray(valid, dtype=np.int64)

    def __call__(self, dataset, y=None, **fit_params):
        held_out = np.zeros(len(dataset), dtype=bool)
        held_out[self.valid] = True
        return dataset.subset(np.flatnonzero(~held_out)), dataset.subset(self.valid)


class HistoryRecommender(BaseEstimator):
    """Recommend items from history rows with Cleora item vectors, EMDE sketches and a network.

    Parameters
    ----------
    n_components : int, default=64
        Cleora dimension per scale.
    n_iter : list of int, default=(1, 2)
        Cleora scales (multiscale; short walks do not over-smooth dense customer x item
        graphs), with symmetric propagation.
    n_sketches : int, default=16
        EMDE partitionings.
    sketch_dim : int or "auto", default="auto"
        Buckets per partitioning; "auto" sizes them from the number of items, like the
        behavioral profile (:func:`sklearn_basemodel.recipes.sketch_dim_for`: 64 up to 3,200
        items, 128 up to 6,400, then 256).
    hidden_units : int, default=512
        Width of the network.
    max_epochs : int or "auto", default="auto"
        Most epochs, with early stopping on the pairs of 10% of the customers (rows), held
        out from training; they also choose the strength of the network's item prior
        (``SketchRecommender(item_prior="calibrated")``). With fewer than 10 customers with
        a pair there is no hold-out: all ``max_epochs``, no item prior. "auto": the
        network's (up to 50 with the hold-out, 10 without).
    hide_fraction : float, default=0.2
        Without ``y``: share of each row's items hidden as the target of a training pair.
    n_draws : int, default=2
        Without ``y``: training pairs drawn per row (different hidden items each time).
    exclude_seen : bool, default=False
        Score the items of the input row ``-inf``.
    device : str, default="cpu"
        Where Cleora propagates and the network trains and predicts (``"cuda"``,
        ``"cuda:1"``; Cleora runs on the same CUDA device, on CPUs for any other device).
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    embedder_, sketcher_, model_ : fitted estimators
    validation_rows_ : ndarray of int
        Positions in ``X`` of the customers whose pairs validated the network (empty without
        a hold-out).
    items_ : ndarray
        The items scored by :meth:`predict_scores`, in column order.

    Examples
    --------
    >>> from sklearn_basemodel.history_recommender import HistoryRecommender
    >>> rows = [["milk", "bread", "eggs"], ["beer", "chips", "nuts"]] * 20
    >>> model = HistoryRecommender(n_components=8, n_sketches=4, sketch_dim=8, hidden_units=16,
    ...                            max_epochs=2, random_state=0).fit(rows)
    >>> model.predict_scores([["milk"]]).shape
    (1, 6)
    """

    _parameter_constraints: dict = {
        "n_components": [IntegerInterval(1, None, closed="left")],
        "n_iter": [list, tuple],
        "n_sketches": [IntegerInterval(1, None, closed="left")],
        "sketch_dim": [IntegerInterval(2, None, closed="left"), StrOptions({"auto"})],
        "hidden_units": [IntegerInterval(1, None, closed="left")],
        "max_epochs": [IntegerInterval(1, None, closed="left"), StrOptions({"auto"})],
        "hide_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_draws": [IntegerInterval(1, None, closed="left")],
        "exclude_seen": ["boolean"],
        "device": [str],
        "random_state": ["random_state"],
    }

    def __init__(self, n_components=64, *, n_iter=(1, 2), n_sketches=16, sketch_dim="auto",
                 hidden_units=512, max_epochs="auto", hide_fraction=0.2, n_draws=2,
                 exclude_seen=False, device="cpu", random_state=None):  # fmt: skip
        self.n_components = n_components
        self.n_iter = n_iter
        self.n_sketches = n_sketches
        self.sketch_dim = sketch_dim
        self.hidden_units = hidden_units
        self.max_epochs = max_epochs
        self.hide_fraction = hide_fraction
        self.n_draws = n_draws
        self.exclude_seen = exclude_seen
        self.device = device
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Embed, sketch and train on the rows.

        Parameters
        ----------
        X : sequence of rows (lists of item keys)
        y : sequence of rows, default=None
            The target items of each row; None draws ``n_draws`` self-supervised pairs per row
            by hiding ``hide_fraction`` of its items.

        Returns
        -------
        self : HistoryRecommender
        """
        from .embed import CleoraEmbedder
        from .embed.cleora.estimator import cleora_device
        from .nn import SketchRecommender
        from .sketch import EMDESketcher

        X = [list(row) for row in X]
        rng = check_random_state(self.random_state)
        seed = seed_from_random_state(rng)
        if y is None:
            pairs = [_split_rows(X, self.hide_fraction, rng) for _ in range(self.n_draws)]
            inputs = [row for p in pairs for row in p[0]]
            targets = [row for p in pairs for row in p[1]]
            source = np.array([i for p in pairs for i in p[2]], dtype=np.int64)
        else:
            inputs, targets = X, [list(row) for row in y]
            source = np.arange(len(X))
        if len(inputs) < 4:
            raise ValueError("Too few rows with two or more items to learn from; pass more rows.")
        self.embedder_ = CleoraEmbedder(
            self.n_components, n_iter=list(self.n_iter), propagation="symmetric",
            device=cleora_device(self.device), random_state=seed,
        ).fit([row for row in X if row] + [row for row in targets if row])  # fmt: skip
        self.sketcher_ = EMDESketcher(
            FrozenEstimator(self.embedder_), n_sketches=self.n_sketches,
            sketch_dim=resolve_sketch_dim(self.sketch_dim, self.embedder_),
            handle_unknown="ignore", random_state=seed,
        ).fit(None)  # fmt: skip
        # every pair of a held-out customer validates (early stopping, the item prior)
        customers = np.unique(source)
        n_valid = int(_VALIDATION_FRACTION * len(customers))
        held_out = rng.choice(customers, size=n_valid, replace=False) if n_valid else []
        valid = np.flatnonzero(np.isin(source, held_out))
        validated = 0 < len(valid) < len(source) - 1
        self.validation_rows_ = np.sort(np.asarray(held_out, dtype=np.int64)) if validated \
            else np.zeros(0, dtype=np.int64)  # fmt: skip
        self.model_ = SketchRecommender(
            target_sketcher=FrozenEstimator(self.sketcher_), module__hidden_units=self.hidden_units,
            max_epochs=self.max_epochs, early_stopping=validated,
            train_split=_HeldOutCustomers(valid) if validated else None, device=self.device,
            random_state=seed,
        )  # fmt: skip
        self.model_.fit(self.sketcher_.transform(inputs), targets)
        self.items_ = np.asarray(self.model_.entities_, dtype=object)
        return self

    def predict_scores(self, X):
        """Log-probability of every item of ``items_`` for every row (higher is better)."""
        check_is_fitted(self, "model_")
        X = [list(row) for row in X]
        scores = np.asarray(self.model_.predict_scores(self.sketcher_.transform(X)), np.float64)
        if self.exclude_seen:
            index = {item: i for i, item in enumerate(self.items_.tolist())}
            for r, row in enumerate(X):
                scores[r, [index[item] for item in row if item in index]] = -np.inf
        return scores

    def predict(self, X, k=10):
        """The ``k`` best items of every row."""
        k = check_k(k)
        scores = self.predict_scores(X)
        top = np.argsort(-scores, axis=1, kind="stable")[:, : min(k, scores.shape[1])]
        return self.items_[top]

    def score(self, X, y, k=10):
        """Recall@k against ``y``."""
        return recall_at_k(y, self.predict(X, k), k)
