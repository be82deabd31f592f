"""The ``device="cuda"`` paths against the CPU (skipped without a GPU; run on a GPU machine).

The same weights must give the same outputs on both devices (a network trained on one is moved
to the other). Training itself is compared by what it learned, and by its reproducibility on
the GPU: the two devices round differently, and Adam's per-weight normalisation turns those
differences into different weights within a few epochs (seen on an H200: probabilities .05
apart after 4 epochs without dropout), so equal weights across devices are not expected.
"""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.frozen import FrozenEstimator

from sklearn_basemodel import CleoraEmbedder, EMDESketcher, RandomVectorEmbedder
from sklearn_basemodel.history_recommender import HistoryRecommender
from sklearn_basemodel.metrics import recall_at_k
from sklearn_basemodel.nn import SketchClassifier, SketchRecommender
from sklearn_basemodel.nn.streaming import BatchStream
from sklearn_basemodel.recipes import fine_tune_recommender
from sklearn_basemodel.universal_profile import UniversalProfile

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

NET = dict(hidden_units=32, n_blocks=1, batch_size=32, lr=1e-2, random_state=0)
TASTES, PER_TASTE = 4, 10
ITEMS = [f"t{t}_i{i}" for t in range(TASTES) for i in range(PER_TASTE)]


def _shop(n, seed):
    """Customers of one of four tastes: four items of history, three of the next basket."""
    rng = np.random.default_rng(seed)
    taste = rng.integers(0, TASTES, n)
    own = [ITEMS[t * PER_TASTE : (t + 1) * PER_TASTE] for t in taste]
    history = [rng.choice(items, 4, replace=False).tolist() for items in own]
    future = [rng.choice(items, 3, replace=False).tolist() for items in own]
    return history, future


@pytest.fixture(scope="module")
def shop():
    history, future = _shop(500, seed=0)
    sketcher = EMDESketcher(RandomVectorEmbedder(8, random_state=0), n_sketches=4, sketch_dim=16,
                            random_state=0).fit([[item] for item in ITEMS])  # fmt: skip
    return sketcher.transform(history), future, sketcher


def _blobs(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = (rng.random((n, 12)) * (rng.random((n, 12)) < 0.5)).astype(np.float32)
    return X, (X[:, 0] > X[:, 1]).astype(int)


def _moved(model, device):
    """A copy of a fitted network on ``device`` (the same weights)."""
    copy = pickle.loads(pickle.dumps(model))
    copy.set_params(device=device)
    copy.module_.to(device)
    return copy


def _device_of(model):
    return next(model.module_.parameters()).device.type


# --------------------------------------------------------------------------- networks
def test_classifier_on_the_gpu_reproduces_and_moves_to_the_cpu():
    X, y = _blobs()
    params = dict(max_epochs=4, **NET)
    gpu = SketchClassifier(device="cuda", **params).fit(X, y)
    assert _device_of(gpu) == "cuda"
    # the same seed, the same GPU training
    again = SketchClassifier(device="cuda", **params).fit(X, y)
    np.testing.assert_allclose(again.predict_proba(X), gpu.predict_proba(X), atol=1e-5)
    # the trained GPU model, moved to the CPU, predicts what it predicted on the GPU
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(_moved(gpu, "cpu").predict_proba(X), gpu.predict_proba(X),
                                   atol=1e-5)  # fmt: skip


def test_default_dropout_learns_as_well_on_the_gpu():
    X, y = _blobs()
    X_test, y_test = _blobs(seed=1)
    gpu = SketchClassifier(device="cuda", max_epochs=10, **NET).fit(X, y)
    cpu = SketchClassifier(max_epochs=10, **NET).fit(X, y)
    gpu_score, cpu_score = gpu.score(X_test, y_test), cpu.score(X_test, y_test)
    assert gpu_score > 0.85
    assert abs(gpu_score - cpu_score) < 0.05


def test_recommender_trains_scores_and_embeds_on_the_gpu(shop):
    X, future, sketcher = shop
    params = dict(k=5, max_epochs=4, early_stopping=True, **NET)
    gpu = SketchRecommender(FrozenEstimator(sketcher), device="cuda", **params).fit(X, future)
    assert _device_of(gpu) == "cuda"
    # the same weights on the CPU: the same scores, embedding and held-out loss
    cpu = _moved(gpu, "cpu")
    np.testing.assert_allclose(gpu.predict_scores(X), cpu.predict_scores(X), atol=1e-4)
    np.testing.assert_allclose(gpu.embed(X), cpu.embed(X), atol=1e-4)
    assert gpu.held_out_loss(X, future) == pytest.approx(cpu.held_out_loss(X, future), rel=1e-5)
    # trained on the CPU from the same seed: as good
    trained_on_cpu = SketchRecommender(FrozenEstimator(sketcher), **params).fit(X, future)
    gpu_recall = recall_at_k(future, gpu.predict(X), k=5)
    assert gpu_recall > 0.4  # at random: .125
    assert abs(gpu_recall - recall_at_k(future, trained_on_cpu.predict(X), k=5)) < 0.05


def test_fine_tuning_on_the_gpu(shop):
    X, future, sketcher = shop
    params = dict(k=5, max_epochs=3, early_stopping=True, **NET)
    gpu = SketchRecommender(FrozenEstimator(sketcher), device="cuda", **params)
    gpu.fit(X[:250], future[:250])
    before = gpu.predict_scores(X[:20])
    tuned = fine_tune_recommender(gpu, X[250:], future[250:])
    assert _device_of(tuned) == "cuda"
    np.testing.assert_array_equal(gpu.predict_scores(X[:20]), before)  # left as it was
    losses = tuned.fine_tuning_losses_
    assert losses[tuned.fine_tuning_lr_] == min(losses.values())
    # the kept copy's loss, scored again, and the unchanged network's, scored on the CPU
    assert tuned.held_out_loss(X[250:], future[250:]) == pytest.approx(
        losses[tuned.fine_tuning_lr_], rel=1e-5
    )
    assert _moved(gpu, "cpu").held_out_loss(X[250:], future[250:]) == pytest.approx(
        losses[0.0], rel=1e-5
    )


def test_stream_training_on_the_gpu():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(640, 8)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)
    chunks = [(X[i : i + 40], y[i : i + 40], np.arange(i, i + 40)) for i in range(0, 640, 40)]
    params = dict(max_epochs=10, early_stopping=False, device="cuda", **NET)
    streamed = SketchClassifier(**params).fit(BatchStream(chunks, shuffle_buffer=160))
    in_memory = SketchClassifier(**params).fit(X, y)
    assert _device_of(streamed) == "cuda"
    X_test = rng.normal(size=(400, 8)).astype(np.float32)
    y_test = (X_test[:, 0] + 0.5 * X_test[:, 1] > 0).astype(np.int64)
    assert streamed.score(X_test, y_test) > 0.85
    assert abs(streamed.score(X_test, y_test) - in_memory.score(X_test, y_test)) < 0.06
    batches = list(streamed.predict_stream(BatchStream(chunks)))
    np.testing.assert_array_equal(np.concatenate([keys for keys, _ in batches]), np.arange(640))
    np.testing.assert_array_equal(np.concatenate([p for _, p in batches]), streamed.predict(X))


