import pickle
from itertools import product

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from sklearn_basemodel import CleoraEmbedder, UnknownEntityWarning

ROWS = [["a", "b", "c"], ["a", "b"], ["c", "d", "d"], ["d", "e"], ["e"], ["b", "e", "f", "a"]]


def _normalize(X):
    n = np.linalg.norm(X, axis=1, keepdims=True)
    return np.divide(X, n, out=np.zeros_like(X), where=n > 0)


def _dense_clique(rows, index):
    """W and D of the clique expansion, built pair by pair (the definition, not the trick)."""
    n = len(index)
    W = np.zeros((n, n))
    for row in rows:
        members = [index.get_loc(k) for k in set(row)]
        for i, j in product(members, members):
            W[i, j] += 1.0 / len(members) ** 2
    return W


def _dense_bipartite(pairs, index):
    n = len(index)
    W = np.zeros((n, n))
    for A, B in pairs:
        A, B = set(A), set(B)
        for a, b in product(A, B):
            i, j = index.get_loc(a), index.get_loc(b)
            w = 1.0 / (len(A) * len(B))
            W[i, j] += w
            W[j, i] += w
    return W


@pytest.mark.parametrize("propagation", ["left", "symmetric"])
def test_one_iteration_equals_dense_clique_definition(propagation):
    start = CleoraEmbedder(n_components=8, n_iter=0, random_state=3).fit(ROWS)
    one = CleoraEmbedder(n_components=8, n_iter=1, propagation=propagation, random_state=3).fit(ROWS)
    X0 = start.embeddings_.astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(X0, axis=1), 1.0, rtol=1e-6)
    W = _dense_clique(ROWS, start.vocabulary_)
    d = W.sum(axis=1)
    # row sums are sum over rows containing i of 1/|e|
    expected_d = np.zeros(len(d))
    for row in ROWS:
        for k in set(row):
            expected_d[start.vocabulary_.get_loc(k)] += 1.0 / len(set(row))
    np.testing.assert_allclose(d, expected_d)
    if propagation == "left":
        M = W / d[:, None]
    else:
        M = W / np.sqrt(np.outer(d, d))
    np.testing.assert_allclose(one.embeddings_, _normalize(M @ X0), rtol=1e-5, atol=1e-6)
    assert list(one.vocabulary_) == list(start.vocabulary_)


@pytest.mark.parametrize("propagation", ["left", "symmetric"])
def test_one_iteration_equals_dense_bipartite_definition(propagation):
    df = pd.DataFrame(
        {
            "customer": ["x", "y", "x", "z"],
            "products": [["p1", "p2"], ["p2", "p3", "p4"], ["p1"], ["p4"]],
        }
    )
    start = CleoraEmbedder(n_components=6, n_iter=0, random_state=1).fit(df)
    one = CleoraEmbedder(n_components=6, n_iter=1, propagation=propagation, random_state=1).fit(df)
    index = start.vocabulary_
    pairs = [([("customer", c)], [("products", p) for p in ps]) for c, ps in zip(df.customer, df.products)]
    W = _dense_bipartite(pairs, index)
    d = W.sum(axis=1)
    M = W / d[:, None] if propagation == "left" else W / np.sqrt(np.outer(d, d))
    X0 = start.embeddings_.astype(np.float64)
    np.testing.assert_allclose(one.embeddings_, _normalize(M @ X0), rtol=1e-5, atol=1e-6)


def test_several_iterations_and_multiscale_concatenate_snapshots():
    one = CleoraEmbedder(n_components=8, n_iter=1, random_state=0).fit(ROWS)
    three = CleoraEmbedder(n_components=8, n_iter=3, random_state=0).fit(ROWS)
    both = CleoraEmbedder(n_components=8, n_iter=[3, 1], random_state=0).fit(ROWS)
    np.testing.assert_allclose(both.embeddings_, np.hstack([one.embeddings_, three.embeddings_]), rtol=1e-6)
    assert both.get_feature_names_out()[8] == "cleora_it3_0"
    assert not np.allclose(one.embeddings_, three.embeddings_)


def _planted_partition(n_blocks=4, size=40, p_in=0.3, p_out=0.01, seed=0):
    rng = np.random.default_rng(seed)
    n = n_blocks * size
    block = np.repeat(np.arange(n_blocks), size)
    prob = np.where(block[:, None] == block[None, :], p_in, p_out)
    adj = np.triu(rng.random((n, n)) < prob, 1)
    adj = adj | adj.T
    rows = [[i] + list(np.flatnonzero(adj[i])) for i in range(n)]
    return rows, block


