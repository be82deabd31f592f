"""The network, the loss, the sparse-aware data path and the shared skorch behaviour."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.utils._param_validation import InvalidParameterError
from skorch.callbacks import ProgressBar
from skorch.exceptions import DeviceWarning

from sklearn_basemodel.nn import (
    ResidualSketchNet,
    SketchClassifier,
    SketchCrossEntropy,
    SketchDataset,
    SketchRegressor,
    sketch_log_softmax,
)
from sklearn_basemodel.nn.data import _RowBatches

# Tiny networks on a shared 2-core machine: one intra-op thread is faster than contention.
CUDA = torch.cuda.is_available()
TINY = dict(hidden_units=16, n_blocks=1, batch_size=16, lr=1e-2, random_state=0)


def _blobs(n=96, n_features=12, seed=0, sparse=False):
    """Sparse-ish non-negative features; the class is decided by feature 0 vs feature 1."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, n_features)) * (rng.random((n, n_features)) < 0.4)
    y = (X[:, 0] > X[:, 1]).astype(int)
    return (sp.csr_matrix(X) if sparse else X), y


# --------------------------------------------------------------------------- module and loss
def test_module_shapes_and_layers():
    net = ResidualSketchNet(n_features=10, n_outputs=7, hidden_units=12, n_blocks=3).eval()
    out = net(torch.randn(5, 10))
    assert out.shape == (5, 7)
    n_linear = sum(isinstance(m, torch.nn.Linear) for m in net.modules())
    assert n_linear == 5  # input layer + 3 residual blocks + head
    assert net.embed(torch.randn(5, 10)).shape == (5, 12)
    heads = ResidualSketchNet(10, (7, 2), hidden_units=12, n_blocks=1).eval()(torch.randn(3, 10))
    assert [tuple(h.shape) for h in heads] == [(3, 7), (3, 2)]


def test_residual_blocks_add_their_input():
    net = ResidualSketchNet(n_features=4, n_outputs=1, hidden_units=6, n_blocks=1).eval()
    block = net.trunk[-1]
    torch.nn.init.zeros_(block.linear.weight)
    torch.nn.init.zeros_(block.linear.bias)
    block.norm.reset_running_stats()
    torch.nn.init.zeros_(block.norm.bias)
    h = torch.randn(3, 6)
    # the residual branch now outputs leaky_relu(0) = 0: the block is the identity
    assert torch.equal(block(h), h)


def test_sketch_log_softmax_is_per_contiguous_block():
    logits = torch.arange(12, dtype=torch.float32).reshape(2, 6) ** 1.5
    out = sketch_log_softmax(logits, sketch_dim=3)
    for j in range(2):
        block = logits[:, 3 * j : 3 * j + 3]
        assert torch.allclose(out[:, 3 * j : 3 * j + 3], torch.log_softmax(block, dim=1))
    # the 2021 reference grouping (strided columns j, j+N, ...) gives something else
    strided = torch.log_softmax(logits.reshape(2, 3, 2), dim=1).reshape(2, 6)
    assert not torch.allclose(out, strided)
    with pytest.raises(ValueError, match="multiple of sketch_dim"):
        sketch_log_softmax(logits, sketch_dim=4)


def test_sketch_cross_entropy_matches_the_definition():
    rng = np.random.default_rng(0)
    logits = torch.tensor(rng.normal(size=(3, 8)), dtype=torch.float32)
    target = rng.random((3, 8)) * (rng.random((3, 8)) < 0.6)
    target[2] = 0.0  # an empty target row: ignored
    target[0, :4] = [0.0, 1.0, 0.0, 0.0]
    blocks = target.reshape(3, 2, 4)
    with np.errstate(invalid="ignore"):
        blocks = blocks / blocks.sum(axis=2, keepdims=True)
    blocks = np.nan_to_num(blocks)
    expected, count = 0.0, 0
    for i in range(3):
        for j in range(2):
            if blocks[i, j].sum() > 0:
                logp = torch.log_softmax(logits[i, 4 * j : 4 * j + 4], dim=0).numpy()
                expected -= (blocks[i, j] * logp).sum()
                count += 1
    loss = SketchCrossEntropy(sketch_dim=4)(logits, torch.tensor(blocks.reshape(3, 8)))
    assert loss.item() == pytest.approx(expected / count, rel=1e-5)


