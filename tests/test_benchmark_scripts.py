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
                 "--threads", "1").strip().splitlines()  # fmt: skip
    hr, mrr = (float(v) for v in re.fullmatch(
        r"yoochoose hr@20=([0-9.]+) mrr@20=([0-9.]+)", lines[-1]).groups())  # fmt: skip
    assert 0 < mrr <= hr <= 1
    report = out.read_text()
    assert "| SR | 1.0000 | 1.0000 |" in report  # a deterministic successor: SR is perfect
    assert f"| {hr:.4f} | {mrr:.4f} |" in report.splitlines()[-5]  # the boosted EMDE row
    tuned = _run("yoochoose.py", "--data", folder, "--epochs", "1", "--threads", "1", "--tune")
    assert "validation: fit on" in tuned and tuned.count("| True |") == tuned.count("| False |")