def test_planted_partition_neighbours_share_the_block():
    rows, block = _planted_partition()
    cleora = CleoraEmbedder(n_components=64, n_iter=3, random_state=0).fit(rows)
    keys, vectors = cleora.entity_vectors()
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    nearest = keys[np.argmax(sims, axis=1)]
    purity = np.mean(block[nearest] == block[keys])
    assert purity >= 0.9
    # a random start (n_iter=0) has no structure: purity near chance (1/4)
    start = CleoraEmbedder(n_components=64, n_iter=0, random_state=0).fit(rows)
    keys0, v0 = start.entity_vectors()
    s0 = v0 @ v0.T
    np.fill_diagonal(s0, -np.inf)
    assert np.mean(block[keys0[np.argmax(s0, axis=1)]] == block[keys0]) < 0.5


@pytest.mark.filterwarnings("ignore::sklearn_basemodel.UnknownEntityWarning")
def test_pipeline_in_grid_search_classifies_blocks():
    rows, block = _planted_partition(seed=1)
    X = pd.Series(rows)
    pipe = Pipeline([("cleora", CleoraEmbedder(random_state=0)), ("clf", LogisticRegression(max_iter=500))])
    search = GridSearchCV(pipe, {"cleora__n_iter": [1, 3], "cleora__n_components": [16, 32]}, cv=3)
    search.fit(X, block)
    assert search.best_score_ > 0.9
    # labels shuffled: the same pipeline cannot exceed chance by much
    shuffled = np.random.default_rng(0).permutation(block)
    assert GridSearchCV(pipe, {"cleora__n_iter": [3]}, cv=3).fit(X, shuffled).best_score_ < 0.5


def test_transform_is_normalised_mean_and_unknown_keys_give_zeros():
    cleora = CleoraEmbedder(n_components=8, n_iter=2, random_state=0).fit(ROWS)
    with pytest.warns(UnknownEntityWarning, match="2 of 4 keys"):
        out = cleora.transform([["a", "b", "zzz"], ["yyy"], []])
    expected = cleora.get_vectors(["a"]) + cleora.get_vectors(["b"])
    np.testing.assert_allclose(out[0], _normalize(expected)[0], rtol=1e-5)
    assert out.dtype == np.float32
    assert np.all(out[1] == 0) and np.all(out[2] == 0)


def test_weighted_rows_give_weighted_mean():
    cleora = CleoraEmbedder(n_components=8, n_iter=2, random_state=0).fit(ROWS)
    out = cleora.transform([{"a": 3.0, "f": 1.0}])
    expected = 3 * cleora.get_vectors(["a"]) + cleora.get_vectors(["f"])
    np.testing.assert_allclose(out, _normalize(expected), rtol=1e-5)


def test_start_vectors_do_not_depend_on_vocabulary_order_and_seed_matters():
    a = CleoraEmbedder(n_components=16, n_iter=0, random_state=5).fit(ROWS)
    b = CleoraEmbedder(n_components=16, n_iter=0, random_state=5).fit(ROWS[::-1])
    assert list(a.vocabulary_) != list(b.vocabulary_)
    np.testing.assert_array_equal(a.get_vectors(["e"]), b.get_vectors(["e"]))
    c = CleoraEmbedder(n_components=16, n_iter=0, random_state=6).fit(ROWS)
    assert abs((a.get_vectors(["e"]) @ c.get_vectors(["e"]).T).item()) < 0.9
    # full rank start, unlike a low-rank hash init
    many = CleoraEmbedder(n_components=32, n_iter=0, random_state=0).fit([[i] for i in range(200)])
    assert np.linalg.matrix_rank(many.embeddings_) == 32


def test_same_seed_same_output_after_propagation():
    a = CleoraEmbedder(n_components=16, random_state=11).fit(ROWS).embeddings_
    b = CleoraEmbedder(n_components=16, random_state=11).fit(ROWS).embeddings_
    np.testing.assert_array_equal(a, b)


def test_columns_are_kept_apart_unless_shared():
    df = pd.DataFrame({"customer": ["42", "7"], "products": [["42", "1"], ["1"]]})
    apart = CleoraEmbedder(n_components=4, random_state=0).fit(df)
    assert len(apart.vocabulary_) == 4
    assert ("customer", "42") in apart.vocabulary_ and ("products", "42") in apart.vocabulary_
    shared = CleoraEmbedder(n_components=4, share_keys=True, random_state=0).fit(df)
    assert sorted(shared.vocabulary_) == ["1", "42", "7"]
    keys, _ = apart.entity_vectors("products")
    assert sorted(keys) == ["1", "42"]
    with pytest.raises(ValueError, match="name the column"):
        apart.entity_vectors()
    with pytest.raises(ValueError, match="pass a DataFrame"):
        apart.transform([["42"]])