# --------------------------------------------------------------------------- data path
def test_dataset_densifies_one_batch_of_a_csr_matrix():
    X, _ = _blobs(n=20, sparse=True)
    X = X.astype(np.float32)
    y = np.arange(20, dtype=np.float32)[:, None]
    ds = SketchDataset(X, y)
    Xb, yb = ds[np.array([3, 7, 8])]
    assert Xb.dtype == torch.float32 and Xb.shape == (3, X.shape[1])
    np.testing.assert_array_equal(Xb.numpy(), X[[3, 7, 8]].toarray())
    np.testing.assert_array_equal(yb.numpy().ravel(), [3, 7, 8])
    sub = ds.subset(np.array([5, 6, 7]))
    assert len(sub) == 3
    np.testing.assert_array_equal(sub[np.array([0, 2])][1].numpy().ravel(), [5, 7])
    x_one, y_one = sub[1]
    np.testing.assert_array_equal(x_one.numpy(), X[6].toarray().ravel())


@pytest.mark.parametrize("kind", ["csr", "csr with duplicates", "dense"])
def test_batches_gathered_on_the_device_equal_the_cpu_batches(kind):
    """SketchDataset.on_device (the GPU path) densifies the same batches, here on the CPU:
    duplicated and unsorted columns summed as toarray sums them, empty rows left zero."""
    rng = np.random.default_rng(3)
    X = sp.random(40, 12, density=0.3, format="csr", random_state=3, dtype=np.float32)
    if kind == "csr with duplicates":
        X = sp.csr_matrix((np.array([1.0, 2.0, 3.0, 4.0], np.float32), np.array([5, 5, 1, 0]),
                           np.r_[0, 3, 3, np.full(38, 4)]), shape=(40, 12))  # fmt: skip
        assert not X.has_canonical_format
    elif kind == "dense":
        X = X.toarray()
    y = sp.random(40, 6, density=0.5, format="csr", random_state=4, dtype=np.float32)
    for targets in (y, np.arange(40), None):
        plain = SketchDataset(X, targets).subset(rng.permutation(40)[:30])
        gathered = plain.on_device("cpu")
        for index in (rng.permutation(30)[:11], np.array([0, 1, 2]), 7):
            expected, got = plain[index], gathered[index]
            for a, b in zip(expected, got):
                assert a.dtype == b.dtype and a.shape == b.shape
                np.testing.assert_array_equal(a.numpy(), b.numpy())
        # subsets of the gathered dataset share its copies and stay on the device
        part = gathered.subset(np.array([4, 2]))
        assert part._copies is gathered._copies
        np.testing.assert_array_equal(part[np.array([0, 1])][0].numpy(),
                                      plain[np.array([4, 2])][0].numpy())  # fmt: skip


def test_rows_too_large_for_the_gpu_stay_on_the_cpu(monkeypatch):
    """A GPU copy larger than half of the free GPU memory is not made: batches are then
    densified on the CPU as before (simulated: the GPU reports too little free memory)."""
    X, _ = _blobs(n=50, sparse=True)
    X = X.astype(np.float32)
    dataset = SketchDataset(X, np.arange(50))
    needed = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes + np.arange(50).nbytes
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2 * needed - 2, 10**12))
    assert dataset.on_device("cuda") is dataset and not dataset._copies
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2 * needed, 10**12))
    # enough memory: the copies are made (here the device is the CPU in disguise)
    monkeypatch.setattr(torch.Tensor, "to", lambda self, *a, **k: self)
    gathered = dataset.on_device("cuda")
    assert gathered is not dataset and torch.device("cuda") in dataset._copies


def test_training_through_the_device_batches_is_the_same_training(monkeypatch):
    """The estimators' GPU data path, taken on the CPU: the same fit and predictions."""
    from sklearn_basemodel.nn import _base

    X, y = _blobs(n=120, sparse=True)
    params = dict(max_epochs=3, early_stopping=True, **TINY)
    expected = SketchClassifier(**params).fit(X, y)
    monkeypatch.setattr(_base, "_GATHER_ON_DEVICE", ("cuda", "cpu"))
    taken = []
    original = SketchDataset.on_device
    monkeypatch.setattr(SketchDataset, "on_device",
                        lambda self, device: taken.append(device) or original(self, device))
    gathered = SketchClassifier(**params).fit(X, y)
    assert taken  # the device path was taken
    np.testing.assert_allclose(gathered.history[:, "valid_loss"], expected.history[:, "valid_loss"],
                               rtol=1e-6)  # fmt: skip
    np.testing.assert_allclose(gathered.predict_proba(X), expected.predict_proba(X), rtol=1e-6)