def test_explanations_on_the_gpu_match_the_cpu():
    X, y = _blobs()
    gpu = SketchClassifier(device="cuda", max_epochs=3, **NET).fit(X, y)
    cpu = _moved(gpu, "cpu")
    for method in ("integrated_gradients", "gradient_x_input"):
        on_gpu = gpu.explain(X[:10], method=method).attributions
        on_cpu = cpu.explain(X[:10], method=method).attributions
        np.testing.assert_allclose(on_gpu, on_cpu, rtol=1e-3, atol=1e-5)


def test_universal_profile_of_a_gpu_trunk(shop):
    X, future, sketcher = shop
    gpu = SketchRecommender(FrozenEstimator(sketcher), device="cuda", max_epochs=2, **NET)
    gpu.fit(X, future)
    on_gpu = UniversalProfile(gpu, n_components=4, passthrough=None).fit_transform(X)
    on_cpu = UniversalProfile(_moved(gpu, "cpu"), n_components=4, passthrough=None).fit_transform(X)
    # principal components are defined up to their sign
    signs = np.sign(np.sum(on_gpu * on_cpu, axis=0))
    np.testing.assert_allclose(on_gpu, on_cpu * signs, atol=1e-3)


# --------------------------------------------------------------------------- Cleora
@pytest.mark.parametrize("propagation", ["left", "symmetric"])
@pytest.mark.parametrize("n_iter", [3, [1, 2]])
def test_cleora_on_the_gpu_equals_the_cpu(propagation, n_iter):
    history, future = _shop(300, seed=2)
    rows = history + future
    params = dict(n_components=16, n_iter=n_iter, propagation=propagation, random_state=0)
    gpu = CleoraEmbedder(device="cuda", **params).fit(rows)
    cpu = CleoraEmbedder(**params).fit(rows)
    assert gpu.vocabulary_.equals(cpu.vocabulary_)
    np.testing.assert_allclose(gpu.embeddings_, cpu.embeddings_, atol=1e-5)


def test_history_recommender_on_the_gpu():
    history, future = _shop(400, seed=3)
    params = dict(n_components=16, n_sketches=4, sketch_dim=16, hidden_units=64, random_state=0)
    gpu = HistoryRecommender(device="cuda", **params).fit(history, future)
    cpu = HistoryRecommender(**params).fit(history, future)
    assert _device_of(gpu.model_) == "cuda"
    np.testing.assert_allclose(gpu.embedder_.embeddings_, cpu.embedder_.embeddings_, atol=1e-5)
    test_history, test_future = _shop(200, seed=4)
    gpu_recall = recall_at_k(test_future, gpu.predict(test_history, k=5), k=5)
    cpu_recall = recall_at_k(test_future, cpu.predict(test_history, k=5), k=5)
    assert gpu_recall > 0.4  # at random: .125; .52 on the CPU
    assert abs(gpu_recall - cpu_recall) < 0.08
