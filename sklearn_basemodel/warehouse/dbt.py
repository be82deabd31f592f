"""Run dbt from Python: the ``basemodel`` dbt package, a project that installs it, its vars.

* :func:`run_dbt` runs a dbt command in-process (``dbtRunner``) and raises :class:`DbtRunError`
  naming the models and tests that failed.
* :func:`dbt_package_path` is where the dbt package shipped with this library lives, for
  ``packages.yml: - local: <path>`` (also ``basemodel dbt-path``).
* :func:`write_dbt_project` writes a minimal DuckDB project that installs the package with the
  given vars (:func:`dbt_vars`, :func:`split_times`); :func:`run_dbt_package` runs ``dbt deps``
  and ``dbt build`` in it and counts the nodes.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "DbtRunError",
    "dbt_package_path",
    "dbt_vars",
    "run_dbt",
    "run_dbt_package",
    "split_times",
    "write_dbt_project",
]

# Node statuses that mean "this model/test/seed did not do its job" (dbt's RunStatus and
# TestStatus values); "warn" and "skipped" are reported but are not failures themselves.
_FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})


class DbtRunError(RuntimeError):
    """A dbt command failed.

    The message names every failed node (models, seeds, data and unit tests) with dbt's own
    message, or repeats the error that stopped dbt before it ran any node (a parsing or
    compilation error, a profile that cannot connect).

    Attributes
    ----------
    command : list of str
        The dbt command line, as passed to ``dbtRunner.invoke``.
    failures : list of dict
        One dict per failed node: ``unique_id``, ``name``, ``resource_type``, ``status`` and
        ``message``. Empty when dbt stopped before running nodes.
    result : dbtRunnerResult
        What dbt returned, for further inspection.
    """

    def __init__(self, message, *, command, failures, result):
        super().__init__(message)
        self.command = list(command)
        self.failures = list(failures)
        self.result = result

    @property
    def failed_nodes(self):
        """Unique ids of the failed nodes (``model.basemodel.basemodel_stg_events``, ...)."""
        return [failure["unique_id"] for failure in self.failures]


@contextlib.contextmanager
def _environment(overrides):
    """Temporarily set environment variables (profiles read their settings from there)."""
    saved = {name: os.environ.get(name) for name in overrides}
    os.environ.update({name: str(value) for name, value in overrides.items()})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _describe_failures(result):
    """The failed nodes of a dbt run result, as dicts."""
    failures = []
    for node_result in getattr(result, "results", None) or []:
        status = str(getattr(node_result.status, "value", node_result.status)).lower()
        if status not in _FAILED_STATUSES:
            continue
        node = node_result.node
        failures.append(
            {
                "unique_id": node.unique_id,
                "name": node.name,
                "resource_type": str(getattr(node.resource_type, "value", node.resource_type)),
                "status": status,
                "message": (node_result.message or "").strip(),
            }
        )
    return failures


def run_dbt(
    args,
    project_dir,
    profiles_dir=None,
    *,
    target=None,
    vars=None,
    target_path=None,
    log_path=None,
    env=None,
    quiet=True,
):
    """Run a dbt command in this process and raise if anything failed.

    Parameters
    ----------
    args : str or sequence of str
        The dbt command and its options, e.g. ``["build", "--select", "basemodel"]`` or
        ``"seed"``.
    project_dir : path-like
        The dbt project (the folder with ``dbt_project.yml``).
    profiles_dir : path-like, default=None
        The folder with ``profiles.yml``; None uses dbt's default (the project folder, then
        ``~/.dbt``).
    target : str, default=None
        The profile target (``--target``); None uses the profile's default.
    vars : mapping, default=None
        Project variables (``--vars``), e.g. ``{"basemodel_split_times": ["2024-03-01"]}``.
    target_path, log_path : path-like, default=None
        Where dbt writes compiled SQL / artifacts and its log; None keeps dbt's defaults
        (``target/`` and ``logs/`` in the project folder). Point them at a temporary folder
        to leave the project untouched.
    env : mapping, default=None
        Environment variables set for the duration of the call (profiles usually read their
        settings from ``env_var()``), restored afterwards.
    quiet : bool, default=True
        Pass ``--quiet``: dbt prints only errors (and the output of ``show``/``ls``).

    Returns
    -------
    result : dbtRunnerResult
        ``result.result`` holds the command's result (per-node results for
        ``build``/``run``/``test``/``seed``).

    Raises
    ------
    DbtRunError
        When dbt reports failure: the message names every failed node and says why.

    Notes
    -----
    dbt cannot run two commands at once in one process; call this from one thread at a time.
    After the command, the DuckDB database dbt-duckdb keeps open in the process is closed, so
    the file can be read (:func:`read_relation`) or written right away.
    Anonymous usage statistics are turned off unless ``DBT_SEND_ANONYMOUS_USAGE_STATS`` is
    set.

    Examples
    --------
    >>> from sklearn_basemodel.warehouse import run_dbt  # doctest: +SKIP
    >>> run_dbt(["build"], "my_dbt_project", target_path="/tmp/dbt-target")  # doctest: +SKIP
    """
    from dbt.cli.main import dbtRunner

    command = [args] if isinstance(args, str) else list(args)
    if not command:
        raise ValueError("args is empty; pass a dbt command such as ['build'] or 'seed'.")
    command += ["--project-dir", os.fspath(project_dir)]
    if profiles_dir is not None:
        command += ["--profiles-dir", os.fspath(profiles_dir)]
    if target is not None:
        command += ["--target", target]
    if vars:
        if not isinstance(vars, Mapping):
            raise TypeError(f"vars must be a mapping of variable names to values, got {vars!r}")
        command += ["--vars", json.dumps(dict(vars))]
    if quiet:
        command.append("--quiet")

    environment = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    environment = {k: v for k, v in environment.items() if k not in os.environ}
    # As environment variables, not flags: every command reads them, while some (``deps``)
    # refuse ``--target-path``.
    if target_path is not None:
        environment["DBT_TARGET_PATH"] = os.fspath(target_path)
    if log_path is not None:
        environment["DBT_LOG_PATH"] = os.fspath(log_path)
    environment.update(env or {})
    with _environment(environment):
        try:
            result = dbtRunner().invoke(command)
        finally:
            from .._compat import (
                release_dbt_duckdb,  # imports scikit-learn: only when needed
            )

            release_dbt_duckdb()

    if result.success:
        return result
    failures = _describe_failures(result.result)
    message = _failure_message(f"dbt {command[0]}", failures, result.exception)
    raise DbtRunError(message, command=command, failures=failures, result=result)


def _failure_message(what, failures, exception):
    if failures:
        lines = [f"{what} failed: {len(failures)} node(s) failed:"]
        lines += [
            f"  {f['resource_type']} {f['unique_id']} ({f['status']}): {f['message']}"
            for f in failures
        ]
        return "\n".join(lines)
    if exception is not None:
        return f"{what} failed before running any node: {exception}"
    return f"{what} failed; see the dbt log for details."


def dbt_package_path():
    """Where the ``basemodel`` dbt package shipped with this library is.

    Add it to your own dbt project with ``packages.yml``::

        packages:
          - local: <this path>

    then ``dbt deps``. The command line prints the same path: ``basemodel dbt-path``.

    Returns
    -------
    path : pathlib.Path
        The folder holding the package's ``dbt_project.yml`` (inside the installed wheel, or
        ``dbt_package/`` of a source checkout or editable install).

    Raises
    ------
    FileNotFoundError
        When the package files are missing from the installation.

    Examples
    --------
    >>> from sklearn_basemodel.warehouse import dbt_package_path
    >>> (dbt_package_path() / "dbt_project.yml").is_file()
    True
    """
    here = Path(__file__).resolve().parents[1]  # the sklearn_basemodel folder
    candidates = [
        here / "dbt_package",  # an installed wheel: package data next to this module
        here.parent / "dbt_package",  # a source checkout or editable install: the repository
    ]
    for candidate in candidates:
        if (candidate / "dbt_project.yml").is_file():
            return candidate
    raise FileNotFoundError(
        "The basemodel dbt package is not installed with sklearn_basemodel (looked in "
        f"{[os.fspath(c) for c in candidates]}); reinstall the library."
    )


# --------------------------------------------------------------------------- a project
def split_times(end, n_splits, horizon_days=30):
    """Monthly split points whose target windows all end inside the data.

    The last (test) split lies ``horizon_days + 1`` days before ``end``; the ``n_splits``
    training splits are one month apart before it, so every split's window of
    ``horizon_days`` days ends at or before the next split.

    Parameters
    ----------
    end : datetime-like
        When the data end.
    n_splits : int
        Training splits before the test split.
    horizon_days : int, default=30

    Returns
    -------
    splits : list of str
        ``YYYY-MM-DD`` dates, oldest first; the last is the test split.

    Examples
    --------
    >>> split_times("2024-12-31", 2)
    ['2024-09-30', '2024-10-30', '2024-11-30']
    """
    import pandas as pd

    test = (pd.Timestamp(end) - pd.Timedelta(days=horizon_days + 1)).normalize()
    times = [test - pd.DateOffset(months=k) for k in range(n_splits, 0, -1)] + [test]
    return [t.strftime("%Y-%m-%d") for t in times]


def dbt_vars(events_identifier, split_times, *, item_columns, **settings):
    """The ``basemodel`` package's vars: where the events are and how to read them.

    Parameters
    ----------
    events_identifier : str
        The raw events table (var ``basemodel_events_identifier``).
    split_times : sequence of str
        The split points (``basemodel_split_times``), e.g. from :func:`split_times`.
    item_columns : mapping of str to str
        Item name -> column of the events table (``basemodel_item_columns``), e.g.
        ``{"product": "product_id"}``; the package names its list columns
        ``<name>_items``, ``<name>_weights``.
    **settings
        Any other var of the package without its ``basemodel_`` prefix, e.g.
        ``entity_column="customer_id"``, ``horizon_days=30``, ``decay_rate=0.02`` (per day;
        :func:`sklearn_basemodel.decay.rate_from_half_life` turns a half-life into one).

    Returns
    -------
    vars : dict

    Examples
    --------
    >>> dbt_vars("events", ["2024-06-01"], item_columns={"product": "sku"}, horizon_days=30)
    ... # doctest: +NORMALIZE_WHITESPACE
    {'basemodel_events_identifier': 'events',
     'basemodel_item_columns': [{'name': 'product', 'column': 'sku'}],
     'basemodel_split_times': ['2024-06-01'], 'basemodel_horizon_days': 30}
    """
    return {
        "basemodel_events_identifier": events_identifier,
        "basemodel_item_columns": [
            {"name": name, "column": column} for name, column in item_columns.items()
        ],
        "basemodel_split_times": list(split_times),
        **{f"basemodel_{name}": value for name, value in settings.items()},
    }


def write_dbt_project(project_dir, database, vars, *, name="basemodel_project", threads=2):
    """A minimal dbt project that installs the ``basemodel`` package and runs it on DuckDB.

    Writes ``dbt_project.yml`` (with the vars), ``packages.yml`` (``- local:`` the package
    shipped with this library) and ``profiles.yml`` (DuckDB at ``database``).

    Parameters
    ----------
    project_dir : path-like
        Created if absent.
    database : path-like
        The DuckDB file holding the raw events.
    vars : mapping
        The package's vars (:func:`dbt_vars`).
    name : str, default="basemodel_project"
        The project's and the profile's name.
    threads : int, default=2

    Returns
    -------
    project_dir : pathlib.Path
    """
    import yaml

    project_dir = Path(project_dir)
    project_dir.mkdir(parents=True, exist_ok=True)
    project = {
        "name": name,
        "version": "0.1.0",
        "config-version": 2,
        "profile": name,
        "clean-targets": ["target", "dbt_packages", "logs"],
        "vars": dict(vars),
    }
    duckdb = {"type": "duckdb", "path": os.fspath(Path(database).resolve()), "threads": threads}
    profiles = {name: {"target": "duckdb", "outputs": {"duckdb": duckdb}}}
    packages = {"packages": [{"local": os.fspath(dbt_package_path())}]}
    for file, content in (
        ("dbt_project.yml", project),
        ("profiles.yml", profiles),
        ("packages.yml", packages),
    ):
        (project_dir / file).write_text(yaml.safe_dump(content, sort_keys=False))
    return project_dir


def run_dbt_package(project_dir):
    """``dbt deps`` then ``dbt build`` in a project of :func:`write_dbt_project`.

    Returns
    -------
    nodes : dict
        ``"<resource type> <status>" -> count``, e.g. ``{"model success": 9, "test pass": 80}``.
    """
    project_dir = Path(project_dir)
    paths = {"target_path": project_dir / "target", "log_path": project_dir / "logs"}
    run_dbt(["deps"], project_dir, profiles_dir=project_dir, log_path=paths["log_path"])
    return node_counts(run_dbt(["build"], project_dir, profiles_dir=project_dir, **paths))


def node_counts(result):
    """``"<resource type> <status>" -> count`` of the nodes of a ``run_dbt`` result, e.g.
    ``{"model success": 9, "test pass": 80}``."""
    nodes = Counter()
    for node in result.result.results:
        kind = str(getattr(node.node.resource_type, "value", node.node.resource_type))
        status = str(getattr(node.status, "value", node.status))
        nodes[f"{kind} {status}"] += 1
    return dict(sorted(nodes.items()))