def test_row_batches_merge_a_single_leftover_row_when_training():
    sizes = [len(b) for b in _RowBatches(33, 16, shuffle=True, seed=0, training=True)]
    assert sizes == [16, 17]
    assert sorted(np.concatenate(list(_RowBatches(33, 16, shuffle=True, seed=0)))) == list(
        range(33)
    )
    assert [len(b) for b in _RowBatches(33, 16, shuffle=False, seed=None)] == [16, 16, 1]
    assert [len(b) for b in _RowBatches(33, 16, shuffle=False, seed=None, drop_last=True)] == [
        16,
        16,
    ]


def test_fit_on_33_rows_with_batch_16_does_not_hit_a_batch_of_one():
    X, y = _blobs(n=33)
    clf = SketchClassifier(max_epochs=2, **TINY).fit(X, y)
    assert clf.history[-1, "train_batch_count"] == 2


def test_sparse_dense_float64_and_dataframe_inputs_agree():
    X, y = _blobs()
    reference = SketchClassifier(max_epochs=3, **TINY).fit(X.astype(np.float32), y)
    expected = reference.predict_proba(X.astype(np.float32))
    for variant in (sp.csr_matrix(X), X.astype(np.float64), pd.DataFrame(X).add_prefix("f")):
        clf = SketchClassifier(max_epochs=3, **TINY).fit(variant, y)
        np.testing.assert_allclose(clf.predict_proba(variant), expected, rtol=1e-5, atol=1e-6)


def test_predict_checks_the_input_width_and_feature_names():
    X, y = _blobs()
    clf = SketchClassifier(max_epochs=1, **TINY).fit(pd.DataFrame(X).add_prefix("f"), y)
    assert list(clf.feature_names_in_[:2]) == ["f0", "f1"]
    with pytest.raises(ValueError, match="features"), pytest.warns(UserWarning, match="names"):
        clf.predict(X[:, :5])
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(pd.DataFrame(X).add_prefix("g"))


def test_not_fitted_and_parameter_errors():
    X, y = _blobs()
    with pytest.raises(NotFittedError):
        SketchClassifier().predict(X)
    with pytest.raises(InvalidParameterError, match="hidden_units"):
        SketchClassifier(hidden_units=0).fit(X, y)
    with pytest.raises(InvalidParameterError, match="validation_fraction"):
        SketchClassifier(validation_fraction=1.5).fit(X, y)
    with pytest.raises(ValueError, match="freeze_epochs=2 freezes a pretrained trunk"):
        SketchClassifier(freeze_epochs=2).fit(X, y)
    with pytest.raises(ValueError, match="y has 1"):
        SketchClassifier().fit(X, y[:1])
    with pytest.raises(ValueError, match="SketchRegressor"):
        SketchClassifier().fit(X, np.linspace(0, 1, len(X)))
    with pytest.raises(ValueError, match="single class"):
        SketchClassifier().fit(X, np.zeros(len(X)))


# --------------------------------------------------------------------------- classifier
def test_binary_classifier_learns_and_returns_two_columns():
    X, y = _blobs()
    labels = np.where(y == 1, "churn", "stay")
    clf = SketchClassifier(max_epochs=25, **TINY).fit(X, labels)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert list(clf.classes_) == ["churn", "stay"]
    assert clf.score(X, labels) > 0.9
    np.testing.assert_allclose(
        clf.decision_function(X) > 0, proba[:, 1] > 0.5
    )  # positive logit <=> second class
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba, rtol=1e-6)


