"""Light checks of benchmarks/yoochoose.py on tiny synthetic sessions (no real data needed)."""

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)

_SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "yoochoose.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("yoochoose_benchmark", _SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def _chain_sessions(n_sessions=300, n_items=24, seed=0):
    """Sessions that walk a fixed successor chain: item i is always followed by item i + 1."""
    rng = np.random.default_rng(seed)
    sessions = []
    for _ in range(n_sessions):
        start, length = int(rng.integers(n_items)), int(rng.integers(2, 7))
        sessions.append([f"i{(start + j) % n_items}" for j in range(length)])
    return sessions


def test_next_item_cases_and_evaluate(bench):
    prefixes, targets = bench.next_item_cases([["a", "b", "c"], ["d"], ["e", "f"]])
    assert prefixes == [["a"], ["a", "b"], ["e"]]
    assert targets == ["b", "c", "f"]
    hr, mrr = bench.evaluate(["b", "c", "f"], [["b", "x"], ["x", "c"], ["x", "y"]], k=2)
    assert hr == pytest.approx(2 / 3)
    assert mrr == pytest.approx((1 + 0.5) / 3)


def test_rule_weights(bench):
    sessions = [["a", "b", "c"], ["b", "a"]]
    ar = bench.fit_rules(sessions, "ar")
    sr = bench.fit_rules(sessions, "sr")
    i = ar.index
    assert ar.matrix[i["a"], i["b"]] == 2 and ar.matrix[i["b"], i["a"]] == 2  # both sessions
    assert ar.matrix[i["c"], i["a"]] == 1
    assert sr.matrix[i["a"], i["c"]] == pytest.approx(0.5)  # distance 2
    assert sr.matrix[i["c"], i["a"]] == 0  # sequential: only forward
    assert sr.matrix[i["b"], i["a"]] == 1
    with pytest.raises(ValueError, match="kind"):
        bench.fit_rules(sessions, "xx")


def test_rules_rank_the_planted_follower_first(bench):
    # "b" follows "a" in every session; "z" is by far the most popular item
    sessions = [["x", "a", "b"]] * 5 + [["z", "z", "q"]] * 30 + [["a", "z"]]
    for kind in ("ar", "sr"):
        rules = bench.fit_rules(sessions, kind)
        top = rules.recommend([["q", "a"], ["unseen"]], k=3)
        assert top[0, 0] == "b", kind
        assert top[1, 0] == "z", kind  # unknown last click: popular items
        assert len(set(top[0])) == 3  # topped up without duplicates


def test_emde_model_learns_the_successor(bench):
    sessions = _chain_sessions()
    config = bench.EMDEConfig(
        cleora_dim=32, n_sketches=8, sketch_dim=16, random_dim=16, hidden_units=64,
        n_blocks=1, dropout=0.0, lr=5e-3, epochs=3, batch_size=64, seed=0,
    )  # fmt: skip
    model = bench.EMDESessionModel(config).fit(sessions)
    prefixes, targets = bench.next_item_cases(_chain_sessions(60, seed=1))
    # top 1: the successor of the last click (an off-by-one target would rank the click itself)
    hr, _ = bench.evaluate(targets, model.recommend(prefixes, history=False, k=1), k=1)
    assert hr > 0.9
    pop = bench.recommend_popular(sessions, len(prefixes), k=1)
    assert bench.evaluate(targets, pop, k=1)[0] < 0.2
    # the history boost lifts the session's own clicks: with full weight the last click leads
    model.recommender_.set_params(history_weight=1.0)
    boosted = model.recommend([["i3", "i7"]], k=1)
    assert boosted[0, 0] == "i7"


def test_main_skips_without_data(bench, tmp_path, capsys):
    assert bench.main(["--data", str(tmp_path), "--out", str(tmp_path / "r.md")]) == 0
    assert capsys.readouterr().out.startswith("skipped:")
    assert not (tmp_path / "r.md").exists()


def _write_clicks(path, sessions, day0):
    lines = ["SessionId\tItemId\tTime"]
    for sid, items in enumerate(sessions):
        start = day0 + sid * 600.0
        lines += [f"{sid}\t{item}\t{start + 30.0 * j}" for j, item in enumerate(items)]
    path.write_text("\n".join(lines) + "\n")


def test_main_end_to_end_on_synthetic_files(bench, tmp_path, capsys):
    folder = tmp_path / "yoochoose100k"
    folder.mkdir()
    as_ints = [[int(i[1:]) + 1000 for i in s] for s in _chain_sessions(400)]
    _write_clicks(folder / "train.tsv", as_ints[:300], 1396310400.0)  # 2014-04-01, 2+ days
    _write_clicks(folder / "test.tsv", as_ints[300:], 1396310400.0 + 7 * 86400)
    out = tmp_path / "results.md"
    assert bench.main(["--data", str(tmp_path), "--out", str(out), "--epochs", "1",
                       "--threads", "1"]) == 0  # fmt: skip
    lines = capsys.readouterr().out.strip().splitlines()
    hr, mrr = (float(v) for v in re.fullmatch(
        r"yoochoose hr@20=([0-9.]+) mrr@20=([0-9.]+)", lines[-1]).groups())  # fmt: skip
    assert 0 < mrr <= hr <= 1
    report = out.read_text()
    assert "| SR | 1.0000 | 1.0000 |" in report  # a deterministic successor: SR is perfect
    assert f"| {hr:.4f} | {mrr:.4f} |" in report.splitlines()[-5]  # the boosted EMDE row
    assert bench.main(["--data", str(folder), "--epochs", "1", "--threads", "1", "--tune"]) == 0
    tuned = capsys.readouterr().out
    assert "validation: fit on" in tuned and tuned.count("| True |") == tuned.count("| False |")