def test_min_count_drops_rare_entities():
    cleora = CleoraEmbedder(n_components=4, min_count=2, random_state=0).fit(ROWS)
    # f occurs in one row only; "d" twice in one row and once in another: two rows
    assert "f" not in cleora.vocabulary_ and "d" in cleora.vocabulary_
    assert cleora.entity_counts_[cleora.vocabulary_.get_loc("d")] == 2
    assert cleora.n_entities_dropped_ == 1
    assert cleora.entity_counts_[cleora.vocabulary_.get_loc("a")] == 3


def test_initial_vectors_are_used_as_start():
    given = {"a": np.r_[1.0, 0, 0, 0], "b": np.r_[0, 2.0, 0, 0]}
    start = CleoraEmbedder(n_components=4, n_iter=0, initial_vectors=given, random_state=0).fit(ROWS)
    np.testing.assert_allclose(start.get_vectors(["a", "b"]), [[1, 0, 0, 0], [0, 1, 0, 0]])
    with pytest.raises(ValueError, match="n_components=4"):
        CleoraEmbedder(n_components=4, initial_vectors={"a": [1.0, 2.0]}).fit(ROWS)


def test_label_propagation_with_one_hot_initial_vectors():
    rows, block = _planted_partition(n_blocks=2, size=30, seed=2)
    labelled = {i: np.eye(2)[block[i]] for i in range(0, 60, 6)}
    zeros = {i: np.zeros(2) for i in range(60) if i not in labelled}
    cleora = CleoraEmbedder(n_components=2, n_iter=3, initial_vectors={**labelled, **zeros}, random_state=0)
    keys, vectors = cleora.fit(rows).entity_vectors()
    assert np.mean(vectors.argmax(axis=1) == block[keys]) > 0.9


def test_whitening_flattens_the_spectrum():
    rows, _ = _planted_partition(seed=3)
    plain = CleoraEmbedder(n_components=16, n_iter=3, random_state=0).fit(rows).embeddings_
    white = CleoraEmbedder(n_components=16, n_iter=3, whiten=True, random_state=0).fit(rows).embeddings_
    spread = lambda X: np.ptp(np.log(np.linalg.eigvalsh(np.cov(X.T))))  # noqa: E731
    assert spread(white) < spread(plain) / 2
    np.testing.assert_allclose(np.linalg.norm(white, axis=1), 1.0, rtol=1e-5)


def test_inductive_vectors_and_most_similar():
    cleora = CleoraEmbedder(n_components=8, n_iter=2, random_state=0).fit(ROWS)
    new = cleora.inductive_vectors({"new_item": ["a", "b"]})
    np.testing.assert_allclose(new.loc["new_item"].to_numpy(), cleora.transform([["a", "b"]])[0], rtol=1e-6)
    sims = cleora.most_similar("a", n=3)
    assert "a" not in set(sims["key"]) and len(sims) == 3
    assert sims["similarity"].is_monotonic_decreasing
    with pytest.raises(KeyError, match="nope"):
        cleora.get_vectors(["nope"])


def test_pickle_clone_set_output_and_feature_names():
    cleora = CleoraEmbedder(n_components=8, random_state=0).fit(ROWS)
    restored = pickle.loads(pickle.dumps(cleora))
    np.testing.assert_array_equal(restored.transform(ROWS), cleora.transform(ROWS))
    cloned = clone(cleora)
    assert cloned.get_params() == cleora.get_params() and not hasattr(cloned, "embeddings_")
    frame = CleoraEmbedder(n_components=4, n_iter=2, random_state=0).set_output(
        transform="pandas").fit_transform(ROWS)
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == [f"cleora_{i}" for i in range(4)]
    # the default keeps two scales, named by their step counts
    names = CleoraEmbedder(n_components=2, random_state=0).fit(ROWS).get_feature_names_out()
    assert names.tolist() == ["cleora_it1_0", "cleora_it1_1", "cleora_it2_0", "cleora_it2_1"]


@pytest.mark.parametrize(
    "bad, error, message",
    [
        ("milk bread", ValueError, "single string"),
        (None, TypeError, "is None"),
        ([], ValueError, "no rows"),
        (["milk", "bread"], ValueError, "Row 0 of X is a string"),
        ([["a"], None], ValueError, "Row 1 of X is None"),
        ([["a", None]], ValueError, "missing key"),
        ([["a", float("nan")]], ValueError, "missing key"),
        ([["a", ["b"]]], TypeError, "unhashable"),
        ([1, 2], ValueError, "scalar"),
    ],
)
def test_bad_input_names_the_problem(bad, error, message):
    with pytest.raises(error, match=message):
        CleoraEmbedder(n_components=4).fit(bad)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"n_components": 0}, "n_components"),
        ({"propagation": "right"}, "propagation"),
        ({"n_iter": [1, -1]}, "n_iter"),
        ({"n_iter": []}, "n_iter"),
        ({"min_count": 0}, "min_count"),
        ({"device": "tpu"}, "device"),
        ({"relations": [("a", "a")]}, "relation"),
    ],
)
def test_invalid_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        CleoraEmbedder(**params).fit(pd.DataFrame({"a": [["x"], ["y"]]}) if "relations" in params else ROWS)


