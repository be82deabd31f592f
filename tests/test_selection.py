"""BlendedRecommender: the built-in selection never falls below its best candidate."""

import numpy as np
import pytest
import torch

from sklearn_basemodel.baselines import (
    PersonalFrequencyRecommender,
    PopularityRecommender,
)
from sklearn_basemodel.history_recommender import HistoryRecommender
from sklearn_basemodel.metrics import recall_at_k
from sklearn_basemodel.selection import (
    BlendedRecommender,
    _one_standard_error_choice,
    default_candidates,
)


def _groups(n_users, seed, n_groups=6, size=20):
    """Each customer buys 6-10 items of one of several disjoint groups."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_users):
        g = rng.integers(n_groups)
        n = rng.integers(6, 11)
        rows.append([f"g{g}_{i}" for i in rng.choice(size, size=n, replace=False)])
    return rows


def _repeat_buyers(n_users, seed, n_items=60):
    """Customers re-buy their own few staples; popularity and co-occurrence say little."""
    rng = np.random.default_rng(seed)
    history, future = [], []
    for _ in range(n_users):
        staples = [f"i{i}" for i in rng.choice(n_items, size=3, replace=False)]
        history.append(staples * 3 + [f"i{rng.integers(n_items)}"])
        future.append(list(rng.choice(staples, size=2, replace=False)))
    return history, future


def _test_split(rows, seed):
    rng = np.random.default_rng(seed)
    kept, hidden = [], []
    for row in rows:
        mask = rng.random(len(row)) < 0.2
        mask[0] = True
        kept.append([x for x, m in zip(row, mask) if not m])
        hidden.append([x for x, m in zip(row, mask) if m])
    return kept, hidden


def test_selection_keeps_the_best_candidate_on_held_out_customers():
    train, test = _groups(500, seed=0), _groups(400, seed=1)
    blend = BlendedRecommender(k=5, exclude_seen=True, random_state=0).fit(train)
    best_single = max(v for name, v in blend.validation_scores_.items() if name != "blend")
    # the one-standard-error rule may keep a simpler candidate, never a clearly worse one
    assert blend.validation_scores_[blend.chosen_] >= 0.9 * best_single
    kept, hidden = _test_split(test, seed=2)
    ours = recall_at_k(hidden, blend.predict(kept, k=5), 5)
    singles = {}
    for name, candidate in default_candidates(random_state=0):
        candidate.set_params(exclude_seen=True).fit(train)
        singles[name] = recall_at_k(hidden, candidate.predict(kept, k=5), 5)
    assert ours >= max(singles.values()) - 0.02
    assert ours > 2 * singles["popularity"]


def test_selection_follows_the_data_to_the_customers_own_history():
    history, future = _repeat_buyers(600, seed=0)
    candidates = [("popularity", PopularityRecommender()),
                  ("own_history", PersonalFrequencyRecommender())]  # fmt: skip
    blend = BlendedRecommender(candidates, k=2, random_state=0).fit(history, future)
    assert blend.weights_["own_history"] > 0
    assert blend.validation_scores_["own_history"] > blend.validation_scores_["popularity"]
    test_history, test_future = _repeat_buyers(200, seed=1)
    popularity = PopularityRecommender().fit(history, future).score(test_history, test_future, k=2)
    # two of three equally frequent staples, two of which are bought next: 2/3 is the best
    assert blend.score(test_history, test_future) > 0.6 > 3 * popularity


def test_default_candidates_end_with_the_learned_recommender():
    candidates = default_candidates(random_state=7)
    names = [name for name, _ in candidates]
    assert names == ["popularity", "own_history", "item_knn", "ease", "sketch"]
    learned = candidates[-1][1]
    assert isinstance(learned, HistoryRecommender) and learned.random_state == 7
    # fresh, unfitted estimators on every call
    assert default_candidates(random_state=7)[-1][1] is not learned


def test_same_random_state_same_choice_and_the_learned_candidate():
    rows = _groups(300, seed=3)
    # the default candidates, the learned one made small
    candidates = [(name, estimator) for name, estimator in default_candidates(random_state=0)
                  if name != "sketch"] + [(
        "sketch", HistoryRecommender(n_components=8, n_sketches=4, sketch_dim=8, hidden_units=16,
                                     max_epochs=2, random_state=0),
    )]  # fmt: skip
    a = BlendedRecommender(candidates, k=5, random_state=0).fit(rows)
    b = BlendedRecommender(candidates, k=5, random_state=0).fit(rows)
    assert a.validation_scores_ == b.validation_scores_ and a.weights_ == b.weights_
    np.testing.assert_array_equal(a.predict(rows[:20]), b.predict(rows[:20]))
    assert set(a.validation_scores_) == {"popularity", "own_history", "item_knn", "ease", "sketch",
                                         "blend"}


@pytest.mark.parametrize(
    "params, y, error",
    [
        ({"candidates": []}, None, "non-empty"),
        ({"candidates": [("a", PopularityRecommender()), ("a", PopularityRecommender())]}, None,
         "unique"),
        ({}, [["x"]], "one per row"),
        ({"validation_fraction": 0.999}, None, "cannot be split"),
    ],
)  # fmt: skip
def test_errors(params, y, error):
    with pytest.raises(ValueError, match=error):
        BlendedRecommender(random_state=0, **params).fit(_groups(20, seed=0), y)


def test_predict_checks_k():
    blend = BlendedRecommender(k=3, random_state=0).fit(_groups(60, seed=0))
    with pytest.raises(ValueError, match="positive integer"):
        blend.predict([["g0_1"]], k=0)


def test_one_standard_error_rule_keeps_the_simpler_of_two_close_candidates():
    rng = np.random.default_rng(0)
    base = rng.random(400)
    noise = rng.normal(0, 0.2, size=400)
    close = {"simple": base, "complex": base + 0.002 + noise}  # gain far inside its noise
    assert close["complex"].mean() > close["simple"].mean()
    assert _one_standard_error_choice(close) == "simple"
    clear = {"simple": base, "complex": base + 0.1 + noise}
    assert _one_standard_error_choice(clear) == "complex"
    # rows without a target (NaN) are left out of every comparison
    with_gaps = {"simple": np.r_[base, np.nan], "complex": np.r_[base + 0.1 + noise, 5.0]}
    assert _one_standard_error_choice(with_gaps) == "complex"



# --------------------------------------------------------------------------- HistoryRecommender
def _small_history_model(**params):
    return HistoryRecommender(n_components=8, n_sketches=4, sketch_dim=8, hidden_units=16,
                              random_state=0, **params)  # fmt: skip


def test_history_recommender_validates_on_whole_held_out_customers():
    """Pairs drawn from one customer share most items: all of a held-out customer's pairs
    validate, none of them trains."""
    rows = [row for row in _groups(200, seed=4) if len(set(row)) >= 2]
    model = _small_history_model(max_epochs=3).fit(rows)
    held_out = model.validation_rows_
    assert len(held_out) == len(rows) // 10 and len(set(held_out.tolist())) == len(held_out)
    # every row has two or more items, so each of the 2 draws makes one pair per row, in order
    expected = np.sort(np.concatenate([held_out, held_out + len(rows)]))
    np.testing.assert_array_equal(np.sort(model.model_.train_split.valid), expected)
    # the hold-out drove early stopping and chose the item prior's strength
    assert np.isfinite(model.model_.history[-1, "valid_loss"])
    assert set(model.model_.item_prior_scores_) == {0.0, 0.5, 1.0}


def test_history_recommender_without_enough_customers_trains_every_epoch():
    rows = [["a", "b", "c"], ["b", "c", "d"], ["a", "d"], ["c", "e", "a"], ["e", "b"]]
    model = _small_history_model(max_epochs=3).fit(rows)
    assert len(model.validation_rows_) == 0
    assert len(model.model_.history) == 3
    assert model.model_.item_prior_scores_ is None and model.model_.item_prior_strength_ == 0.0


def test_history_recommender_lets_its_hold_out_choose_the_epochs():
    """max_epochs="auto": up to 50 epochs with the customers' hold-out, 10 without one."""
    rows = [row for row in _groups(200, seed=4) if len(set(row)) >= 2]
    assert HistoryRecommender().max_epochs == "auto"
    validated = _small_history_model().fit(rows)
    assert validated.model_.max_epochs_ == 50
    assert len(validated.model_.history) < 50  # early stopping ended it
    few = [["a", "b", "c"], ["b", "c", "d"], ["a", "d"], ["c", "e", "a"], ["e", "b"]]
    unvalidated = _small_history_model().fit(few)
    assert unvalidated.model_.max_epochs_ == 10 and len(unvalidated.model_.history) == 10


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_history_recommender_passes_its_device_to_cleora_and_the_network(monkeypatch):
    rows = [row for row in _groups(200, seed=4) if len(set(row)) >= 2]
    with pytest.raises(ValueError, match="device='cuda'"):  # Cleora's clear error
        _small_history_model(device="cuda", max_epochs=1).fit(rows)
    # past Cleora (propagated on the CPU here), the network gets the device too
    from sklearn_basemodel.embed.cleora import estimator

    seen = {}
    original = estimator.propagate

    def on_cpu(*args, device="cpu", **kwargs):
        seen["cleora"] = device
        return original(*args, device="cpu", **kwargs)

    monkeypatch.setattr(estimator, "propagate", on_cpu)
    monkeypatch.setattr(estimator, "check_device", lambda device: device)
    with pytest.raises(ValueError, match="CUDA is not available"):
        _small_history_model(device="cuda:0", max_epochs=1).fit(rows)
    assert seen["cleora"] == "cuda:0"  # the network's own GPU, not merely the current one


