"""Fine-tuning that never hurts (issue 10): pretrained trunk vs training from scratch.

Generated customers have one of four tastes; their history is four items of their taste and the
next basket three more (the self-supervised pretraining task). Two churn-like labels are planted:
``taste`` (which taste a customer has, what the pretrained trunk knows) and ``lapse`` (whether the
history holds one of the first three items of the taste, a detail the next-basket task does not
need). Trunks: ``good`` (pretrained on the next baskets), ``shuffled`` (pretrained on baskets of
other customers: useless) and ``collapsed`` (the good trunk with its first BatchNorm zeroed: the
same output for every row, so the head alone can learn nothing).
"""

import copy

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import roc_auc_score

from sklearn_basemodel import EMDESketcher, RandomVectorEmbedder
from sklearn_basemodel.nn import SketchClassifier, SketchRecommender

N_TASTES, PER_TASTE = 4, 10
ITEMS = np.array([f"t{t}_i{i}" for t in range(N_TASTES) for i in range(PER_TASTE)])
LAPSING = ("_i0", "_i1", "_i2")
NET = {"hidden_units": 64, "n_blocks": 1, "batch_size": 32, "random_state": 0}
PRETRAIN, LABELLED, TEST = slice(0, 1200), slice(1200, 1400), slice(1500, 2000)
# The documented recipe: freeze the trunk for a few epochs, early stopping on a held-out quarter.
FINE_TUNE = dict(max_epochs=30, early_stopping=True, n_iter_no_change=3, validation_fraction=0.25,
                 freeze_epochs=5, **NET)  # fmt: skip


def make_customers(n, seed):
    """History and next basket of ``n`` customers, with their two planted labels."""
    rng = np.random.default_rng(seed)
    taste = rng.integers(0, N_TASTES, n)
    history, future = [], []
    for t in taste:
        own = ITEMS[t * PER_TASTE : (t + 1) * PER_TASTE]
        history.append(rng.choice(own, size=4, replace=False).tolist())
        future.append(sorted(set(rng.choice(own, size=3).tolist())))
    noise = np.random.default_rng(seed + 1).random(n) < 0.1
    labels = {
        "taste": (np.isin(taste, [0, 3]) ^ noise).astype(int),
        "lapse": np.array([any(i.endswith(LAPSING) for i in row) for row in history], dtype=int),
    }
    return history, future, labels


def make_trunks(n=2000, seed=0):
    """Sketches of the histories, the labels, and the three pretrained trunks."""
    history, future, labels = make_customers(n, seed)
    sketcher = EMDESketcher(
        RandomVectorEmbedder(8, random_state=0), n_sketches=4, sketch_dim=16, random_state=0
    ).fit([[str(i)] for i in ITEMS])
    X = sketcher.transform(history)
    target = FrozenEstimator(sketcher)
    pretrain = dict(max_epochs=8, **NET)
    good = SketchRecommender(target, lr=3e-3, **pretrain).fit(X[PRETRAIN], future[PRETRAIN])
    others = np.random.default_rng(seed + 2).permutation(PRETRAIN.stop)
    shuffled = SketchRecommender(target, lr=3e-2, **pretrain).fit(
        X[PRETRAIN], [future[i] for i in others]
    )
    collapsed = copy.deepcopy(good)
    torch.nn.init.zeros_(collapsed.module_.trunk[1].weight)
    torch.nn.init.zeros_(collapsed.module_.trunk[1].bias)
    trunks = {"good": good, "shuffled": shuffled, "collapsed": collapsed}
    return X, labels, {name: FrozenEstimator(model) for name, model in trunks.items()}


@pytest.fixture(scope="module")
def customers():
    return make_trunks()


def _auc(model, X, y):
    return roc_auc_score(y[TEST], model.predict_proba(X[TEST])[:, 1])


def _trunk_weights(module):
    """The trunk's parameters (not BatchNorm's running statistics, which move even when frozen)."""
    return {n: p.detach().clone() for n, p in module.trunk.named_parameters()}


@pytest.mark.parametrize(
    "label, trunk, lr",
    [
        ("taste", "good", 3e-3),  # pretraining helps
        ("lapse", "good", 1e-2),  # the trunk must train: restoring a frozen epoch lost AUC .4
        ("lapse", "shuffled", 3e-3),  # a useless trunk
        ("lapse", "collapsed", 3e-3),  # a trunk that hides every input from the head
    ],
)
def test_fine_tuning_scores_at_least_as_well_as_training_from_scratch(customers, label, trunk, lr):
    X, labels, trunks = customers
    y = labels[label]
    tuned = SketchClassifier(pretrained=trunks[trunk], **{**FINE_TUNE, "lr": lr})
    tuned.fit(X[LABELLED], y[LABELLED])
    params = {k: v for k, v in FINE_TUNE.items() if k != "freeze_epochs"}
    scratch = SketchClassifier(**params, lr=lr).fit(X[LABELLED], y[LABELLED])
    assert _auc(tuned, X, y) >= _auc(scratch, X, y) - 0.01


