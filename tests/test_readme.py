"""The README's Python examples run as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, capsys):
    namespace = {}
    exec(compile(BLOCKS[index], f"README.md block {index}", "exec"), namespace)
    if "recall_at_k" in BLOCKS[index]:
        out = capsys.readouterr().out
        recall = float(re.search(r"Recall@5 = ([0-9.]+)", out).group(1))
        # 2 target products among 10 of the customer's group: chance is about 0.25
        assert recall > 0.35
        assert out.strip().splitlines()[-3].startswith("recency")
