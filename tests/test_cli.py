import subprocess
import sys
from pathlib import Path

import pytest

from sklearn_basemodel.cli import main
from sklearn_basemodel.warehouse import dbt_package_path


def test_dbt_path_prints_the_package_folder(capsys):
    assert main(["dbt-path"]) == 0
    printed = Path(capsys.readouterr().out.strip())
    assert printed == dbt_package_path()
    assert "name: basemodel" in (printed / "dbt_project.yml").read_text()


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "dbt-path" in capsys.readouterr().err


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_installed_console_script_prints_the_same_path():
    script = Path(sys.executable).with_name("basemodel")
    if not script.exists():
        pytest.skip(f"the console script is not installed next to {sys.executable}")
    output = subprocess.run(
        [str(script), "dbt-path"], check=True, capture_output=True, text=True, timeout=120
    ).stdout
    assert Path(output.strip()) == dbt_package_path()


def test_dbt_path_needs_neither_duckdb_nor_arrow():
    # `basemodel dbt-path` is what a dbt user runs: it must work with the core install
    code = (
        "import sys; from sklearn_basemodel.warehouse import dbt_package_path; "
        "dbt_package_path(); print(sorted(m for m in ('pyarrow', 'duckdb', 'torch', 'dbt') "
        "if m in sys.modules))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120
    ).stdout
    assert output.strip() == "[]"
