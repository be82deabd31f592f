"""The real-data benchmark scripts run as a user runs them: as programs, not imported.

What they compute is the library's (recipes, baselines, metrics: tested in test_recipes.py
and the baselines' tests); here each script skips cleanly without its data, and the YooChoose
script runs end to end on a tiny synthetic click log whose next click is always the same, so
the sequential rules must be perfect and the reported figures must be those of the report.
"""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

_BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _run(script, *args, timeout=600):
    done = subprocess.run(
        [sys.executable, str(_BENCHMARKS / script), *map(str, args)],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize(
    ("script", "option"),
    [("tafeng.py", "--no-write"), ("cdnow.py", "--no-write"), ("yoochoose.py", None)],
)
def test_scripts_skip_without_their_data(script, option, tmp_path):
    report = tmp_path / "r.md"
    args = [option] if option else ["--out", report]  # yoochoose writes where it is told
    assert _run(script, "--data", tmp_path, *args).startswith("skipped:")
    assert not report.exists()


def _chain_clicks(path, n_sessions, first_session, day0, seed):
    """A click log (SessionId, ItemId, Time) walking the chain 1000 -> 1001 -> ... -> 1023."""
    rng = np.random.default_rng(seed)
    lines = ["SessionId\tItemId\tTime"]
    for sid in range(first_session, first_session + n_sessions):
        start, length = int(rng.integers(24)), int(rng.integers(2, 7))
        t0 = day0 + (sid - first_session) * 600.0
        lines += [f"{sid}\t{1000 + (start + j) % 24}\t{t0 + 30.0 * j}" for j in range(length)]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.slow
def test_yoochoose_end_to_end_on_a_synthetic_chain(tmp_path):
    folder = tmp_path / "yoochoose100k"
    folder.mkdir()
    _chain_clicks(folder / "train.tsv", 300, 0, 1396310400.0, seed=0)  # 2014-04-01, 2+ days
    _chain_clicks(folder / "test.tsv", 100, 300, 1396310400.0 + 7 * 86400, seed=1)
    out = tmp_path / "results.md"
    lines = _run("yoochoose.py", "--data", tmp_path, "--out", out, "--epochs", "1",
                 "--threads", "1", "--seeds", "0").strip().splitlines()  # fmt: skip
    hr, mrr = (float(v) for v in re.fullmatch(
        r"yoochoose hr@20=([0-9.]+) mrr@20=([0-9.]+)", lines[-1]).groups())  # fmt: skip
    assert 0 < mrr <= hr <= 1
    report = out.read_text()
    assert "| SR | 1.0000 | 1.0000 |" in report  # a deterministic successor: SR is perfect
    boosted = [line for line in report.splitlines() if line.startswith("| **EMDE + history")]
    assert len(boosted) == 1 and f"| {hr:.4f} | {mrr:.4f} |" in boosted[0]
    # the report names the settings the selection chose: one of the grid, the best row of the
    # validation table (which is ranked as the selection ranks)
    chosen = re.search(r"\*\*history_weight=([0-9.]+), half-life=([0-9.]+|None), "
                       r"history_blend=(linear|log)\*\*", report)  # fmt: skip
    assert chosen, report
    weight, half_life, blend = chosen.groups()
    yoochoose = _load("yoochoose.py")
    assert float(weight) in yoochoose.HISTORY_WEIGHTS
    assert half_life in [str(h) for h in yoochoose.HISTORY_HALF_LIVES]
    table = report[report.index("| half-life | history_blend | history_weight |"):].splitlines()
    assert table[2].startswith(f"| {half_life} | {blend} | {weight} |")
    assert f"seed 0: weight {weight}, half-life {half_life} clicks, {blend} blend" in boosted[0]
    # the last training day's learning rate: one of the rates the library's walk tries (0.0:
    # the network validated better unchanged)
    rate = re.search(r"on the last training day at learning rate ([0-9.e-]+) ", report)
    assert rate and any(float(rate.group(1)) == pytest.approx(r)
                        for r in (1e-3, 3e-4, 1e-4, 3e-5, 0.0)), report  # fmt: skip
    # and the item prior's strength the network chose on its early-stopping rows
    assert re.search(r"\bblend, item prior strength (0\.0|0\.5|1\.0)\b", boosted[0]), boosted[0]


def _tafeng_files(folder, n_users=60, n_items=30, seed=0):
    """Ta-Feng's files for users who buy their own three items in every basket (plus one random
    item) and again in the future basket: their own frequency finds the future exactly."""
    import json

    rng = np.random.default_rng(seed)
    history, future = {}, {}
    for user in range(n_users):
        own = [user % n_items, (user + 7) % n_items, (user + 13) % n_items]
        baskets = [own + [int(rng.integers(n_items))] for _ in range(int(rng.integers(3, 6)))]
        history[str(user)] = [[-1], *baskets, [-1]]
        future[str(user)] = [[-1], own, [-1]]
    folder.mkdir()
    (folder / "history.json").write_text(json.dumps(history))
    (folder / "future.json").write_text(json.dumps(future))
    users = rng.permutation(n_users).tolist()
    for index in range(3):
        keyset = {"train": users[:40], "val": users[40:50], "test": users[50:],
                  "item_num": n_items}  # fmt: skip
        (folder / f"keyset_{index}.json").write_text(json.dumps(keyset))


@pytest.mark.slow
def test_tafeng_end_to_end_on_repeated_baskets(tmp_path):
    _tafeng_files(tmp_path / "tafeng")
    out = _run("tafeng.py", "--data", tmp_path, "--keysets", "0", "--threads", "1",
               "--no-write")  # fmt: skip
    found = re.fullmatch(r"tafeng recall@10=([0-9.]+) ndcg@10=([0-9.]+) "
                         r"model_recall@10=([0-9.]+)", _last_line(out))  # fmt: skip
    assert found, _last_line(out)
    recall, ndcg, alone = (float(v) for v in found.groups())
    assert "| GP-TopFreq (computed here) | 1.0000 | 1.0000 | 1.0000 |" in out
    cell = lambda v: f"{v:.4f}".lstrip("0")
    tafeng = _load("tafeng.py")
    assert f"| **{tafeng.FINAL}** | {cell(recall)} | {cell(ndcg)} |" in out
    assert f"| EMDE fine-tuned, model only | {cell(alone)} |" in out
    # the val users' own purchases are their future: the selection turns the boost on, and
    # reports which of ranker and boost it kept, with both validation scores
    row = re.search(r"\| 0 \| 1\.0000 / 1\.0000 \| [0-9.]+ / [0-9.]+ \| [0-9.]+ / [0-9.]+ \| "
                    r"(ranker|boost) \(([0-9.]+)/([0-9.]+) vs ([0-9.]+)/([0-9.]+)\) \| ([0-9.]+) \| "
                    r"([0-9.]+|None) \| (linear|log) \| (0\.0|0\.5|1\.0) \| ([0-9.e-]+) \|",
                    out)  # fmt: skip
    assert row, out
    kept, scores = row.group(1), [float(v) for v in row.group(2, 3, 4, 5)]
    if scores[:2] != scores[2:]:  # (equal as printed: too close to tell here)
        assert (kept == "ranker") == (scores[:2] > scores[2:])
    row = re.search(r"\| 0 \| 1\.0000 / 1\.0000 \| [0-9.]+ / [0-9.]+ \| [0-9.]+ / [0-9.]+ \| "
                    r"[^|]+ \| ([0-9.]+) \| "
                    r"([0-9.]+|None) \| (linear|log) \| (0\.0|0\.5|1\.0) \| ([0-9.e-]+) \|",
                    out)  # fmt: skip
    assert 0 < float(row.group(1)) <= max(tafeng.HISTORY_WEIGHTS)
    assert row.group(2) in [str(h) for h in tafeng.HISTORY_HALF_LIVES]
    # the fine-tuning's learning rate: one of the rates the library's walk tries (0.0: the
    # pretrained network validated better and was kept unchanged)
    assert any(float(row.group(5)) == pytest.approx(rate)
               for rate in (1e-3, 3e-4, 1e-4, 3e-5, 0.0))  # fmt: skip
    assert recall == pytest.approx(1.0)


def _cdnow_file(folder, n_customers=80):
    """CDNOW_sample.txt for customers who buy every 20 days until mid-1998 (odd ids: in the
    holdout too) or only in early 1997 (even ids): recency separates the labels exactly."""
    lines = []
    for customer in range(1, n_customers + 1):
        end = "1998-06-20" if customer % 2 else "1997-03-31"
        start = pd.Timestamp("1997-01-01") + pd.Timedelta(days=customer % 9)
        for day in pd.date_range(start, end, freq="20D"):
            lines.append(f"{customer:05d} {customer:04d} {day:%Y%m%d} {1 + customer % 3} "
                         f"{10.0 + customer % 7:.2f}")  # fmt: skip
    folder.mkdir()
    (folder / "CDNOW_sample.txt").write_text("\n".join(lines) + "\n")


@pytest.mark.slow
def test_cdnow_end_to_end_on_separable_customers(tmp_path):
    _cdnow_file(tmp_path / "cdnow")
    out = _run("cdnow.py", "--data", tmp_path, "--threads", "1", "--no-write")
    found = re.fullmatch(r"cdnow auc=([0-9.]+)", _last_line(out))
    assert found, _last_line(out)
    cdnow = _load("cdnow.py")
    final = [line for line in out.splitlines() if line.startswith(f"| **{cdnow.FINAL}** |")]
    assert len(final) == 1 and f"| {float(found.group(1)):.4f} |" in final[0]
    assert float(found.group(1)) == pytest.approx(1.0)  # recency alone separates them
    assert "| RFM + logistic regression (log features) | 1.0000 |" in out
    kept = re.search(r"kept the pretrained trunk in (\d) of 5 folds \((\[.*?\])", out)
    assert kept and int(kept.group(1)) == kept.group(2).count("True")


def test_benchmarks_share_one_history_boost_grid():
    """Issue 10: one configuration for every dataset, the boost's grid included."""
    tafeng, yoochoose = _load("tafeng.py"), _load("yoochoose.py")
    assert tafeng.HISTORY_WEIGHTS == yoochoose.HISTORY_WEIGHTS
    assert tafeng.HISTORY_HALF_LIVES == yoochoose.HISTORY_HALF_LIVES
    assert 0.0 in tafeng.HISTORY_WEIGHTS  # the selection may turn the boost off


# --------------------------------------------------------------------------- issue 10's scripts
def _load(script):
    """A benchmark script as a module, to call its main() and helpers in this process."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(Path(script).stem, _BENCHMARKS / script)
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is being defined
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _last_line(text):
    return text.strip().splitlines()[-1]


def test_training_speed_compares_the_same_shapes_and_loss():
    torch = pytest.importorskip("torch")
    from sklearn_basemodel.nn import ResidualSketchNet, SketchCrossEntropy

    speed = _load("training_speed.py")
    plain = speed.plain_mlp(48, 16, 2, 24)
    library = ResidualSketchNet(n_features=48, n_outputs=24, hidden_units=16, n_blocks=2)

    def linear_shapes(net):
        return [tuple(m.weight.shape) for m in net.modules() if isinstance(m, torch.nn.Linear)]

    assert linear_shapes(plain) == linear_shapes(library)
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 24, generator=generator)
    target = torch.rand(5, 24, generator=generator)
    target[2] = 0.0  # a row without mass counts for nothing in both
    expected = SketchCrossEntropy(sketch_dim=8)(logits, target)
    assert torch.allclose(speed.grouped_cross_entropy(logits, target, 8), expected)


def test_training_speed_sketches_have_one_unit_of_mass_per_sketch():
    speed = _load("training_speed.py")
    X = speed.sparse_sketches(30, 4, 8, 3, np.random.default_rng(0))
    assert X.shape == (30, 32)
    blocks = X.toarray().reshape(30, 4, 8)
    np.testing.assert_allclose(blocks.sum(axis=2), 1.0, rtol=1e-6)
    assert ((blocks > 0).sum(axis=2) <= 3).all()


def test_training_speed_main_reports_rows_per_second(capsys):
    pytest.importorskip("torch")
    speed = _load("training_speed.py")
    result = speed.main(["--rows", "600", "--width", "64", "--sketches", "4", "--hidden", "32",
                         "--blocks", "1", "--epochs", "1", "--items", "50", "--basket", "3",
                         "--no-write"])  # fmt: skip
    line = _last_line(capsys.readouterr().out)
    found = re.fullmatch(
        r"training_speed rows_per_s=(\d+) torch_rows_per_s=(\d+) ratio=([0-9.]+)", line
    )
    assert found, line
    rows, torch_rows, ratio = (float(v) for v in found.groups())
    assert rows > 0 and torch_rows > 0
    assert rows == pytest.approx(result["rows_per_s"], abs=1)
    # the ratio is of times per epoch: the inverse ratio of the rows per second
    assert ratio == pytest.approx(torch_rows / rows, rel=0.02, abs=0.01)


def _events(rows):
    """A tiny events table: (customer, basket, product, category, type, amount, time)."""
    columns = ["customer_id", "basket_id", "product_id", "category_id", "event_type",
               "amount", "event_time"]  # fmt: skip
    events = pd.DataFrame(rows, columns=columns)
    events["event_time"] = pd.to_datetime(events["event_time"])
    events["event_type"] = pd.Categorical(
        events["event_type"], categories=["purchase", "view", "add_to_cart", "return"]
    )
    return events


def test_universal_profile_labels_rows_by_customer():
    profile = _load("universal_profile.py")
    events = _events([
        (1, 1, 10, 100, "purchase", 2.0, "2024-10-20"),   # active, buys P in C: no churn
        (1, 2, 10, 100, "purchase", 2.0, "2024-11-10"),
        (2, 3, 11, 101, "view", 0.0, "2024-09-01"),       # active, only views after: category 0
        (2, 4, 12, 100, "view", 0.0, "2024-11-05"),
        (3, 5, 11, 101, "purchase", 5.0, "2024-10-30"),   # active, nothing after: churn
        (4, 6, 11, 101, "purchase", 1.0, "2024-03-01"),   # inactive for 90 days
        (5, 7, 11, 101, "purchase", 1.0, "2024-11-02"),   # no history at the cut-off: no row
    ])  # fmt: skip
    rows = profile.customer_rows(events, "2024-11-01", category=100, product=10)
    assert rows.index.tolist() == [1, 2, 3, 4]
    assert rows["active"].tolist() == [True, True, True, False]
    assert rows["churn"].tolist() == [False, False, True, True]
    assert rows["category"].tolist() == [True, False, False, False]
    assert rows["product"].tolist() == [True, False, False, False]
    assert rows.loc[1, "future"] == [10] and rows.loc[2, "future"] == [12]
    assert rows["total_amount"].tolist() == [2.0, 0.0, 5.0, 1.0]
    # the workflow's RFM columns and the category history beside the products'
    assert rows["mean_amount"].tolist() == [2.0, 0.0, 5.0, 1.0]
    assert rows["n_baskets"].tolist() == [1, 1, 1, 1]
    assert rows.loc[1, "decay_weight_sum"] == pytest.approx(0.5 ** (12 / 30))
    assert rows.loc[2, "categories"] == [101] and rows.loc[2, "categories_ages"] == [61.0]


def test_universal_profile_aggregates_by_type_window_and_category():
    profile = _load("universal_profile.py")
    events = _events([
        (1, 1, 10, 100, "purchase", 3.0, "2024-10-30"),  # 2 days before the cut-off
        (1, 2, 11, 101, "purchase", 5.0, "2024-09-15"),  # 47 days
        (1, 3, 11, 101, "view", 0.0, "2024-05-01"),      # 184 days
        (2, 4, 10, 100, "return", 4.0, "2024-10-25"),    # 7 days
        (1, 5, 10, 100, "purchase", 9.0, "2024-11-03"),  # after the cut-off: ignored
    ])  # fmt: skip
    X = profile.aggregated_features(events, "2024-11-01", [2, 1, 7], categories=[100, 101])
    assert X.shape[0] == 3 and (X[2] == 0).all()  # customer 7 has no events
    raw = np.sign(X) * np.expm1(np.abs(X))  # undo the signed log
    # per window 4 types x (count, amount), then 2 categories for 30 and 90 days; then 3 more
    assert X.shape[1] == 4 * 2 * 4 + 2 * 2 + 3
    # columns: per window 7d, 30d, 90d, all: counts of the 4 types, amounts of the 4 types,
    # then (30d and 90d only) purchases per category
    assert raw[1, 18] == pytest.approx(2.0)  # customer 1: 2 purchases within 90 days
    assert raw[1, 22] == pytest.approx(8.0)  # ... for 3.0 + 5.0
    assert raw[1, 26:28] == pytest.approx([1.0, 1.0])  # one in each category
    assert raw[1, 16:18] == pytest.approx([1.0, 0.0])  # within 30 days: only category 100
    assert raw[1, 29] == pytest.approx(1.0)  # the view, 184 days ago, in the whole history
    assert raw[1, -3:] == pytest.approx([184.0, 2.0, 3.0], abs=1e-6)  # first, last, baskets
    assert raw[0, 3] == pytest.approx(1.0)  # customer 2: a return within 7 days
    assert raw[0, 7] == pytest.approx(4.0)  # ... of 4.0


def test_universal_profile_task_targets_take_the_third_most_purchased():
    profile = _load("universal_profile.py")
    rows = [(1, i, product, product // 10, "purchase", 1.0, "2024-01-02")
            for product, n in [(10, 5), (20, 4), (31, 3), (30, 3), (40, 2)] for i in range(n)]
    rows.append((1, 99, 50, 5, "purchase", 1.0, "2024-07-01"))  # after the cut-off
    category, product = profile.task_targets(_events(rows), "2024-06-01")
    assert product == 30  # 31 and 30 tie at 3 purchases: the lower id first
    assert category == 2  # category 3 (6 purchases), 1 (5), 2 (4), 4 (2)


def test_universal_profile_main_runs_at_a_tiny_size(capsys):
    pytest.importorskip("torch")
    profile = _load("universal_profile.py")
    stats = profile.main(["--events", "20000", "--seeds", "0", "--heads", "2",
                          "--hidden-units", "32", "--max-epochs", "2", "--no-write"])  # fmt: skip
    line = _last_line(capsys.readouterr().out)
    number = r"([0-9.]+|nan)/([0-9.]+|nan)"
    found = re.fullmatch(
        rf"universal_profile churn={number} category={number} product={number}", line
    )
    assert found, line
    values = [float(v) for v in found.groups()]
    assert all(0 <= v <= 1 for v in values)
    assert values[0] == pytest.approx(stats["library", "universal", "churn"][0], abs=1e-4)
    assert {key[0] for key in stats} == {"library", "sklearn"}  # both heads were measured
    # churn is planted in the generator (lifetimes): recency and counts must find it
    assert values[1] > 0.6


def test_tafeng_users_protocol_splits_users_and_hides_a_fifth_of_their_items():
    users = _load("tafeng_users.py")
    rng = np.random.default_rng(0)
    history = pd.DataFrame({
        "user_id": np.repeat(np.arange(60), 3),
        "items": [list(rng.choice(40, size=rng.integers(1, 5), replace=False))
                  for _ in range(180)],
    })  # fmt: skip
    rows = users.user_item_sets(history)
    # a user's row is the distinct items of all their baskets; fewer than 5 items: left out
    for user, baskets in history.groupby("user_id")["items"]:
        distinct = sorted({int(i) for basket in baskets for i in basket})
        assert rows.get(int(user)) == (distinct if len(distinct) >= 5 else None)
    splits = users.split_users(list(rows))
    parts = [set(splits[p].tolist()) for p in ("train", "val", "test")]
    assert set().union(*parts) == set(rows) and sum(map(len, parts)) == len(rows)
    assert len(parts[0]) == int(0.7 * len(rows))
    held = users.hide_items(rows, splits)
    for part in ("val", "test"):
        for user, kept, hidden in zip(splits[part], *held[part]):
            assert sorted(kept + hidden) == rows[user]  # every item kept or hidden, once
            assert len(hidden) == int(0.2 * len(rows[user])) >= 1


def test_tafeng_users_run_reports_the_library_default_and_ease():
    users = _load("tafeng_users.py")
    rng = np.random.default_rng(1)
    # 8 disjoint groups of 20 items (every ranking needs 100 unseen items to rank)
    groups = [list(range(g * 20, (g + 1) * 20)) for g in range(8)]
    history = pd.DataFrame({
        "user_id": np.repeat(np.arange(300), 2),
        "items": [list(rng.choice(groups[(i // 2) % 8], size=4, replace=False))
                  for i in range(600)],
    })  # fmt: skip
    out = users.run(type("Data", (), {"history": history}), verbose=False, seeds=(0, 1))
    ours, ease = out["results"][users.best_library_model(out)], out["results"]["EASE"]
    assert set(out["info"]["learned_per_seed"]) == {0, 1}
    per_seed = [r["recall@20"] for r in out["info"]["learned_per_seed"].values()]
    assert ours["recall@20"] == pytest.approx(np.mean(per_seed))
    # both find the hidden items far above popularity
    assert min(ours["recall@20"], ease["recall@20"]) > 2 * out["results"]["popularity"]["recall@20"]
    assert "± " in users.format_table(out)