def test_multiclass_classifier():
    rng = np.random.default_rng(1)
    X = rng.random((120, 9))
    y = np.array(["a", "b", "c"])[np.argmax(X[:, :3], axis=1)]
    clf = SketchClassifier(max_epochs=30, **TINY).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (120, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert clf.score(X, y) > 0.8
    assert isinstance(clf.criterion_, torch.nn.CrossEntropyLoss)


def test_multilabel_classifier_learns_each_label():
    rng = np.random.default_rng(2)
    X = rng.random((120, 8))
    Y = pd.DataFrame({"buys_dairy": X[:, 0] > 0.5, "buys_beer": X[:, 1] > 0.5}).astype(int)
    clf = SketchClassifier(max_epochs=30, **TINY).fit(X, Y)
    assert list(clf.classes_) == ["buys_dairy", "buys_beer"]
    proba = clf.predict_proba(X)
    assert proba.shape == (120, 2)
    predicted = clf.predict(X)
    assert set(np.unique(predicted)) <= {0, 1}
    for label in range(2):
        assert (predicted[:, label] == Y.to_numpy()[:, label]).mean() > 0.85


def test_regressor_single_and_multi_output():
    rng = np.random.default_rng(3)
    X = rng.random((120, 6))
    spend = 1000.0 + 400.0 * X[:, 0]  # large offset: standardisation makes it learnable
    reg = SketchRegressor(max_epochs=30, **TINY).fit(X, spend)
    assert reg.predict(X).shape == (120,)
    assert reg.score(X, spend) > 0.8
    assert reg.target_mean_[0] == pytest.approx(spend.mean())
    Y = np.column_stack([spend, -3.0 * X[:, 1]])
    multi = SketchRegressor(max_epochs=30, **TINY).fit(X, Y)
    assert multi.predict(X).shape == (120, 2)
    assert multi.score(X, Y) > 0.7
    with pytest.raises(ValueError, match="NaN"):
        SketchRegressor().fit(X, np.r_[np.nan, spend[1:]])


# --------------------------------------------------------------------------- reproducibility
def test_same_seed_same_predictions_and_global_rng_untouched():
    X, y = _blobs()
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)
    a = SketchClassifier(max_epochs=3, dropout=0.3, **TINY).fit(X, y)
    assert torch.equal(torch.rand(3), expected_draw)  # fit ran in a forked RNG state
    b = SketchClassifier(max_epochs=3, dropout=0.3, **TINY).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    c = SketchClassifier(max_epochs=3, dropout=0.3, **{**TINY, "random_state": 1}).fit(X, y)
    assert not np.allclose(a.predict_proba(X), c.predict_proba(X))


# --------------------------------------------------------------------------- sklearn API
def test_clone_get_params_set_params():
    clf = SketchClassifier(hidden_units=8, module__negative_slope=0.2, optimizer__weight_decay=0.0)
    params = clf.get_params(deep=False)
    assert params["hidden_units"] == 8 and params["module__negative_slope"] == 0.2
    twin = clone(clf)
    assert twin.get_params(deep=False).keys() == params.keys()
    assert twin.module__negative_slope == 0.2 and twin.optimizer__weight_decay == 0.0
    X, y = _blobs()
    twin.set_params(module__hidden_units=5, max_epochs=1).fit(X, y)
    assert twin.module_.hidden_units == 5  # the skorch-style parameter wins over hidden_units
    assert twin.module_.negative_slope == 0.2
    assert twin.optimizer_.param_groups[0]["weight_decay"] == 0.0
    friendly = clone(clf).set_params(hidden_units=7, n_blocks=2, max_epochs=1).fit(X, y)
    assert friendly.module_.hidden_units == 7 and friendly.module_.n_blocks == 2


def test_grid_search_over_prefixed_module_params():
    X, y = _blobs(n=60)
    search = GridSearchCV(
        SketchClassifier(max_epochs=2, **TINY),
        {"module__hidden_units": [4, 8], "lr": [1e-2]},
        cv=KFold(2),
    ).fit(X, y)
    assert search.best_params_["module__hidden_units"] in (4, 8)
    assert search.best_estimator_.module_.hidden_units == search.best_params_["module__hidden_units"]
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_early_stopping_uses_a_validation_split_and_stops():
    X, y = _blobs(n=80)
    clf = SketchClassifier(
        max_epochs=40, early_stopping=True, n_iter_no_change=2, **{**TINY, "lr": 1e-9}
    ).fit(X, y)
    assert len(clf.history) < 10  # the loss cannot improve with lr=1e-9
    valid_rows = sum(clf.history[0, "batches", :, "valid_batch_size"])
    assert valid_rows == 8  # validation_fraction defaults to 0.1 with early stopping
    plain = SketchClassifier(max_epochs=2, validation_fraction=0.25, **TINY).fit(X, y)
    assert sum(plain.history[0, "batches", :, "valid_batch_size"]) == 20
    assert "valid_loss" in plain.history[-1]
    assert "valid_loss" not in SketchClassifier(max_epochs=1, **TINY).fit(X, y).history[-1]