def test_min_count_too_high_is_explained():
    with pytest.raises(ValueError, match="min_count=10"):
        CleoraEmbedder(min_count=10).fit(ROWS)


def test_the_gpu_path_builds_its_sparse_matrices_without_torch_warnings():
    """torch warns once per process on the first sparse CSR tensor (invariant checks, beta
    state): a fresh process, warnings as errors, the same matrix back."""
    import subprocess
    import sys

    script = (
        "import numpy as np, scipy.sparse as sp\n"
        "from sklearn_basemodel.embed.cleora.cuda import csr_tensor\n"
        "m = sp.random(5, 4, density=0.5, format='csr', random_state=0, dtype=np.float32)\n"
        "np.testing.assert_array_equal(csr_tensor(m, 'cpu').to_dense().numpy(), m.toarray())\n"
    )
    done = subprocess.run([sys.executable, "-W", "error", "-c", script], capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_cuda_request_without_gpu_is_explained():
    import torch

    if torch.cuda.is_available():
        cpu = CleoraEmbedder(n_components=8, random_state=0).fit(ROWS)
        for device in ("cuda", "cuda:0"):
            gpu = CleoraEmbedder(n_components=8, random_state=0, device=device).fit(ROWS)
            np.testing.assert_allclose(gpu.embeddings_, cpu.embeddings_, atol=1e-5)
        with pytest.raises(ValueError, match="numbered from 0"):
            CleoraEmbedder(device="cuda:99").fit(ROWS)
    else:
        for device in ("cuda", "cuda:1"):
            with pytest.raises(ValueError, match=rf"device='{device}' was requested"):
                CleoraEmbedder(device=device).fit(ROWS)


@pytest.mark.parametrize("device", ["tpu", "cuda1", "cuda:x", "CUDA", "cuda:"])
def test_a_device_cleora_cannot_use_is_named(device):
    with pytest.raises(ValueError, match=r"device must be 'cpu', 'cuda' or 'cuda:<index>'"):
        CleoraEmbedder(device=device).fit(ROWS)


def test_the_workflow_and_history_recommender_keep_the_networks_gpu_for_cleora():
    from sklearn_basemodel.embed.cleora.estimator import cleora_device

    assert cleora_device("cuda:1") == "cuda:1" and cleora_device("cuda") == "cuda"
    assert cleora_device("cpu") == "cpu" and cleora_device("mps") == "cpu"


# --------------------------------------------------------------------------- over-smoothing
def _dense_baskets(seed=0):
    """Every basket holds a few of 30 items: after many steps every vector is nearly the mean."""
    rng = np.random.default_rng(seed)
    return [list(rng.choice([f"i{j}" for j in range(30)], 8, replace=False)) for _ in range(300)]


def test_oversmoothing_warns_with_the_measured_cosine_and_unused_remedies():
    from sklearn_basemodel.exceptions import OversmoothingWarning

    with pytest.warns(OversmoothingWarning) as record:
        cleora = CleoraEmbedder(n_components=16, n_iter=6, random_state=0).fit(_dense_baskets())
    message = str(record[0].message)
    assert cleora.mean_cosine_[0] > 0.9
    assert f"{cleora.mean_cosine_[0]:.3f} after 6 step(s)" in message
    assert "several scales (n_iter=[1, 2])" in message and "propagation='symmetric'" in message
    # with several scales and symmetric propagation already set, only "fewer steps" is left
    with pytest.warns(OversmoothingWarning) as record:
        CleoraEmbedder(n_components=16, n_iter=[1, 6], propagation="symmetric",
                       random_state=0).fit(_dense_baskets())  # fmt: skip
    message = str(record[0].message)
    assert "fewer steps" in message
    assert "n_iter=[1, 2]" not in message and "symmetric'" not in message


def test_one_step_on_the_same_graph_does_not_warn():
    import warnings

    from sklearn_basemodel.exceptions import OversmoothingWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", OversmoothingWarning)
        cleora = CleoraEmbedder(n_components=16, n_iter=1, random_state=0).fit(_dense_baskets())
    assert cleora.mean_cosine_[0] < 0.9
