"""The dbt side of a project: run the ``basemodel`` package on the user's warehouse.

A project's dbt folder (``dbt_project``, written by ``basemodel init``) installs the package; its
vars come from the project file at every run (``--vars``), so ``basemodel.yml`` stays the one
place the user edits. With a DuckDB connection the folder's ``profiles.yml`` is written from
the project file too; with a dbt profile the user's ``profiles.yml`` is used as it is.

:func:`build_tables` runs ``dbt deps`` and ``dbt build`` for a set of cut-offs;
:func:`data_end` finds when the data end (the ``as_of: now`` cut-off of the package);
:func:`backtest_cut_offs` places the training cut-offs before it; :func:`open_warehouse` opens
the connection the tables are read from and the scores written to.
"""

from __future__ import annotations

import os

import pandas as pd

from .config import ProjectError

__all__ = ["backtest_cut_offs", "build_tables", "data_end", "open_warehouse"]

# The package's models the stages need (with everything upstream: the user's staging model).
_STAGING = ["+basemodel_stg_events", "basemodel_rejected_events"]


def _dbt_profile_name(project):
    """The ``profile:`` of the user's dbt project (what dbt connects with)."""
    import yaml

    path = project.dbt_dir / "dbt_project.yml"
    if not path.is_file():
        raise ProjectError(
            f"dbt_project: no dbt project at {project.dbt_dir} (no dbt_project.yml). "
            "Create one with `basemodel init`, or point `dbt_project:` at yours."
        )
    profile = (yaml.safe_load(path.read_text()) or {}).get("profile")
    if not profile:
        raise ProjectError(f"dbt_project: {path} has no `profile:`. Add `profile: basemodel`.")
    return profile


def _profile_options(project):
    """``run_dbt`` keyword arguments selecting the connection of the project file."""
    connection = project.connection
    if connection.duckdb is not None:
        import yaml

        profile = _dbt_profile_name(project)
        duckdb = {"type": "duckdb", "path": os.fspath(project.path(connection.duckdb).resolve()),
                  "threads": 2}  # fmt: skip
        content = {profile: {"target": "basemodel", "outputs": {"basemodel": duckdb}}}
        (project.dbt_dir / "profiles.yml").write_text(yaml.safe_dump(content, sort_keys=False))
        return {"profiles_dir": project.dbt_dir, "profile": None, "target": None}
    profiles_dir = connection.profiles_dir
    return {
        "profiles_dir": None if profiles_dir is None else project.path(profiles_dir),
        "profile": connection.profile,
        "target": connection.target,
    }


def build_tables(project, *, split_times=(), as_of=None, select=None):
    """``dbt deps`` and ``dbt build`` of the package for the project's events.

    Parameters
    ----------
    project : Project
    split_times : sequence of str, default=()
        Cut-offs with histories and targets (``basemodel_split_times``).
    as_of : str, default=None
        One more cut-off for scoring (``basemodel_as_of``): a time or ``"now"``.
    select : sequence of str, default=None
        dbt node selection; None builds everything.

    Returns
    -------
    nodes : dict
        ``"<resource type> <status>" -> count`` of the build.
    """
    from ..warehouse import node_counts, run_dbt

    options = _profile_options(project)
    vars = project.dbt_vars()
    vars["basemodel_split_times"] = list(split_times)
    if as_of is not None:
        vars["basemodel_as_of"] = as_of
    dbt_dir = project.dbt_dir
    paths = {"target_path": dbt_dir / "target", "log_path": dbt_dir / "logs"}
    common = {"profiles_dir": options["profiles_dir"], "target": options["target"]}
    profile = ["--profile", options["profile"]] if options["profile"] else []
    run_dbt(["deps", *profile], dbt_dir, log_path=paths["log_path"], **common)
    # A partial build runs only the tests whose models are all built.
    partial = ["--select", *select, "--indirect-selection", "cautious"] if select else []
    command = ["build", *profile, *partial]
    return node_counts(run_dbt(command, dbt_dir, vars=vars, **paths, **common))


def open_warehouse(project):
    """The project's connection as a :class:`~sklearn_basemodel.warehouse.Warehouse`."""
    from ..warehouse import Warehouse

    connection = project.connection
    if connection.duckdb is not None:
        return Warehouse.duckdb(project.path(connection.duckdb))
    profiles_dir = connection.profiles_dir
    return Warehouse.from_dbt_profile(
        connection.profile,
        target=connection.target,
        profiles_dir=None if profiles_dir is None else project.path(profiles_dir),
    )


def data_end(project):
    """When the staged events end: the package's ``as_of: now`` cut-off.

    Builds the staging models and the split table for that cut-off only (cheap) and reads it.
    """
    build_tables(project, as_of="now", select=[*_STAGING, "basemodel_splits"])
    with open_warehouse(project) as warehouse:
        splits = warehouse.read("basemodel_splits", ["split_at", "is_as_of"])
    ends = splits.loc[splits["is_as_of"].astype(bool), "split_at"]
    if ends.empty or pd.isna(ends.iloc[0]):
        raise ProjectError(
            "events: no staged events (every row was rejected, or the relation is empty); "
            "see the table basemodel_rejected_events for the reasons."
        )
    return pd.Timestamp(ends.iloc[0])


def backtest_cut_offs(end, project):
    """The cut-offs of the backtest: ``backtest.splits`` of them ``every_days`` apart, the
    last one a whole horizon before ``end`` (so every label is complete).

    Returns
    -------
    list of str
        ``YYYY-MM-DD HH:MM:SS`` cut-offs, oldest first.

    Examples
    --------
    >>> from sklearn_basemodel.workflow import Project
    >>> project = Project.from_dict({"events": {"table": "t"}, "tasks": {"churn": {}},
    ...     "columns": {"customer": "c", "time": "t", "items": ["i"]},
    ...     "backtest": {"splits": 2, "every_days": 7}})
    >>> backtest_cut_offs(pd.Timestamp("2024-03-31 17:00"), project)
    ['2024-02-23 00:00:00', '2024-03-01 00:00:00']
    """
    horizon = project.horizon_days
    every = pd.Timedelta(days=project.backtest.every_days)
    # Whole days between cut-offs: cut at midnight; fractions: on the minute.
    last = (pd.Timestamp(end) - pd.Timedelta(days=horizon)).floor("D" if every.days and
                                                                    every.seconds == 0 else "min")
    n = project.backtest.splits
    return [(last - every * i).strftime("%Y-%m-%d %H:%M:%S") for i in range(n - 1, -1, -1)]