def test_early_stopping_auto_turns_on_for_many_rows_and_for_streams(monkeypatch):
    import sklearn_basemodel.nn._base as base
    from sklearn_basemodel.nn import BatchStream

    monkeypatch.setattr(base, "_AUTO_EARLY_STOPPING_ROWS", 60)  # the rule, at a testable size
    X, y = _blobs(n=80)
    auto = SketchClassifier(max_epochs=2, **TINY).fit(X, y)
    assert auto.early_stopping == "auto" and auto.early_stopping_ is True
    assert sum(auto.history[0, "batches", :, "valid_batch_size"]) == 8
    assert any(name == "early_stopping" for name, _ in auto.callbacks_)
    small = SketchClassifier(max_epochs=2, **TINY).fit(X[:50], y[:50])
    assert small.early_stopping_ is False and "valid_loss" not in small.history[-1]
    off = SketchClassifier(max_epochs=2, early_stopping=False, **TINY).fit(X, y)
    assert off.early_stopping_ is False and "valid_loss" not in off.history[-1]
    # a stream's size is unknown in advance: "auto" stops early on its held-out rows
    chunks = [(X[i : i + 20], y[i : i + 20], np.arange(i, i + 20)) for i in range(0, 40, 20)]
    streamed = SketchClassifier(max_epochs=2, **TINY).fit(BatchStream(chunks))
    assert streamed.early_stopping_ is True
    # and the default max_epochs lets the stream's held-out rows end training (cap 50)
    default = SketchClassifier(**TINY).fit(BatchStream(chunks))
    assert default.max_epochs_ == 50 and len(default.history) < 50


def test_max_epochs_auto_lets_early_stopping_run_past_ten_epochs(monkeypatch):
    """The default cap is 10 epochs without early stopping; with it, the held-out rows choose
    (up to 50), so a slow learner is not cut off at 10."""
    import sklearn_basemodel.nn._base as base

    X, y = _blobs(n=200)
    assert SketchClassifier().max_epochs == "auto"
    fixed = SketchClassifier(**TINY).fit(X, y)  # 200 rows: early stopping "auto" is off
    assert fixed.max_epochs_ == 10 and len(fixed.history) == 10
    # a learning rate so small that the held-out loss still falls after 10 epochs
    slow = {**TINY, "lr": 1e-4}
    monkeypatch.setattr(base, "_AUTO_MAX_EPOCHS_EARLY_STOPPING", 14)  # the rule, cheaper
    stopping = SketchClassifier(early_stopping=True, **slow).fit(X, y)
    assert stopping.max_epochs_ == 14 and len(stopping.history) > 10
    # an explicit cap is honoured, with or without early stopping
    capped = SketchClassifier(early_stopping=True, max_epochs=3, **slow).fit(X, y)
    assert capped.max_epochs_ == 3 and len(capped.history) == 3


def test_held_out_loss_scores_the_rows_training_would_validate_on():
    X, y = _blobs(n=120)
    stopping = SketchClassifier(early_stopping=True, max_epochs=4, **TINY).fit(X, y)
    # early stopping restored the epoch that last improved by more than tol: the same rows
    # score that epoch's network
    restored = dict(stopping.callbacks_)["early_stopping"].best_epoch_
    losses = dict(zip(stopping.history[:, "epoch"], stopping.history[:, "valid_loss"]))
    assert stopping.held_out_loss(X, y) == pytest.approx(losses[restored], rel=1e-6)
    held = SketchClassifier(validation_fraction=0.25, max_epochs=3, **TINY).fit(X, y)
    assert held.held_out_loss(X, y) == pytest.approx(held.history[-1, "valid_loss"])
    # other rows, another figure; no hold-out, no figure
    assert held.held_out_loss(X[::-1], y[::-1]) != pytest.approx(held.history[-1, "valid_loss"])
    assert SketchClassifier(max_epochs=1, **TINY).fit(X, y).held_out_loss(X, y) is None


