"""Streaming training and scoring: BatchStream, the estimators' fit(stream) / predict_stream,
and the warehouse's bounded batch reader and writer."""

import tracemalloc
import weakref
from collections import Counter

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import log_loss

from sklearn_basemodel import EMDESketcher, RandomVectorEmbedder
from sklearn_basemodel.metrics import recall_at_k
from sklearn_basemodel.nn import SketchClassifier, SketchRecommender, SketchRegressor
from sklearn_basemodel.nn.streaming import BatchStream, _held_out
from sklearn_basemodel.warehouse.batches import WarehouseBatches, write_predictions

NET = {"hidden_units": 16, "n_blocks": 1, "batch_size": 32, "lr": 1e-2, "random_state": 0}


def _rows(n_rows, seed):
    """A learnable binary task: the label is the sign of a linear function of X."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, 8)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)
    return X, y


def _chunks(X, y, size, keys=None):
    keys = np.arange(len(X)) if keys is None else keys
    return [(X[i : i + size], y[i : i + size], keys[i : i + size]) for i in range(0, len(X), size)]


# --------------------------------------------------------------------------- training
@pytest.mark.parametrize("Estimator", [SketchClassifier, SketchRegressor])
def test_stream_fit_scores_like_in_memory_fit(Estimator):
    X, y = _rows(640, seed=0)
    X_test, y_test = _rows(400, seed=1)
    if Estimator is SketchRegressor:  # a continuous target of the same rows
        y = X[:, 0] * 3.0 + 10.0
        y_test = X_test[:, 0] * 3.0 + 10.0
    # the same training on both sides: no hold-out ("auto" would hold one out of the stream)
    params = {**NET, "max_epochs": 15, "early_stopping": False}
    in_memory = Estimator(**params).fit(X, y)
    streamed = Estimator(**params).fit(BatchStream(_chunks(X, y, 40), shuffle_buffer=160))

    memory_score = in_memory.score(X_test, y_test)
    stream_score = streamed.score(X_test, y_test)
    assert memory_score > 0.85
    assert stream_score > 0.85
    assert abs(stream_score - memory_score) < 0.06
    # every training row seen once per epoch
    assert sum(streamed.history_[-1, "batches", :, "train_batch_size"]) == len(X)


def test_stream_targets_stay_with_their_rows():
    """Shuffling moves features and targets together: a network fitted on a stream whose
    targets were attached to other rows learns nothing."""
    X, y = _rows(640, seed=0)
    X_test, y_test = _rows(400, seed=1)
    shifted = BatchStream(_chunks(X, np.roll(y, 1), 40), shuffle_buffer=160)
    assert SketchClassifier(**NET, max_epochs=15).fit(shifted).score(X_test, y_test) < 0.7


def test_validation_slice_is_disjoint_stable_and_seeded():
    X, y = _rows(1000, seed=0)
    X[:, 0] = np.arange(len(X))  # the row's key, readable from what the parts yield
    stream = BatchStream(_chunks(X, y, 64))

    def ids(part):
        return np.concatenate([Xb[:, 0] for Xb, _ in part]).astype(int)

    train, valid = stream.split(0.2, seed=7)
    train_ids, valid_ids = ids(train), ids(valid)
    assert not set(train_ids) & set(valid_ids)
    assert sorted(np.concatenate([train_ids, valid_ids]).tolist()) == list(range(len(X)))
    assert 0.15 < len(valid_ids) / len(X) < 0.25
    np.testing.assert_array_equal(ids(valid), valid_ids)  # same slice on the next pass
    assert set(ids(stream.split(0.2, seed=8)[1])) != set(valid_ids)


def test_estimator_validates_on_the_held_out_rows():
    X, y = _rows(800, seed=0)
    stream = BatchStream(_chunks(X, y, 50), shuffle_buffer=200)
    clf = SketchClassifier(**NET, max_epochs=2, validation_fraction=0.25).fit(stream)
    _, valid_part = stream.split(0.25, seed=clf._seed_)
    n_valid = sum(len(Xb) for Xb, _ in valid_part)
    for epoch in range(2):
        batches = clf.history_[epoch, "batches"]
        assert sum(b["train_batch_size"] for b in batches if "train_batch_size" in b) == len(
            X
        ) - n_valid
        assert sum(b["valid_batch_size"] for b in batches if "valid_batch_size" in b) == n_valid
    assert 0.15 < n_valid / len(X) < 0.35


def test_early_stopping_on_a_stream():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 8)).astype(np.float32)
    y = rng.integers(0, 2, len(X))  # noise: the validation loss soon stops improving
    clf = SketchClassifier(
        **{**NET, "lr": 3e-2}, max_epochs=60, early_stopping=True, n_iter_no_change=3
    ).fit(BatchStream(_chunks(X, y, 50)))
    valid_losses = clf.history_[:, "valid_loss"]
    assert len(valid_losses) < 60
    best = int(np.argmin(valid_losses))
    assert len(valid_losses) - 1 - best >= 3  # stopped for lack of improvement


def test_fine_tuning_from_a_stream_compares_both_starts_on_the_held_out_rows(capsys):
    X, y = _rows(400, seed=0)
    pretrained = SketchClassifier(**NET, max_epochs=3).fit(X, y)
    stream = BatchStream(_chunks(X, y, 50))
    clf = SketchClassifier(
        **NET, max_epochs=2, pretrained=FrozenEstimator(pretrained), progress_bar=True
    ).fit(stream)
    losses = clf.fallback_valid_losses_
    assert set(losses) == {"pretrained", "scratch"}
    assert all(np.isfinite(v) for v in losses.values())
    assert clf.pretrained_kept_ == (losses["pretrained"] <= losses["scratch"])
    # the comparison scored the kept network on the stream's held-out rows
    kept = "pretrained" if clf.pretrained_kept_ else "scratch"
    _, valid = stream.split(0.1, seed=clf._seed_)
    X_valid, y_valid = (np.concatenate(part) for part in zip(*valid))
    assert 0 < len(y_valid) < len(y)
    held_out_loss = log_loss(y_valid, clf.predict_proba(X_valid))
    assert held_out_loss == pytest.approx(losses[kept], rel=1e-4)
    assert "it/s" in capsys.readouterr().err  # the progress bar ran over the stream


def test_stream_never_holds_every_batch():
    """Source batches are made on demand and die soon after use, and the numpy memory in use
    at once stays far below the size of the data (4000 rows x 512 float32: 8 MB)."""
    size, n_rows, width, max_alive = 40, 4000, 512, 12
    produced, alive = [0], [0]

    class Tracked(np.ndarray):
        pass

    def source():
        for start in range(0, n_rows, size):
            if alive[0] > max_alive:
                raise AssertionError(f"{alive[0]} source batches alive at once")
            X = np.random.default_rng(start).normal(size=(size, width)).astype(np.float32)
            batch = X.view(Tracked)
            alive[0] += 1
            weakref.finalize(batch, lambda: alive.__setitem__(0, alive[0] - 1))
            produced[0] += 1
            yield batch, (X[:, 0] > 0).astype(np.int64)
            del X, batch

    stream = BatchStream(source, targets=[0, 1], shuffle_buffer=200)
    clf = SketchClassifier(**NET, max_epochs=1, validation_fraction=0.2)
    clf.fit(stream)  # first: one-time allocations (lazy imports) would count as peak memory
    produced[0] = 0
    tracemalloc.start()
    try:
        clf.fit(stream)
        n_predicted = sum(len(p) for _, p in clf.predict_stream(stream))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    data_bytes = n_rows * width * 4
    assert peak < data_bytes / 4, f"peak {peak} bytes for {data_bytes} bytes of data"
    assert n_predicted == n_rows
    # the first batch (input width) + one epoch of training and validation + scoring
    assert produced[0] == 1 + 2 * (n_rows // size) + n_rows // size


def test_stream_targets_default_to_a_sample_and_refuse_one_shot_iterators():
    X, y = _rows(200, seed=0)
    clf = SketchClassifier(**NET, max_epochs=1).fit(BatchStream(_chunks(X, y, 50)))
    np.testing.assert_array_equal(clf.classes_, [0, 1])
    with pytest.raises(TypeError, match="one-shot iterator"):
        SketchClassifier(**NET).fit(BatchStream(iter(_chunks(X, y, 50))))
    with pytest.raises(ValueError, match="y=None"):
        SketchClassifier(**NET).fit(BatchStream(_chunks(X, y, 50)), y)
    with pytest.raises(ValueError, match="labels not seen in fit"):
        SketchClassifier(**NET).fit(BatchStream(_chunks(X, y, 50), targets=[0, 2]))


# --------------------------------------------------------------------------- scoring
def test_predict_stream_equals_predict_on_all_rows():
    X, y = _rows(500, seed=0)
    keys = np.arange(1000, 1500)[::-1]
    stream = BatchStream(_chunks(X, y, 64, keys=keys))
    clf = SketchClassifier(**NET, max_epochs=3).fit(stream)
    pairs = list(clf.predict_stream(stream, "predict_proba"))
    np.testing.assert_array_equal(np.concatenate([k for k, _ in pairs]), keys)
    np.testing.assert_allclose(
        np.concatenate([p for _, p in pairs]), clf.predict_proba(X), rtol=1e-5, atol=1e-6
    )
    labels = np.concatenate([p for _, p in clf.predict_stream(stream)])
    np.testing.assert_array_equal(labels, clf.predict(X))


def _shop(n_customers, seed):
    rng = np.random.default_rng(seed)
    items = np.array([f"t{t}_i{i}" for t in range(4) for i in range(8)])
    taste = rng.integers(0, 4, n_customers)
    history = [rng.choice(items[t * 8 : t * 8 + 8], 4, replace=False).tolist() for t in taste]
    future = [sorted(set(rng.choice(items[t * 8 : t * 8 + 8], 2).tolist())) for t in taste]
    frame = pd.DataFrame({"customer": np.arange(n_customers), "history": history,
                          "future": future})
    return frame, items


def test_recommender_streams_sketched_frames():
    frame, items = _shop(480, seed=0)
    test, _ = _shop(200, seed=1)
    sketcher = EMDESketcher(RandomVectorEmbedder(8, random_state=0), n_sketches=4,
                            sketch_dim=16, random_state=0).fit([[i] for i in items])
    frames = [frame.iloc[i : i + 60] for i in range(0, len(frame), 60)]
    stream = BatchStream(frames, features="history", target="future", key="customer",
                         transform=sketcher, shuffle_buffer=120)
    params = {**NET, "max_epochs": 15, "k": 4, "validation_fraction": 0.2}
    rec = SketchRecommender(FrozenEstimator(sketcher), **params).fit(stream)
    in_memory = SketchRecommender(FrozenEstimator(sketcher), **params).fit(
        sketcher.transform(frame["history"]), frame["future"]
    )
    X_test = sketcher.transform(test["history"])
    stream_recall = recall_at_k(test["future"], rec.predict(X_test), k=4)
    memory_recall = recall_at_k(test["future"], in_memory.predict(X_test), k=4)
    assert stream_recall > 0.35, (stream_recall, memory_recall)  # chance: 4 / 32
    assert abs(stream_recall - memory_recall) < 0.08, (stream_recall, memory_recall)
    # the item prior is learned from the stream's rows, as it would be from the same rows held
    # in memory by the same network
    # (those held out by the stream's key hash choose its strength, as in memory)
    streamed = rec.item_prior_.copy(), rec.item_prior_strength_, rec.item_prior_scores_
    assert set(streamed[2]) == {0.0, 0.5, 1.0}
    held_out = _held_out(frame["customer"].to_numpy(), rec._validation_fraction(), rec._seed_)
    rec._held_out_rows_ = np.flatnonzero(held_out)
    rec._fit_item_prior(sketcher.transform(frame["history"]), frame["future"].tolist())
    np.testing.assert_allclose(streamed[0], rec.item_prior_, rtol=1e-5, atol=1e-5)
    assert (rec.item_prior_strength_, rec.item_prior_scores_) == streamed[1:]
    assert np.ptp(streamed[0]) > 0.1  # not a constant: it tells items apart

    scoring = BatchStream([test.iloc[:120], test.iloc[120:]], features="history",
                          key="customer", transform=sketcher)
    pairs = list(rec.predict_stream(scoring, columns={"history": "history"}, k=3))
    np.testing.assert_array_equal(np.concatenate([k for k, _ in pairs]), test["customer"])
    np.testing.assert_array_equal(
        np.concatenate([p for _, p in pairs]),
        rec.predict(X_test, history=test["history"].tolist(), k=3),
    )


# --------------------------------------------------------------------------- warehouse
@pytest.fixture
def customers():
    con = duckdb.connect()
    con.execute(
        "create table customer_rows as select i as customer_id, "
        "[i % 7, i % 11, i] as history, (i * 37) % 101 / 101.0 as value "
        "from range(1000) t(i) order by hash(i)"
    )
    yield con
    con.close()


def test_warehouse_batches_read_every_row_exactly_once(customers):
    batches = WarehouseBatches(customers, "customer_rows", batch_size=64, memory_limit="64MB")
    for _ in range(2):  # a second pass reads the same rows again, in the same order
        frames = list(batches)
        assert max(len(f) for f in frames) <= 64 and len(frames) >= 1000 // 64
        rows = pd.concat(frames, ignore_index=True)
        assert Counter(rows["customer_id"].tolist()) == Counter(range(1000))
        for key, history, value in rows.itertuples(index=False):
            assert history == [key % 7, key % 11, key]
            assert value == pytest.approx((key * 37) % 101 / 101.0)
    first = [f["customer_id"].tolist() for f in batches]
    assert first == [f["customer_id"].tolist() for f in frames]
    with pytest.raises(ValueError, match="memory_limit"):
        next(iter(WarehouseBatches(customers, "customer_rows", memory_limit="lots")))
    with pytest.raises(ValueError, match="exactly one"):
        WarehouseBatches(customers).sql()


def test_warehouse_query_and_names_are_not_pasted(customers):
    query = WarehouseBatches(customers, query="select customer_id from customer_rows "
                             "where customer_id < ? order by customer_id", params=[5])
    assert pd.concat(list(query))["customer_id"].tolist() == [0, 1, 2, 3, 4]
    hostile = WarehouseBatches(customers, 'customer_rows; drop table customer_rows')
    with pytest.raises(duckdb.CatalogException):
        list(hostile)
    assert customers.execute("select count(*) from customer_rows").fetchone()[0] == 1000


def test_stream_from_the_warehouse_and_predictions_written_back(customers):
    """Train from DuckDB batches, score, write back: one prediction row per customer, with
    the prediction of that very customer, while the reader streams on the same connection."""
    batches = WarehouseBatches(customers, "customer_rows", batch_size=100)
    stream = BatchStream(batches, features=["value"], target="value", key="customer_id")
    reg = SketchRegressor(**NET, max_epochs=3).fit(stream)
    written = write_predictions(customers, "scores", reg.predict_stream(stream),
                                key="customer_id", column="predicted")
    assert written == 1000
    back = customers.execute(
        "select s.customer_id, s.predicted, r.value from scores s "
        "join customer_rows r using (customer_id)"
    ).df()
    assert Counter(back["customer_id"].tolist()) == Counter(range(1000))
    expected = reg.predict(back[["value"]].to_numpy(np.float32))
    np.testing.assert_allclose(back["predicted"], expected, rtol=1e-5, atol=1e-5)