def test_history_recommender_sizes_its_sketches_from_the_items():
    from sklearn_basemodel.recipes import sketch_dim_for

    # 4,000 items: "auto" is 128 buckets (64 up to 3,200 items)
    rng = np.random.default_rng(5)
    rows = [[f"i{j}" for j in rng.choice(4_000, 8, replace=False)] for _ in range(2_000)]
    model = HistoryRecommender(n_components=8, n_sketches=2, hidden_units=8, max_epochs=1,
                               random_state=0).fit(rows)  # fmt: skip
    n_items = len(model.embedder_.entity_vectors()[0])
    assert model.sketcher_.sketch_dim == sketch_dim_for(n_items) == 128
    fixed = HistoryRecommender(n_components=8, n_sketches=2, sketch_dim=32, hidden_units=8,
                               max_epochs=1, random_state=0).fit(rows)  # fmt: skip
    assert fixed.sketcher_.sketch_dim == 32


def test_refit_reuses_the_l2_that_ease_chose_instead_of_searching_again():
    from sklearn_basemodel.baselines import EASERecommender

    rows = _groups(300, seed=6)
    searched = EASERecommender(random_state=0).fit(rows)
    assert searched.chosen_params_ == {"l2": searched.l2_}
    assert EASERecommender(l2=5.0).fit(rows).chosen_params_ == {}

    model = BlendedRecommender([("ease", EASERecommender(random_state=0))], k=5,
                               random_state=0).fit(rows)  # fmt: skip
    (name, refit), = model.candidates_
    assert name == "ease"
    assert refit.l2 is not None and refit.l2_ == refit.l2  # given, not searched
    assert not hasattr(refit, "l2_scores_")
    # the value given is the one the search chose on the training customers
    kept = BlendedRecommender([("ease", EASERecommender(random_state=0))], k=5, refit=False,
                              random_state=0).fit(rows)  # fmt: skip
    assert refit.l2 == kept.candidates_[0][1].l2_
