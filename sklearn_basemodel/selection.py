"""Selection built into the library: recommenders blended with weights learned on held-out rows.

No single recommender wins on every dataset: popularity wins where tastes are shared, the
customer's own history where purchases repeat, item-item models where co-occurrence is strong,
the learned sketch model where all of these mix. :class:`BlendedRecommender` fits several
candidates on part of the training rows, learns on the other part (held-out customers) how much
each one's ranking should count, and keeps the best single candidate instead when the blend
does not validate better. The blend therefore starts from its strongest baseline rather than
falling below it, on data nobody tuned it on.
"""

from __future__ import annotations

import time
from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._compat import IntegerInterval, Interval, _fit_context
from .metrics import check_k, recall_at_k, recall_at_k_per_row
from .rows import flatten_rows, hide_items

__all__ = ["BlendedRecommender", "default_candidates"]

_BLOCK_CELLS = 1 << 23  # rank features computed for at most this many (row, item, candidate)
# EASE's fit inverts a dense n_items² matrix: about 10 s at 10,000 items on 2 cores (float32)
_EASE_MAX_ITEMS = 10_000


def default_candidates(random_state=None):
    """The candidates :class:`BlendedRecommender` uses when none are given.

    Popularity, the customer's own most frequent items (GP-TopFreq), item-item cosine kNN,
    EASE (its L2 chosen on held-out rows; on more than 10,000 items, the 10,000 in the most
    rows), each the winner on some kind of data, and, last, the learned
    :class:`~sklearn_basemodel.history_recommender.HistoryRecommender` (Cleora, EMDE and a
    sketch network, named ``"sketch"``). The blend weighs them on held-out customers, so the
    learned candidate adds what it finds beyond the baselines and is left out where it adds
    nothing. On Ta-Feng next baskets adding it raised the blend's Recall@10 from .1406 to
    .1449 (mean of 3 keysets), for 146 s of fitting instead of 125 s (keyset 0).

    Parameters
    ----------
    random_state : int, RandomState instance or None, default=None
        Seeds the candidates that draw random numbers (EASE's validation split).

    Returns
    -------
    list of (name, estimator), unfitted
    """
    from .baselines import (
        EASERecommender,
        ItemKNNRecommender,
        PersonalFrequencyRecommender,
        PopularityRecommender,
    )
    from .history_recommender import HistoryRecommender

    ease = EASERecommender(
        max_items=_EASE_MAX_ITEMS, too_many_items="most_frequent", random_state=random_state
    )
    return [
        ("popularity", PopularityRecommender()),
        ("own_history", PersonalFrequencyRecommender()),
        ("item_knn", ItemKNNRecommender()),
        ("ease", ease),
        ("sketch", HistoryRecommender(random_state=random_state)),
    ]


def _items_of(estimator):
    """The item keys that index an estimator's ``predict_scores`` columns."""
    for name in ("items_", "entities_"):
        if hasattr(estimator, name):
            return np.asarray(getattr(estimator, name), dtype=object)
    raise TypeError(
        f"{type(estimator).__name__} has no items_ (or entities_) after fit: a candidate must "
        "say which item each column of predict_scores scores."
    )