def test_early_stopping_never_restores_an_epoch_with_a_frozen_trunk(customers):
    X, labels, trunks = customers
    y = labels["lapse"]
    params = {**FINE_TUNE, "lr": 1e-2, "pretrained_fallback": False}
    tuned = SketchClassifier(pretrained=trunks["good"], **params).fit(X[LABELLED], y[LABELLED])
    stopper = dict(tuned.callbacks_)["early_stopping"]
    frozen = FINE_TUNE["freeze_epochs"]
    # the validation loss of the frozen epochs is neither a checkpoint nor a miss
    assert stopper.best_epoch_ > frozen
    assert len(tuned.history) >= frozen + FINE_TUNE["n_iter_no_change"]
    pretrained = _trunk_weights(trunks["good"].estimator.module_)
    restored = _trunk_weights(tuned.module_)
    assert not all(torch.equal(restored[name], pretrained[name]) for name in pretrained)


def test_the_fallback_keeps_the_start_with_the_lower_validation_loss(customers):
    X, labels, trunks = customers
    y = labels["taste"]
    rows = (X[LABELLED], y[LABELLED])
    params = {**FINE_TUNE, "max_epochs": 6, "lr": 3e-3}
    scratch = SketchClassifier(**{k: v for k, v in params.items() if k != "freeze_epochs"})
    scratch.fit(*rows)
    for trunk, kept, warm_start in (("good", True, False), ("collapsed", False, True)):
        # (warm_start only continues later fits: this first fit still trains both starts anew)
        chosen = SketchClassifier(pretrained=trunks[trunk], warm_start=warm_start, **params)
        chosen.fit(*rows)
        losses = chosen.fallback_valid_losses_
        assert chosen.pretrained_kept_ is kept
        assert (losses["pretrained"] < losses["scratch"]) is kept
        # the kept network is exactly the one trained from that start on the same split
        alone = SketchClassifier(pretrained=trunks[trunk], pretrained_fallback=False, **params)
        expected = alone.fit(*rows) if kept else scratch
        np.testing.assert_allclose(
            chosen.predict_proba(X[TEST]), expected.predict_proba(X[TEST]), rtol=1e-5, atol=1e-6
        )
    # without pretrained there is nothing to fall back from
    assert scratch.pretrained_kept_ is False and scratch.fallback_valid_losses_ is None


def test_a_bare_pretrained_network_is_taken_over_and_survives_clone(customers):
    X, labels, trunks = customers
    network = trunks["good"].estimator.module_  # a ResidualSketchNet, not an estimator
    params = {"pretrained": network, "freeze_epochs": 2, "max_epochs": 2,
              "pretrained_fallback": False}  # fmt: skip
    model = clone(SketchClassifier(**params, **NET)).fit(X[LABELLED], labels["taste"][LABELLED])
    pretrained = _trunk_weights(network)
    taken_over = _trunk_weights(model.module_)
    assert all(torch.equal(taken_over[name], pretrained[name]) for name in pretrained)
    assert model.module_ is not network and model.pretrained_kept_


def test_the_kept_start_keeps_its_own_history():
    """With the pretrained start kept, history_ is that run's, not the from-scratch run's."""
    rng = np.random.default_rng(0)
    X = rng.random((120, 6)).astype(np.float32)
    y = (X[:, 0] > 0.5).astype(int)
    from sklearn.frozen import FrozenEstimator

    from sklearn_basemodel import SketchClassifier

    base = SketchClassifier(hidden_units=8, n_blocks=1, max_epochs=3, random_state=0).fit(X, y)
    tuned = SketchClassifier(pretrained=FrozenEstimator(base), max_epochs=4, hidden_units=8,
                             n_blocks=1, random_state=0).fit(X, y)  # fmt: skip
    kept = "pretrained" if tuned.pretrained_kept_ else "scratch"
    assert len(tuned.history_) == 4
    final = tuned.history_[-1]["valid_loss"]
    assert final == pytest.approx(tuned.fallback_valid_losses_[kept], rel=1e-4) or \
        min(h["valid_loss"] for h in tuned.history_) == pytest.approx(
            tuned.fallback_valid_losses_[kept], rel=1e-4)
