"""EMDESketcher: partitioning, sketches, time decay, incremental updates, decoding, composition."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn import config_context
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from sklearn_basemodel import CleoraEmbedder
from sklearn_basemodel import RandomVectorEmbedder, TextEmbedder
from sklearn_basemodel import EMDESketcher
from sklearn_basemodel.exceptions import UnknownEntityWarning

N, W = 6, 16


def sketcher(**params):
    defaults = dict(
        embedder=RandomVectorEmbedder(n_components=16), n_sketches=N, sketch_dim=W, random_state=0
    )
    return EMDESketcher(**(defaults | params))


def random_rows(rng, n_rows=60, n_items=40, max_len=8):
    return [
        rng.integers(0, n_items, rng.integers(0, max_len + 1)).tolist() for _ in range(n_rows)
    ]


def blocks(S):
    """Sketches as an (n_rows, n_sketches, sketch_dim) float64 array."""
    dense = S.toarray() if sp.issparse(S) else np.asarray(S)
    return dense.reshape(len(dense), -1, W).astype(np.float64)


def planted_users(rng, n_groups=5, users_per_group=20, items_per_user=8, dim=16):
    """Users whose items come from their interest group; no item is shared by two users.

    Returns the users' item lists, their groups, and item vectors clustered by group.
    """
    centres = rng.normal(0, 3, (n_groups, dim))
    rows, groups, vectors = [], [], {}
    for g in range(n_groups):
        for u in range(users_per_group):
            items = [f"g{g}u{u}i{k}" for k in range(items_per_user)]
            rows.append(items)
            groups.append(g)
            for item in items:
                vectors[item] = centres[g] + rng.normal(0, 1, dim)
    return rows, np.array(groups), vectors


def nearest_other_row(S):
    X = S.toarray() if sp.issparse(S) else S
    sims = X @ X.T
    np.fill_diagonal(sims, -np.inf)
    return sims.argmax(axis=1)


# --------------------------------------------------------------------------- sketches
def test_single_entity_raw_sketch_has_one_per_partitioning():
    rows = [["a", "b", "c"], ["d"]]
    sk = sketcher(normalize=None).fit(rows)
    S = sk.transform([[k] for k in sk.keys_])
    B = blocks(S)
    np.testing.assert_array_equal(B.sum(axis=2), 1.0)  # exactly one 1 per partitioning
    np.testing.assert_array_equal(B.argmax(axis=2), sk.codes_)
    assert S.nnz == len(sk.keys_) * N


def test_raw_sketches_are_additive_and_weighted():
    rng = np.random.default_rng(0)
    rows = random_rows(rng)
    sk = sketcher(normalize=None).fit(rows)
    a, b = rows[:30], rows[30:]
    joined = [x + y for x, y in zip(a, b)]
    np.testing.assert_array_equal(
        sk.transform(joined).toarray(), (sk.transform(a) + sk.transform(b)).toarray()
    )
    # a mapping key -> weight is the weighted sum of the single-entity sketches
    key0, key1 = sk.keys_[:2]
    weighted = sk.transform([{key0: 2.5, key1: -1.0}]).toarray()
    single = sk.transform([[key0], [key1]]).toarray()
    np.testing.assert_allclose(weighted[0], 2.5 * single[0] - single[1])


def test_sparse_output_is_canonical_float32_and_matches_dense():
    rng = np.random.default_rng(1)
    rows = random_rows(rng)
    for norm in ["l2", "l1", None]:
        S = sketcher(normalize=norm).fit(rows).transform(rows)
        D = sketcher(normalize=norm, output="dense").fit(rows).transform(rows)
        assert sp.isspmatrix_csr(S) and S.dtype == np.float32 and D.dtype == np.float32
        assert S.shape == D.shape == (len(rows), N * W)
        assert S.has_canonical_format
        for i in range(S.shape[0]):  # the flag is backed by the data: sorted, unique, nonzero
            idx = S.indices[S.indptr[i] : S.indptr[i + 1]]
            assert np.all(np.diff(idx) > 0)
        assert np.all(S.data != 0)
        np.testing.assert_allclose(S.toarray(), D, rtol=1e-6)


def test_sketch_matches_a_naive_loop():
    rng = np.random.default_rng(2)
    rows = random_rows(rng, n_rows=30)
    sk = sketcher(normalize=None).fit(rows)
    position = {k: i for i, k in enumerate(sk.keys_)}
    expected = np.zeros((len(rows), N * W))
    for r, row in enumerate(rows):
        for key in row:
            for j in range(N):
                expected[r, j * W + sk.codes_[position[key], j]] += 1
    np.testing.assert_array_equal(sk.transform(rows).toarray(), expected)


@pytest.mark.parametrize("output", ["sparse", "dense"])
def test_per_block_normalisation(output):
    rng = np.random.default_rng(3)
    rows = random_rows(rng) + [[]]
    raw = blocks(sketcher(normalize=None, output=output).fit(rows).transform(rows))
    l2 = blocks(sketcher(normalize="l2", output=output).fit(rows).transform(rows))
    l1 = blocks(sketcher(normalize="l1", output=output).fit(rows).transform(rows))
    nonempty = np.array([len(r) > 0 for r in rows])
    np.testing.assert_allclose(np.linalg.norm(l2[nonempty], axis=2), 1.0, rtol=1e-5)
    np.testing.assert_allclose(l1[nonempty].sum(axis=2), 1.0, rtol=1e-5)  # a distribution per block
    np.testing.assert_allclose(
        l2[nonempty],
        raw[nonempty] / np.linalg.norm(raw[nonempty], axis=2, keepdims=True),
        rtol=1e-5,
    )
    assert not l2[~nonempty].any() and not l1[~nonempty].any()
    assert np.isfinite(l2).all() and np.isfinite(l1).all()


def test_width_is_fixed_whatever_the_rows():
    sk = sketcher().fit([["a", "b"], ["c"]])
    for rows in ([["a"]], [[], [], []], [["a", "b", "c", "a"] * 50]):
        assert sk.transform(rows).shape == (len(rows), N * W)


# --------------------------------------------------------------------------- partitioning
def clustered_vectors(rng, dim=8):
    sizes, centres = [600, 150, 51], rng.normal(0, 10, (3, dim))
    return np.vstack([c + rng.normal(0, 1, (s, dim)) for c, s in zip(centres, sizes)])


@pytest.mark.parametrize("kind", ["gaussian", "clustered"])
def test_median_hyperplanes_split_entities_evenly(kind):
    rng = np.random.default_rng(4)
    vectors = rng.normal(size=(801, 8)) if kind == "gaussian" else clustered_vectors(rng)
    given = pd.DataFrame(vectors, index=[f"e{i}" for i in range(len(vectors))])
    sk = EMDESketcher(entity_vectors=given, n_sketches=N, sketch_dim=W, random_state=0).fit(None)
    n_bits = 4
    assert sk.codes_.min() >= 0 and sk.codes_.max() < W
    bits = (sk.codes_[:, :, None] >> np.arange(n_bits)) & 1  # (entities, partitionings, bits)
    ones = bits.sum(axis=0)
    assert np.all(np.abs(ones - len(vectors) / 2) <= 0.5)  # 400 of 801 above each median
    # the bucket is the K bits read as an integer: bit k = side of hyperplane k
    z = (vectors - sk.mean_) / sk.scale_
    projection = np.einsum("nd,jkd->njk", z, sk.hyperplanes_)
    expected = (projection > sk.biases_[None]).astype(int)
    clear = np.abs(projection - sk.biases_[None]) > 1e-4  # away from float32 rounding
    np.testing.assert_array_equal(bits[clear], expected[clear])


def test_bias_quantile_sets_the_share_of_each_side():
    rng = np.random.default_rng(5)
    given = {i: v for i, v in enumerate(clustered_vectors(rng))}
    quarter = EMDESketcher(entity_vectors=given, n_sketches=N, sketch_dim=W, bias_quantile=0.25,
                           random_state=0).fit(None)
    share = ((quarter.codes_[:, :, None] >> np.arange(4)) & 1).mean(axis=0)
    np.testing.assert_allclose(share, 0.75, atol=0.01)
    rand = EMDESketcher(entity_vectors=given, n_sketches=N, sketch_dim=W, bias_quantile="random",
                        random_state=0).fit(None)
    share = ((rand.codes_[:, :, None] >> np.arange(4)) & 1).mean(axis=0)
    assert share.std() > 0.1  # one random quantile per hyperplane


def test_nearest_user_by_sketch_shares_the_planted_group():
    rng = np.random.default_rng(6)
    rows, groups, vectors = planted_users(rng)
    S = EMDESketcher(entity_vectors=vectors, n_sketches=20, sketch_dim=32, random_state=0)
    S = S.fit_transform(rows)
    assert np.mean(groups[nearest_other_row(S)] == groups) >= 0.95
    # no item is shared, so ID-hashing vectors carry no group signal: the vectors make it work
    ids = EMDESketcher(RandomVectorEmbedder(16), n_sketches=20, sketch_dim=32, random_state=0)
    S_ids = ids.fit_transform(rows)
    assert np.mean(groups[nearest_other_row(S_ids)] == groups) < 0.5


def test_default_cleora_embedder_finds_planted_groups():
    rng = np.random.default_rng(7)
    pools = [[f"g{g}p{k}" for k in range(30)] for g in range(4)]
    groups = np.repeat(np.arange(4), 25)
    rows = [
        list(rng.choice(pools[g], 6, replace=False)) + [f"noise{rng.integers(500)}"]
        for g in groups
    ]
    sk = EMDESketcher(n_sketches=16, sketch_dim=32, random_state=0)
    S = sk.fit_transform(rows)
    assert isinstance(sk.embedder_, CleoraEmbedder)
    assert sk.embedder_.random_state is not None  # seeded from the sketcher
    assert np.mean(groups[nearest_other_row(S)] == groups) >= 0.9
    np.testing.assert_array_equal(S.toarray(), clone(sk).fit_transform(rows).toarray())


def test_entity_counts_are_occurrences_in_the_fit_rows():
    sk = sketcher().fit([["a", "b", "a"], ["b"], [], ["c"]])
    counts = dict(zip(sk.keys_, sk.entity_counts_))
    assert counts == {"a": 2.0, "b": 2.0, "c": 1.0}
    given = EMDESketcher(entity_vectors={"a": [0.0, 1.0], "z": [1.0, 0.0]}, n_sketches=2,
                         sketch_dim=2, handle_unknown="ignore").fit([["a", "a", "q"]])
    assert dict(zip(given.keys_, given.entity_counts_)) == {"a": 2.0, "z": 0.0}
    assert given.n_unknown_keys_ == 1


# --------------------------------------------------------------------------- entity vectors
def test_entity_vector_forms_agree():
    rng = np.random.default_rng(8)
    keys = [f"k{i}" for i in range(50)]
    vectors = rng.normal(size=(50, 5))
    forms = [dict(zip(keys, vectors)), pd.DataFrame(vectors, index=keys), (np.array(keys), vectors)]
    codes = [
        EMDESketcher(entity_vectors=f, n_sketches=N, sketch_dim=W, random_state=0).fit(None).codes_
        for f in forms
    ]
    np.testing.assert_array_equal(codes[0], codes[1])
    np.testing.assert_array_equal(codes[0], codes[2])


def test_frozen_embedder_is_not_refitted():
    emb = RandomVectorEmbedder(n_components=8, random_state=0).fit([["a", "b", "c"]])
    with pytest.warns(UnknownEntityWarning, match="2 of 3 keys"):
        sk = sketcher(embedder=FrozenEstimator(emb)).fit([["a", "x"], ["y"]])
    assert sk.embedder_.estimator is emb
    assert list(sk.keys_) == ["a", "b", "c"]  # the frozen vocabulary, not the new rows'
    assert sk.n_unknown_keys_ == 2
    with pytest.raises(NotFittedError, match="FrozenEstimator"):
        sketcher(embedder=FrozenEstimator(RandomVectorEmbedder())).fit([["a"]])


def test_unfrozen_embedder_parameter_is_left_untouched():
    emb = RandomVectorEmbedder(n_components=8)
    sk = sketcher(embedder=emb).fit([["a", "b"]])
    assert not hasattr(emb, "embeddings_") and emb.random_state is None
    assert sk.embedder_ is not emb and sk.embedder_.random_state is not None


def test_embedder_column_picks_one_column_of_a_multi_column_cleora():
    customers = pd.DataFrame({
        "customer": ["c1", "c2", "c3", "c4"],
        "products": [["p1", "p2"], ["p2", "p3"], ["p1"], ["p3", "p4"]],
    })
    cleora = CleoraEmbedder(n_components=8, n_iter=2, random_state=0).fit(customers)
    sk = sketcher(embedder=FrozenEstimator(cleora), embedder_column="products")
    S = sk.fit_transform(customers["products"])
    assert sorted(sk.keys_) == ["p1", "p2", "p3", "p4"]
    assert S.shape == (4, N * W)
    with pytest.raises(ValueError):
        sketcher(embedder=FrozenEstimator(cleora)).fit(customers["products"])


def test_text_embedder_makes_sketches_multimodal():
    """Products described alike share buckets; customers of a topic find each other by text."""
    rng = np.random.default_rng(9)
    topics = {
        "wine": "wine red white grape bottle vineyard",
        "bread": "bread rye loaf flour bakery crust",
        "toys": "toy lego puzzle doll game kids",
    }
    descriptions, pools = {}, {}
    for topic, words in topics.items():
        words = words.split()
        pools[topic] = []
        for k in range(40):
            key = f"{topic}{k}"
            descriptions[key] = " ".join(rng.choice(words, 4)) + f" sku{key}"
            pools[topic].append(key)
    text = TextEmbedder(n_components=8, random_state=0).fit(descriptions)
    sk = EMDESketcher(FrozenEstimator(text), n_sketches=16, sketch_dim=16, random_state=0)
    groups = np.repeat(np.arange(3), 10)
    # every customer buys 4 products of its topic, no product bought twice
    rows = [pools[list(topics)[g]][4 * (i % 10) : 4 * (i % 10) + 4] for i, g in enumerate(groups)]
    S = sk.fit_transform(rows)
    assert np.mean(groups[nearest_other_row(S)] == groups) >= 0.9


# --------------------------------------------------------------------------- unknown keys
def test_unknown_keys_are_ignored_counted_and_reported():
    sk = sketcher().fit([["a", "b", "c"]])
    with pytest.warns(UnknownEntityWarning, match=r"2 of 5 keys \(40.0%\)"):
        S = sk.transform([["a", "zz"], ["yy"], ["b", "c"]])
    assert sk.n_unknown_keys_ == 2
    assert S[1].nnz == 0  # only unknown keys: a zero row, no NaN
    np.testing.assert_allclose(S[0].toarray(), sk.transform([["a"]]).toarray())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sk.transform([["a"]])
        assert sk.n_unknown_keys_ == 0
        sk.set_params(handle_unknown="ignore").transform([["zz"]])
        assert sk.n_unknown_keys_ == 1
    with pytest.raises(ValueError, match="no entity vector.*'zz'"):
        sk.set_params(handle_unknown="error").transform([["a", "zz"]])


@pytest.mark.parametrize("norm", ["l2", "l1"])
def test_empty_and_unknown_rows_give_zero_rows_when_normalised(norm):
    sk = sketcher(normalize=norm, output="dense", handle_unknown="ignore").fit([["a"]])
    D = sk.transform([[], ["nope"], ["a"]])
    assert np.isfinite(D).all()
    assert not D[:2].any() and D[2].any()


# --------------------------------------------------------------------------- time decay
DAY = pd.Timedelta(days=1)


def test_datetime_decay_weights_and_reference_time():
    t = pd.Timestamp("2024-03-01")
    rows = [(["a"], [t - 14 * DAY]), (["a", "b"], [t - 7 * DAY, t])]
    sk = sketcher(normalize=None, half_life="7D").fit(rows)
    assert sk.reference_time_ == pd.Timestamp(t, tz="UTC")
    B = blocks(sk.transform(rows))
    np.testing.assert_allclose(B[0].sum(axis=1), 0.25)  # two half-lives old
    np.testing.assert_allclose(B[1].sum(axis=1), 1.5)  # 0.5 + 1
    later = sketcher(normalize=None, half_life=pd.Timedelta(days=7), reference_time="2024-03-08")
    later.fit(rows)
    np.testing.assert_allclose(blocks(later.transform(rows))[0].sum(axis=1), 0.125)


def test_time_decay_input_forms_agree():
    rows = [(["a", "b"], [1.0, 3.0]), (["c"], [0.0])]
    frame = pd.DataFrame({"items": [r[0] for r in rows], "when": [r[1] for r in rows]})
    a = sketcher(normalize=None, half_life=2.0).fit(rows)
    b = sketcher(normalize=None, half_life=2.0).fit(frame)
    assert a.reference_time_ == b.reference_time_ == 3.0
    np.testing.assert_array_equal(a.transform(rows).toarray(), b.transform(frame).toarray())
    assert b.get_feature_names_out()[0] == "items_s0_b0"
    ages = [(["a", "b"], [2.0, 0.0]), (["c"], [3.0])]
    c = sketcher(normalize=None, half_life=2.0, time_input="age").fit(ages)
    np.testing.assert_allclose(c.transform(ages).toarray(), a.transform(rows).toarray())
    # a third element weights the events (e.g. amounts) on top of the decay
    weighted = sketcher(normalize=None, half_life=2.0).fit([(["a"], [3.0], [4.0])])
    np.testing.assert_allclose(blocks(weighted.transform([(["a"], [1.0], [4.0])])).sum(axis=2), 2.0)


def test_timezones_are_compared_as_instants():
    utc = pd.Timestamp("2024-01-01 12:00", tz="UTC")
    warsaw = utc.tz_convert("Europe/Warsaw")
    sk = sketcher(normalize=None, half_life="1D", reference_time=utc + DAY).fit([(["a"], [utc])])
    np.testing.assert_allclose(
        sk.transform([(["a"], [warsaw])]).toarray(), sk.transform([(["a"], [utc])]).toarray()
    )
    np.testing.assert_allclose(blocks(sk.transform([(["a"], [warsaw])])).sum(axis=2), 0.5)


def test_normalised_sketches_do_not_depend_on_the_reference_time():
    rng = np.random.default_rng(10)
    rows = [(list(rng.integers(0, 20, 5)), list(rng.uniform(0, 30, 5))) for _ in range(20)]
    a = sketcher(half_life=5.0, reference_time=30.0).fit(rows).transform(rows)
    b = sketcher(half_life=5.0, reference_time=100.0).fit(rows).transform(rows)
    np.testing.assert_allclose(a.toarray(), b.toarray(), rtol=1e-5)


@pytest.mark.parametrize(
    "params, rows, error, match",
    [
        ({}, [(["a", "b"], [1.0])], ValueError, "Row 0 has 2 keys but 1 timestamps"),
        ({}, [["a", "b"]], TypeError, "pair \\(keys, timestamps\\)"),
        ({}, [(["a"], [1.0]), (["b"], [1.0], [2.0])], TypeError, "Row 1"),
        ({"half_life": "7D"}, [(["a"], [1.0])], ValueError, "timestamps are numbers"),
        ({}, [(["a"], [pd.Timestamp("2024-01-01")])], ValueError, "timestamps are datetimes"),
        ({}, [(["a"], [np.nan])], ValueError, "NaN"),
        ({"half_life": "7D"}, [(["a"], [pd.NaT])], ValueError, "NaT"),
        ({"time_input": "age"}, [(["a"], [-1.0])], ValueError, "negative"),
        ({"time_input": "age", "reference_time": 3.0}, [(["a"], [1.0])], ValueError, "only used"),
        ({"half_life": "soon"}, [(["a"], [1.0])], ValueError, "duration"),
        ({"reference_time": "2024-01-01"}, [(["a"], [1.0])], ValueError, "same form"),
        ({}, pd.DataFrame({"k": [["a"]]}), ValueError, "1 column"),
    ],
)
def test_time_decay_input_errors(params, rows, error, match):
    with pytest.raises(error, match=match):
        sketcher(**({"half_life": 2.0} | params)).fit(rows)


def test_far_future_events_raise_in_raw_sketches_but_normalise_exactly():
    sk = sketcher(half_life=1.0, reference_time=0.0).fit([(["a", "b"], [0.0, 0.0])])
    with pytest.raises(ValueError, match="overflow"):
        sk.raw_sketches([(["a"], [5000.0])])
    # normalised sketches only depend on the weights within a row: an old or future row is
    # sketched exactly like the same row shifted to the reference time
    far = sk.transform([(["a", "b"], [5000.0, 5001.0]), (["a", "b"], [-1200.0, -1199.0])])
    near = sk.transform([(["a", "b"], [0.0, 1.0])])
    assert np.isfinite(far.toarray()).all()
    np.testing.assert_allclose(far.toarray(), np.vstack([near.toarray()] * 2), rtol=1e-6)


# --------------------------------------------------------------------------- incremental
@pytest.mark.parametrize("output", ["sparse", "dense"])
def test_update_equals_recomputation_from_full_history(output):
    rng = np.random.default_rng(11)
    full = random_rows(rng, n_rows=80, max_len=12)
    cut = [rng.integers(0, len(r) + 1) for r in full]
    old = [r[:c] for r, c in zip(full, cut)]
    new = [r[c:] for r, c in zip(full, cut)]
    sk = sketcher(normalize="l2", output=output).fit(full)
    updated = sk.update(sk.raw_sketches(old), new)
    recomputed = sk.raw_sketches(full)
    assert sp.issparse(updated) == (output == "sparse")
    as_array = (lambda S: S.toarray()) if output == "sparse" else np.asarray
    np.testing.assert_array_equal(as_array(updated), as_array(recomputed))  # exact
    np.testing.assert_allclose(
        as_array(sk.normalize_sketches(updated)), as_array(sk.transform(full)), rtol=1e-6
    )


def test_update_with_time_decay_equals_recomputation():
    rng = np.random.default_rng(12)
    half_life, elapsed = 10.0, 4.0
    rows_t1, old_t0, new_t1 = [], [], []
    for _ in range(40):
        keys = list(rng.integers(0, 30, 8))
        ages_t1 = np.sort(rng.uniform(0, 50, 8))[::-1]  # oldest first, ages at time t1
        split = int(np.sum(ages_t1 >= elapsed))  # events before t0 = t1 - elapsed
        rows_t1.append((keys, list(ages_t1)))
        old_t0.append((keys[:split], list(ages_t1[:split] - elapsed)))
        new_t1.append((keys[split:], list(ages_t1[split:])))
    sk = sketcher(half_life=half_life, time_input="age").fit(rows_t1)
    decay = 0.5 ** (elapsed / half_life)
    updated = sk.update(sk.raw_sketches(old_t0), new_t1, decay=decay)
    np.testing.assert_allclose(updated.toarray(), sk.raw_sketches(rows_t1).toarray(), rtol=1e-5)


def test_update_per_row_decay_none_and_dataframe():
    sk = sketcher(normalize=None).fit([["a", "b"]])
    old = sk.raw_sketches([["a"], ["b"]])
    out = sk.update(old, [["b"], []], decay=[0.5, 0.0])
    expected = 0.5 * sk.raw_sketches([["a"]]).toarray()[0] + sk.raw_sketches([["b"]]).toarray()[0]
    np.testing.assert_allclose(out.toarray()[0], expected)
    assert out[1].nnz == 0
    np.testing.assert_array_equal(
        sk.update(None, [["a"]]).toarray(), sk.raw_sketches([["a"]]).toarray()
    )
    frame = pd.DataFrame(old.toarray(), index=["c1", "c2"], columns=sk.get_feature_names_out())
    updated = sk.update(frame, [["a"], []])
    assert isinstance(updated, pd.DataFrame) and list(updated.index) == ["c1", "c2"]
    np.testing.assert_allclose(updated.to_numpy()[0], 2 * sk.raw_sketches([["a"]]).toarray()[0])


def test_normalize_sketches_matches_transform_and_checks_input():
    rng = np.random.default_rng(18)
    rows = random_rows(rng)
    sk = sketcher(normalize="l1").fit(rows)
    raw_sparse = sk.raw_sketches(rows)
    raw_dense = raw_sparse.toarray()
    np.testing.assert_allclose(
        sk.normalize_sketches(raw_sparse).toarray(), sk.transform(rows).toarray(), rtol=1e-6
    )
    l2 = sk.normalize_sketches(raw_dense, norm="l2")
    expected = sk.set_params(normalize="l2").transform(rows).toarray()
    np.testing.assert_allclose(l2, expected, rtol=1e-6)
    assert isinstance(l2, np.ndarray) and l2.dtype == np.float32
    np.testing.assert_array_equal(raw_dense, raw_sparse.toarray())  # the input is left untouched
    with pytest.raises(ValueError, match="norm must be"):
        sk.normalize_sketches(raw_dense, norm="max")
    with pytest.raises(ValueError, match="shape"):
        sk.normalize_sketches(raw_dense[:, :5])


@pytest.mark.parametrize(
    "old_rows, decay, match",
    [(1, 1.0, "one old sketch per new row"), (2, -1.0, "non-negative"), (2, [1.0], "one per row")],
)
def test_update_errors(old_rows, decay, match):
    sk = sketcher().fit([["a"]])
    with pytest.raises(ValueError, match=match):
        sk.update(np.zeros((old_rows, N * W)), [["a"], ["a"]], decay=decay)


# --------------------------------------------------------------------------- decoding
def log_softmax_blocks(logits):
    z = logits.reshape(len(logits), -1, W)
    z = z - z.max(axis=2, keepdims=True)
    return (z - np.log(np.exp(z).sum(axis=2, keepdims=True))).reshape(len(logits), -1)


@pytest.mark.parametrize("correction", [False, True])
def test_score_entities_matches_the_formula(correction):
    rng = np.random.default_rng(13)
    rows = random_rows(rng)
    sk = sketcher().fit(rows)
    log_probs = log_softmax_blocks(rng.normal(size=(7, N * W)))
    scores = sk.score_entities(log_probs, popularity_correction=correction)
    assert scores.shape == (7, len(sk.keys_)) and scores.dtype == np.float32
    pop = sk.entity_counts_ + 1.0
    pop /= pop.sum()
    for i in range(len(sk.keys_)):
        cols = np.arange(N) * W + sk.codes_[i]
        expected = log_probs[:, cols].sum(axis=1)
        if correction:
            mass = [pop[sk.codes_[:, j] == sk.codes_[i, j]].sum() for j in range(N)]
            expected = expected - np.log(mass).sum() + np.log(pop[i])
        np.testing.assert_allclose(scores[:, i], expected, rtol=1e-5, atol=1e-4)


def test_score_entities_recovers_a_sketched_set():
    """Count-min read-out: the members of a sketched set score highest."""
    rng = np.random.default_rng(14)
    sk = EMDESketcher(RandomVectorEmbedder(32), n_sketches=10, sketch_dim=64, normalize="l1",
                      random_state=0).fit([[i] for i in range(500)])
    members = rng.choice(500, 5, replace=False).tolist()
    target = sk.transform([members]).toarray()
    scores = sk.score_entities(np.log(target + 1e-6))
    assert set(np.argsort(-scores[0])[:5]) == {sk.vocabulary_.get_loc(m) for m in members}


def test_popularity_correction_prefers_the_popular_of_two_twins():
    vectors = {"rare": [1.0, 2.0], "popular": [1.0, 2.0], "other": [-3.0, 0.5], "x": [0.3, -1.0]}
    sk = EMDESketcher(entity_vectors=vectors, n_sketches=3, sketch_dim=2, random_state=0)
    sk.fit([["popular"]] * 9 + [["rare"]])
    log_probs = np.log(np.full((1, 3 * 2), 0.5))  # a uniform prediction
    plain = sk.score_entities(log_probs)[0]
    corrected = sk.score_entities(log_probs, popularity_correction=True)[0]
    rare, popular = sk.vocabulary_.get_loc("rare"), sk.vocabulary_.get_loc("popular")
    assert plain[rare] == plain[popular]  # twins share every bucket
    np.testing.assert_allclose(corrected[popular] - corrected[rare], np.log(10 / 2), rtol=1e-5)
    assert np.isfinite(corrected).all()  # "other" and "x" were never seen: smoothed


def test_score_entities_input_checks():
    sk = sketcher().fit([["a"]])
    with pytest.raises(ValueError, match="shape"):
        sk.score_entities(np.zeros((2, 5)))
    with pytest.raises(TypeError, match="dense"):
        sk.score_entities(sp.csr_matrix((1, N * W)))
    with pytest.raises(ValueError, match="NaN"):
        sk.score_entities(np.full((1, N * W), np.nan))


# --------------------------------------------------------------------------- scikit-learn API
def test_same_seed_same_output_other_seed_other_codes():
    rng = np.random.default_rng(15)
    rows = random_rows(rng)
    a = EMDESketcher(RandomVectorEmbedder(16), n_sketches=N, sketch_dim=W, random_state=3)
    b = clone(a)
    np.testing.assert_array_equal(
        a.fit_transform(rows).toarray(), b.fit(rows).transform(rows).toarray()
    )
    c = clone(a).set_params(random_state=4).fit(rows)
    assert not np.array_equal(a.codes_, c.codes_)


def test_pickle_round_trip_gives_identical_sketches():
    rng = np.random.default_rng(16)
    rows = random_rows(rng)
    sk = sketcher().fit(rows)
    restored = pickle.loads(pickle.dumps(sk))
    np.testing.assert_array_equal(restored.transform(rows).toarray(), sk.transform(rows).toarray())


def test_feature_names():
    rows = [["a"], ["b"]]
    assert sketcher(name="products").fit(rows).get_feature_names_out()[17] == "products_s1_b1"
    series_names = sketcher().fit(pd.Series(rows, name="basket")).get_feature_names_out()
    assert series_names[0] == "basket_s0_b0"
    frame_names = sketcher().fit(pd.DataFrame({"cat": rows})).get_feature_names_out()
    assert frame_names[-1] == f"cat_s{N - 1}_b{W - 1}"
    names = sketcher().fit(rows).get_feature_names_out()
    assert names[0] == "emdesketcher_s0_b0" and len(names) == N * W
    assert sketcher().fit(rows).get_feature_names_out(["x"])[0] == "x_s0_b0"


def test_set_output_pandas_gives_a_dense_frame():
    frame = pd.DataFrame({"products": [["a", "b"], ["b"], []]}, index=["c1", "c2", "c3"])
    sk = sketcher(name="products").set_output(transform="pandas")
    out = sk.fit_transform(frame)
    assert isinstance(out, pd.DataFrame) and list(out.index) == ["c1", "c2", "c3"]
    assert out.columns[0] == "products_s0_b0" and out.shape == (3, N * W)
    expected = sk.set_output(transform="default").transform(frame).toarray()
    np.testing.assert_allclose(out.to_numpy(), expected)


def test_sparse_interface_config_is_honoured():
    sk = sketcher().fit([["a"]])
    with config_context(sparse_interface="sparray"):
        assert isinstance(sk.transform([["a"]]), sp.csr_array)


@pytest.mark.parametrize(
    "params, X, error, match",
    [
        ({"sketch_dim": 100}, [["a"]], ValueError, "power of two"),
        ({"n_sketches": 0}, [["a"]], ValueError, "n_sketches"),
        ({"normalize": "l3"}, [["a"]], ValueError, "normalize"),
        ({"output": "coo"}, [["a"]], ValueError, "output"),
        ({"bias_quantile": 1.0}, [["a"]], ValueError, "bias_quantile"),
        ({"entity_vectors": {"a": [1.0]}}, [["a"]], ValueError, "either embedder or entity"),
        ({}, "milk", (TypeError, ValueError), "string"),
        ({}, [["a"], "b"], (TypeError, ValueError), "Row 1"),
        ({}, [[["a"]]], TypeError, "unhashable"),
        ({}, None, ValueError, "prefit entity vectors"),
    ],
)
def test_bad_parameters_and_input(params, X, error, match):
    with pytest.raises(error, match=match):
        sketcher(**params).fit(X)


@pytest.mark.parametrize(
    "vectors, match",
    [
        ({"a": [1.0, np.nan]}, "NaN"),
        ({"a": [1.0, 2.0], "b": [1.0]}, "same length"),
        (pd.DataFrame([[1.0], [2.0]], index=["a", "a"]), "several entity vectors"),
        ({}, "no entity vectors"),
    ],
)
def test_bad_entity_vectors(vectors, match):
    with pytest.raises(ValueError, match=match):
        EMDESketcher(entity_vectors=vectors, n_sketches=2, sketch_dim=2).fit(None)


def test_unfitted_methods_raise():
    sk = sketcher()
    for call in (lambda: sk.transform([["a"]]), lambda: sk.score_entities(np.zeros((1, N * W))),
                 lambda: sk.get_feature_names_out()):
        with pytest.raises(NotFittedError):
            call()


# --------------------------------------------------------------------------- composition
def behaviour_frame(rng, n_users=150):
    """Users with a planted interest group: products and categories follow the group; event
    types and tenure are noise; every purchase has an age in days."""
    groups = rng.integers(0, 3, n_users)
    products, categories = [], []
    for g in groups:
        items = [f"p{g}_{k}" for k in rng.integers(0, 25, 6)]
        items.append(f"p{rng.integers(3)}_{rng.integers(25)}")  # one item of any group
        products.append(items)
        categories.append([f"cat{it[1]}_{int(it.split('_')[1]) % 4}" for it in items])
    frame = pd.DataFrame({
        "products": products,
        "categories": categories,
        "product_days": [list(rng.uniform(0, 90, len(p))) for p in products],
        "event_types": [list(rng.choice(["view", "cart", "buy"], 5)) for _ in groups],
        "tenure": rng.uniform(0, 5, n_users),
    })
    return frame, (groups == 0).astype(int)


@pytest.mark.filterwarnings("ignore::sklearn_basemodel.exceptions.UnknownEntityWarning")
def test_column_transformer_pipeline_grid_search():
    rng = np.random.default_rng(17)
    X, y = behaviour_frame(rng)
    def sketch(dim, n_sketches, width, **params):
        return EMDESketcher(RandomVectorEmbedder(dim), n_sketches=n_sketches, sketch_dim=width,
                            random_state=0, **params)

    features = ColumnTransformer([
        ("products", sketch(16, 4, 16), "products"),
        ("categories", sketch(8, 4, 8), ["categories"]),
        ("events", sketch(4, 2, 4), "event_types"),
        # recent purchases weigh more: a (keys, ages) column pair, half-life 30 days
        ("recent", sketch(16, 2, 16, half_life=30.0, time_input="age"),
         ["products", "product_days"]),
        ("numeric", "passthrough", ["tenure"]),
    ])
    pipe = Pipeline([("features", features), ("model", LogisticRegression(max_iter=2000))])
    search = GridSearchCV(pipe, {"features__products__n_sketches": [1, 8]}, cv=3).fit(X, y)
    assert len(search.cv_results_["params"]) == 2
    assert search.best_score_ > 0.85
    names = search.best_estimator_[:-1].get_feature_names_out()
    n_products = search.best_params_["features__products__n_sketches"] * 16
    assert len(names) == n_products + 4 * 8 + 2 * 4 + 2 * 16 + 1
    assert names[0] == "products__products_s0_b0" and names[-1] == "numeric__tenure"
    assert "categories__categories_s3_b7" in names and "recent__products_s1_b15" in names
    framed = clone(features).set_output(transform="pandas").fit_transform(X)
    assert isinstance(framed, pd.DataFrame) and list(framed.columns) == list(
        clone(features).fit(X).get_feature_names_out()
    )