def _rank_features(scores):
    """Per row, ``-log(1 + rank)`` of every item in this candidate's ranking (0 for the best).

    Ranks make candidates with incomparable score scales (counts, cosines, log-probabilities)
    comparable; unscored items (-inf, or items the candidate does not know) rank last.
    """
    scores = np.where(np.isfinite(scores), scores, -np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty_like(order)
    rows = np.arange(scores.shape[0])[:, None]
    ranks[rows, order] = np.arange(scores.shape[1])[None, :]
    features = -np.log1p(ranks.astype(np.float64))
    features[~np.isfinite(scores)] = -np.log1p(scores.shape[1])
    return features


def _one_standard_error_choice(per_row):
    """The first entry (in order) whose mean is within one standard error of the best's.

    ``per_row`` maps names, simplest first, to per-row validation scores (NaN: unscored row).
    The standard error is that of the paired per-row difference from the best. On a few
    hundred validation customers two good candidates often differ by less than their noise;
    then the simpler one is kept (Breiman's one-standard-error rule) rather than the one the
    draw of customers happened to favour.
    """
    names = list(per_row)
    scored = np.all([np.isfinite(v) for v in per_row.values()], axis=0)
    if not scored.any():
        return names[0]
    values = {name: v[scored] for name, v in per_row.items()}
    best = max(names, key=lambda name: values[name].mean())
    for name in names:
        gap = values[best] - values[name]
        error = gap.std(ddof=1) / np.sqrt(len(gap)) if len(gap) > 1 else 0.0
        if gap.mean() <= error:
            return name
    return best


def _membership(rows, items):
    """Boolean (n_rows, n_items): whether each of ``items`` is in each row."""
    index = {item: i for i, item in enumerate(items.tolist())}
    out = np.zeros((len(rows), len(items)), dtype=bool)
    for r, row in enumerate(rows):
        out[r, [index[item] for item in row if item in index]] = True
    return out


_WEIGHT_GRID = (0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 3.0)


class _Pool:
    """The items a blend can rank into a top k: per row, every candidate's top ``depth``.

    Rows are padded to the longest pool so a blend's Recall@k is one matrix product and one
    ``argpartition``; items outside every candidate's top ``depth`` (and, with
    ``exclude_seen``, the row's own items) cannot enter the top k and are left out.
    """

    def __init__(self, features, X, y, items, depth, k, exclude_seen):
        n_rows, n_items, n_cand = features.shape
        seen = _membership(X, items) if exclude_seen else np.zeros((n_rows, n_items), dtype=bool)
        depth = min(depth, n_items)
        member = np.zeros((n_rows, n_items), dtype=bool)
        for c in range(n_cand):
            ranked = np.where(seen, -np.inf, features[:, :, c])
            top = np.argpartition(-ranked, depth - 1, axis=1)[:, :depth]
            np.put_along_axis(member, top, True, axis=1)
        member &= ~seen
        target = _membership(y, items)
        relevant = np.array([len(set(row)) for row in y], dtype=np.float64)
        width = max(int(member.sum(axis=1).max()), 1)
        order = np.argsort(~member, axis=1, kind="stable")[:, :width]
        self.valid = np.take_along_axis(member, order, axis=1)
        self.features = np.take_along_axis(features, order[:, :, None], axis=1)
        self.labels = np.take_along_axis(target, order, axis=1) & self.valid
        self.scored = relevant > 0
        self.relevant = relevant
        self.k = min(k, width)

    def recall(self, weights):
        """Mean Recall@k (denominator: the row's relevant items) of ``features @ weights``."""
        scores = np.where(self.valid, self.features @ weights, -np.inf)
        top = np.argpartition(-scores, self.k - 1, axis=1)[:, : self.k]
        hits = np.take_along_axis(self.labels, top, axis=1).sum(axis=1)
        if not self.scored.any():
            return 0.0
        return float((hits[self.scored] / self.relevant[self.scored]).mean())


class BlendedRecommender(BaseEstimator):
    """Several recommenders blended by weights learned on held-out customers.

    ``fit`` splits the rows into training and validation customers, fits every candidate on the
    training customers, and learns on the validation customers non-negative weights of each
    candidate's rank of an item that maximise Recall@k (coordinate ascent from the best single
    candidate). The blend is scored on validation customers it did not learn from (two halves,
    each scored with the weights of the other), and kept when that beats every single
    candidate. Otherwise a single candidate is kept by the one-standard-error rule: the first
    (in the order given, simplest first) within one standard error of the best. The candidates
    used are then refit on all rows.

    Parameters
    ----------
    candidates : list of (name, estimator), default=None
        Recommenders with ``fit(X, y)``, ``predict_scores(X)`` and ``items_`` (or
        ``entities_``); None uses :func:`default_candidates`.
    k : int, default=10
        The cut-off of the Recall@k used to choose between the blend and single candidates.
    validation_fraction : float, default=0.2
        Share of the rows (customers) held out to learn and check the blend.
    hide_fraction : float, default=0.2
        When ``y`` is None (no separate targets, e.g. a users x items matrix), this share of
        each validation customer's items is hidden as the target and the rest is the input
        (the strong-generalisation protocol).
    exclude_seen : bool, default=False
        Never recommend the items of the input row (set it when the task is to find new items).
    n_candidates : int, default=200
        Items per validation row the blend is learned on: the union of every candidate's top
        ``n_candidates`` (the other items cannot enter a top-k anyway).
    time_budget : float, default=None
        Seconds; candidates whose fit would start after the budget is spent are skipped (the
        first candidate always runs). None: no limit.
    refit : bool, default=True
        Refit the chosen candidates on all rows after choosing. A candidate that chose some of
        its own settings on held-out rows reports them in a fitted attribute
        ``chosen_params_`` (``EASERecommender``: its L2 strength); the refit is given them, so
        it does not search again.
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split and the hidden items.

    Attributes
    ----------
    candidates_ : list of (name, fitted estimator)
    weights_ : dict
        Name -> weight of the candidate's rank feature in the blend (0 for unused candidates).
    chosen_ : str
        ``"blend"`` or the name of the single candidate kept.
    validation_scores_ : dict
        Recall@k on the validation customers of every candidate and of the blend.
    items_ : ndarray of object
        The items scored (union of the candidates' items).

    Examples
    --------
    >>> from sklearn_basemodel.selection import BlendedRecommender
    >>> rows = [["milk", "bread", "eggs"], ["milk", "bread"], ["beer", "chips", "nuts"],
    ...         ["beer", "chips"], ["milk", "eggs"], ["beer", "nuts"]] * 5
    >>> blend = BlendedRecommender(k=2, random_state=0).fit(rows)
    >>> sorted(blend.validation_scores_)
    ['blend', 'ease', 'item_knn', 'own_history', 'popularity', 'sketch']
    >>> blend.predict([["beer"]], k=2, exclude=True).tolist()
    [['chips', 'nuts']]
    """

    _parameter_constraints: dict = {
        "candidates": [list, None],
        "k": [IntegerInterval(1, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "hide_fraction": [Interval(Real, 0, 1, closed="neither")],
        "exclude_seen": ["boolean"],
        "n_candidates": [IntegerInterval(1, None, closed="left")],
        "time_budget": [Interval(Real, 0, None, closed="neither"), None],
        "refit": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(self, candidates=None, *, k=10, validation_fraction=0.2, hide_fraction=0.2,
                 exclude_seen=False, n_candidates=200, time_budget=None, refit=True,
                 random_state=None):  # fmt: skip
        self.candidates = candidates
        self.k = k
        self.validation_fraction = validation_fraction
        self.hide_fraction = hide_fraction
        self.exclude_seen = exclude_seen
        self.n_candidates = n_candidates
        self.time_budget = time_budget
        self.refit = refit
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def _split(self, X, y, rng):
        n = len(X)
        n_valid = int(round(self.validation_fraction * n))
        if n_valid < 1 or n - n_valid < 1:
            raise ValueError(
                f"{n} rows cannot be split into training and validation customers with "
                f"validation_fraction={self.validation_fraction}; pass more rows."
            )
        order = rng.permutation(n)
        train, valid = np.sort(order[n_valid:]), np.sort(order[:n_valid])
        X_train = [X[i] for i in train]
        y_train = None if y is None else [y[i] for i in train]
        if y is None:
            X_valid, y_valid = hide_items([X[i] for i in valid], self.hide_fraction, rng)
        else:
            X_valid, y_valid = [X[i] for i in valid], [y[i] for i in valid]
        return X_train, y_train, X_valid, y_valid

    def _fit_candidates(self, X, y, seed, names=None, chosen=None):
        """Fit clones of the candidates (those in ``names``), each given the settings it
        chose in an earlier fit (``chosen``: name -> its ``chosen_params_``)."""
        fitted, start = [], time.perf_counter()
        for name, estimator in self._candidate_list(seed):
            if names is not None and name not in names:
                continue
            spent = time.perf_counter() - start
            if fitted and self.time_budget is not None and spent > self.time_budget:
                continue
            candidate = clone(estimator).set_params(**(chosen or {}).get(name, {}))
            fitted.append((name, candidate.fit(X, y)))
        return fitted

    def _candidate_list(self, seed=None):
        """The candidates; the default ones seeded by ``seed`` (the same for fit and refit)."""
        candidates = self.candidates
        if candidates is None:
            candidates = default_candidates(random_state=seed)
        names = [name for name, _ in candidates]
        if not candidates or len(set(names)) != len(names):
            raise ValueError("candidates must be a non-empty list of (unique name, estimator).")
        return candidates

    def _features(self, fitted, X, items):
        """(n_rows, n_items, n_candidates) rank features over ``items``."""
        index = {item: i for i, item in enumerate(items.tolist())}
        out = np.empty((len(X), len(items), len(fitted)))
        for c, (_, estimator) in enumerate(fitted):
            scores = np.full((len(X), len(items)), -np.inf)
            columns = np.fromiter((index[item] for item in _items_of(estimator).tolist()), int)
            scores[:, columns] = np.asarray(estimator.predict_scores(X), dtype=np.float64)
            out[:, :, c] = _rank_features(scores)
        return out

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Fit the candidates, learn the blend on held-out customers, refit.

        Parameters
        ----------
        X : sequence of rows
            Histories: lists of item keys or mappings item -> weight.
        y : sequence of rows, default=None
            The items each row should lead to (e.g. the next basket). None hides
            ``hide_fraction`` of each validation row's items instead.

        Returns
        -------
        self : BlendedRecommender
        """
        X = list(X)
        flatten_rows(X, name="X", allow_empty=True)  # the one row parser: same errors
        if y is not None:
            y = list(y)
            if len(y) != len(X):
                raise ValueError(f"X has {len(X)} rows but y has {len(y)}; pass one per row.")
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))  # the default candidates' seed
        X_train, y_train, X_valid, y_valid = self._split(X, y, rng)
        fitted = self._fit_candidates(X_train, y_train, seed)
        items = np.asarray(list(dict.fromkeys(
            item for _, est in fitted for item in _items_of(est).tolist())), dtype=object)  # fmt: skip
        features = self._features(fitted, X_valid, items)
        per_row = {name: self._row_recalls(features[:, :, c], X_valid, y_valid, items)
                   for c, (name, _) in enumerate(fitted)}  # fmt: skip
        coef = self._learn_weights(features, X_valid, y_valid, items)
        per_row["blend"] = self._cross_fitted_recalls(features, X_valid, y_valid, items, rng)
        self.validation_scores_ = {name: float(np.nanmean(v)) if np.isfinite(v).any() else 0.0
                                   for name, v in per_row.items()}  # fmt: skip
        singles = {name: v for name, v in per_row.items() if name != "blend"}
        self.chosen_ = _one_standard_error_choice(singles)
        # the blend's cross-fitted score is already honest: it is kept when it beats them all
        if self.validation_scores_["blend"] > max(self.validation_scores_[n] for n in singles):
            self.chosen_ = "blend"
        names = [name for name, _ in fitted]
        if self.chosen_ == "blend":
            self.weights_ = dict(zip(names, coef.tolist()))
        else:
            self.weights_ = {name: float(name == self.chosen_) for name in names}
        used = [name for name, weight in self.weights_.items() if weight != 0]
        chosen = {name: dict(getattr(est, "chosen_params_", {})) for name, est in fitted}
        self.candidates_ = self._fit_candidates(X, y, seed, used, chosen) if self.refit else [
            (name, est) for name, est in fitted if name in used]  # fmt: skip
        self.items_ = np.asarray(list(dict.fromkeys(
            item for _, est in self.candidates_ for item in _items_of(est).tolist())),
            dtype=object)  # fmt: skip
        return self

    def _row_recalls(self, scores, X, y, items):
        """Recall@k of every row (NaN for a row with no target) of these scores."""
        top = self._top(scores, X, items, self.k).tolist()
        found = [[item for item in row if item is not None] for row in top]  # None: no item
        return recall_at_k_per_row(y, found, self.k)

    def _top(self, scores, X, items, k, exclude=None):
        exclude = self.exclude_seen if exclude is None else exclude
        scores = np.array(scores, dtype=np.float64)
        if exclude:
            scores[_membership(X, items)] = -np.inf
        k = min(k, scores.shape[1])
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        picked = np.take_along_axis(scores, top, axis=1)
        return np.where(np.isfinite(picked), items[top], None)

    def _cross_fitted_recalls(self, features, X, y, items, rng):
        """Per-row Recall@k of the blend on validation customers it did not learn from.

        The validation customers are split in two halves; the weights learned on each half
        score the other. Scoring the blend on the customers it was learned on would favour it
        over the single candidates (which learn nothing there) by its own overfit.
        """
        n_rows = len(X)
        if n_rows < 2:
            coef = self._learn_weights(features, X, y, items)
            return self._row_recalls(features @ coef, X, y, items)
        half = np.zeros(n_rows, dtype=bool)
        half[rng.permutation(n_rows)[: n_rows // 2]] = True
        out = np.empty(n_rows)
        for part in (half, ~half):
            learn, score = np.flatnonzero(~part), np.flatnonzero(part)
            coef = self._learn_weights(features[learn], [X[i] for i in learn],
                                       [y[i] for i in learn], items)  # fmt: skip
            out[score] = self._row_recalls(features[score] @ coef, [X[i] for i in score],
                                           [y[i] for i in score], items)  # fmt: skip
        return out

    def _learn_weights(self, features, X, y, items):
        """Non-negative candidate weights that maximise Recall@k on these rows.

        Coordinate ascent from the best single candidate (weight 1): each other candidate's
        weight is tried on :data:`_WEIGHT_GRID` (relative to the best one's) and the value with
        the higher recall kept, for two sweeps. Recall itself is the target (a pointwise model
        of "item in target" spends its fit on items far below the top k); ties keep the
        smaller weight, so a candidate that adds nothing stays at 0.
        """
        pool = _Pool(features, X, y, items, self.n_candidates, self.k, self.exclude_seen)
        n_cand = features.shape[2]
        singles = [pool.recall(np.eye(n_cand)[c]) for c in range(n_cand)]
        best = int(np.argmax(singles))
        weights, score = np.eye(n_cand)[best], singles[best]
        for _ in range(2):
            changed = False
            for c in range(n_cand):
                if c == best:
                    continue
                for value in _WEIGHT_GRID:
                    trial = weights.copy()
                    trial[c] = value
                    trial_score = pool.recall(trial)
                    if trial_score > score + 1e-12:
                        weights, score, changed = trial, trial_score, True
            if not changed:
                break
        return weights / weights.sum()

    # ------------------------------------------------------------------ predicting
    def predict_scores(self, X):
        """Blended score of every item of ``items_`` for every row (higher is better).

        Returns
        -------
        ndarray of shape (n_rows, len(items_))
        """
        check_is_fitted(self, "candidates_")
        X = list(X)
        weights = np.array([self.weights_[name] for name, _ in self.candidates_])
        step = max(1, _BLOCK_CELLS // max(len(self.items_) * len(weights), 1))
        blocks = [self._features(self.candidates_, X[i : i + step], self.items_) @ weights
                  for i in range(0, len(X), step)]  # fmt: skip
        return np.vstack(blocks) if blocks else np.zeros((0, len(self.items_)))

    def predict(self, X, k=None, exclude=None):
        """The ``k`` best items of every row (``k`` defaults to the ``k`` parameter).

        ``exclude`` overrides ``exclude_seen`` for this call.

        Returns
        -------
        ndarray of shape (n_rows, k), dtype object (None where fewer items can be given)
        """
        k = self.k if k is None else k
        k = check_k(k)
        X = list(X)
        return self._top(self.predict_scores(X), X, self.items_, k, exclude)

    def score(self, X, y):
        """Recall@k of :meth:`predict` against ``y``."""
        return recall_at_k(y, self.predict(X), self.k)