def test_partial_fit_trains_max_epochs_as_set_at_the_time():
    X, y = _blobs(n=80)
    model = SketchClassifier(max_epochs=2, **TINY).fit(X, y)
    model.set_params(max_epochs="auto").partial_fit(X, y)  # no early stopping: 10 more
    assert model.max_epochs_ == 10 and len(model.history) == 12
    model.set_params(max_epochs=1).partial_fit(X, y)
    assert model.max_epochs_ == 1 and len(model.history) == 13


def test_early_stopping_auto_threshold_is_ten_thousand_rows():
    import sklearn_basemodel.nn._base as base

    assert base._AUTO_EARLY_STOPPING_ROWS == 10_000
    assert SketchClassifier().early_stopping == "auto"


def test_progress_bar_option_adds_the_callback(capsys):
    X, y = _blobs(n=40)
    clf = SketchClassifier(max_epochs=1, progress_bar=True, **TINY).fit(X, y)
    assert any(isinstance(cb, ProgressBar) for _, cb in clf.callbacks_)
    quiet = SketchClassifier(max_epochs=1, **TINY).fit(X, y)
    assert not any(isinstance(cb, ProgressBar) for _, cb in quiet.callbacks_)


def test_warm_start_continues_training():
    X, y = _blobs()
    clf = SketchClassifier(max_epochs=2, warm_start=True, **TINY).fit(X, y)
    before = clf.module_.heads[0].weight.detach().clone()
    clf.fit(X, y)
    assert len(clf.history) == 4
    assert not torch.equal(before, clf.module_.heads[0].weight)
    again = SketchClassifier(max_epochs=2, **TINY).fit(X, y)
    again.partial_fit(X, y)
    assert len(again.history) == 4


def test_embed_returns_the_trunk_output():
    X, y = _blobs()
    clf = SketchClassifier(max_epochs=1, **TINY).fit(X, y)
    emb = clf.embed(X)
    assert emb.shape == (len(X), 16) and emb.dtype == np.float32
    with torch.no_grad():
        expected = clf.module_.eval().trunk(torch.tensor(X, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(emb, expected, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- devices, pickling
def test_pickle_round_trip_keeps_predictions():
    X, y = _blobs()
    clf = SketchClassifier(max_epochs=2, **TINY).fit(X, y)
    loaded = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


@pytest.mark.skipif(CUDA, reason="simulates loading a CUDA model on a machine without CUDA")
def test_a_model_saved_with_device_cuda_loads_on_cpu():
    X, y = _blobs()
    clf = SketchRegressor(max_epochs=2, **TINY).fit(X, y.astype(float))
    expected = clf.predict(X)
    clf.device = "cuda"  # what a model trained on a GPU carries
    blob = pickle.dumps(clf)
    with pytest.warns(DeviceWarning):
        loaded = pickle.loads(blob)
    assert loaded.device == "cpu"
    assert next(loaded.module_.parameters()).device.type == "cpu"
    np.testing.assert_allclose(loaded.predict(X), expected, rtol=1e-6)


@pytest.mark.skipif(CUDA, reason="CUDA is available here")
def test_cuda_requested_without_cuda_is_a_clear_error():
    X, y = _blobs()
    with pytest.raises(ValueError, match="CUDA is not available"):
        SketchClassifier(device="cuda", max_epochs=1).fit(X, y)


@pytest.mark.skipif(not CUDA, reason="needs CUDA")
def test_cuda_fit_predict_and_cpu_reload(tmp_path):
    X, y = _blobs(sparse=True)
    gpu = SketchClassifier(max_epochs=3, device="cuda", **TINY).fit(X, y)
    assert next(gpu.module_.parameters()).device.type == "cuda"
    proba = gpu.predict_proba(X)
    # the devices round differently and Adam amplifies that: trained alike, not to equal
    # weights (tests/test_cuda.py)
    cpu = SketchClassifier(max_epochs=3, **TINY).fit(X, y)
    assert abs(gpu.score(X, y) - cpu.score(X, y)) < 0.1
    loaded = pickle.loads(pickle.dumps(gpu))
    loaded.set_params(device="cpu")
    loaded.module_.to("cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(loaded.predict_proba(X), proba, atol=1e-5)
