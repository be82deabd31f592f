"""The main job, end to end: ``make demo`` / ``basemodel demo``.

The demo is the user workflow (:mod:`sklearn_basemodel.workflow`) on generated data, so it
proves the path a user takes on their own warehouse:

1. generate a raw events table (:func:`~sklearn_basemodel.datasets.make_events`, about 1% of
   the rows malformed, with a load row number ``source_row``) and write it to a DuckDB file;
2. ``basemodel init`` on that table (:func:`~sklearn_basemodel.workflow.init_project`), then
   the few edits a user makes to the written ``basemodel.yml`` (printed);
3. ``basemodel evaluate``: the temporal backtest of every task against the shipped baselines;
4. count the rows (raw, staged, rejected by reason) and reconcile them, row by row through
   ``source_row``, with the generator's record of which rows it broke;
5. ``basemodel fit``: the model directory;
6. ``basemodel predict --as-of now``: scores written back to the DuckDB file;
7. ``basemodel explain churn``: which tables, columns and values drive churn;
8. plots and the report (:mod:`sklearn_basemodel.report`).

:func:`run_demo` strings the stages together and returns the measured numbers as a dict.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from . import report

__all__ = ["run_demo"]

_RAW_TABLE = "raw_events"
_ROW_COLUMN = "source_row"  # a load-time row number, carried into the staged / rejected tables
_EXPLAINED_TASK = "churn"
_TOP_ATTRIBUTIONS = 10

# How the generator's kinds of malformed rows show up as the dbt package's rejection reasons.
_EXPECTED_REASONS = {
    "null_customer_id": ("null_entity",),
    "null_event_time": ("null_timestamp",),
    "time_out_of_range": ("timestamp_before_valid_range", "timestamp_after_valid_range"),
    "duplicate": ("duplicate",),
    "negative_amount": (),  # the package has no rule for negative amounts: staged, flagged here
}

# Model sizes (the ``model:`` section): small enough that the default demo runs in a few
# minutes on 2 CPU cores, where the recipe's defaults would take far longer.
_SETTINGS = {
    "n_components": 32,
    "n_sketches": 16,
    "sketch_dim": 32,
    "half_life_days": 35.0,
    "hidden_units": 256,
    "max_epochs": 8,
}
_HORIZON_DAYS = 30
_ACTIVE_DAYS = 90
_PROPENSITY_RANK = 3  # the propensity task's category: the 3rd most purchased one


# --------------------------------------------------------------------------- data
def generate_events(n_events, random_state=0):
    """The raw events table with a load-time row number, and the generator's ground truth.

    Returns
    -------
    events : DataFrame
        :func:`~sklearn_basemodel.datasets.make_events` output plus ``source_row`` (0, 1, ...).
    truth : Bunch
        The generator's truth (``malformed_reason`` per row, ``products`` with categories, the
        period ``start``/``end``).
    """
    from .datasets import make_events

    events, truth = make_events(n_events, return_truth=True, random_state=random_state)
    events.insert(0, _ROW_COLUMN, np.arange(len(events), dtype=np.int64))
    return events, truth


def propensity_category(events, truth):
    """The category of the propensity task: the ``_PROPENSITY_RANK``-th most frequent among the
    generated purchases (of the rows the generator left valid), ties by smaller id.

    Common enough for a label in most backtest windows, rare enough not to be everyone's."""
    valid = ~np.asarray(truth.malformed) & (events["event_type"] == "purchase").to_numpy()
    counts = events.loc[valid, "category_id"].value_counts()
    counts = counts.rename_axis("category").reset_index(name="n")
    ranked = counts.sort_values(["n", "category"], ascending=[False, True], kind="stable")
    return str(ranked["category"].iloc[min(_PROPENSITY_RANK, len(ranked)) - 1])


def project_edits(events, truth, model, n_splits):
    """The edits a user makes to the file ``basemodel init`` wrote: ``(key, value, why)``."""
    category = propensity_category(events, truth)
    tasks = {
        "next_items": {"column": "product_id", "k": 10},
        "churn": {"horizon_days": _HORIZON_DAYS, "active_days": _ACTIVE_DAYS},
        "propensity": [{"column": "category_id", "value": category,
                        "horizon_days": _HORIZON_DAYS}],
        "spend": {"horizon_days": _HORIZON_DAYS},
    }  # fmt: skip
    return [
        ("columns.row_id", _ROW_COLUMN, "the load row number: each raw row traceable"),
        ("columns.event_id", "event_id", "one id per event: a repeated id is a duplicate row"),
        ("time.valid_from", str(truth.start.date()), "the generator's period starts here"),
        ("time.valid_to", str(truth.end.date()), "...and ends here (exclusive)"),
        ("tasks", tasks, f"propensity to category {category}, #{_PROPENSITY_RANK} most purchased"),
        ("backtest", {"splits": n_splits, "every_days": 30}, "monthly cut-offs"),
        ("model", model, "small enough for a few minutes on 2 cores"),
    ]  # fmt: skip


def apply_edits(path, edits):
    """Set each dotted key of the YAML project file to its value and write it back."""
    import yaml  # installed with dbt-core

    data = yaml.safe_load(Path(path).read_text())
    for key, value, _ in edits:
        *parents, leaf = key.split(".")
        section = data
        for parent in parents:
            section = section.setdefault(parent, {})
        section[leaf] = value
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False))


# --------------------------------------------------------------------------- rows
def _read_row_outcomes(database):
    """Raw and staged counts, the rejected rows with their reasons, staged negative amounts."""
    from .warehouse import read_relation

    raw = len(read_relation(database, _RAW_TABLE, columns=[_ROW_COLUMN]))
    staged = read_relation(database, "basemodel_stg_events", columns=[_ROW_COLUMN, "amount"])
    rejected = read_relation(
        database, "basemodel_rejected_events", columns=[_ROW_COLUMN, "rejection_reason"]
    )
    negative = staged.loc[staged["amount"] < 0, _ROW_COLUMN].to_numpy()
    return raw, staged[_ROW_COLUMN].to_numpy(), rejected, negative


def count_rows(database, truth):
    """Raw, staged and rejected rows; rejections by reason, reconciled with the generator.

    Returns
    -------
    dict with ``raw``, ``staged``, ``rejected``, ``rejected_by_reason`` (dbt reason -> rows),
    ``generated_malformed`` (generator reason -> rows), ``crosstab`` (dbt reason -> generator
    reason -> rows, matched row by row through ``source_row``), ``negative_amount_generated``,
    ``negative_amount_staged`` (staged events with an amount below zero),
    ``negative_amount_matched`` (of those, generated as negative amounts), ``each_row_once``
    (every raw row number is in exactly one of the two tables) and ``reconciled``: each row
    once, every rejected row was generated malformed with a matching kind, and every generated
    row of a kind the package checks for was rejected.
    """
    raw, staged, rejected, negative = _read_row_outcomes(database)
    generated = truth.malformed_reason.astype(object)
    rejected["generated_as"] = (
        generated.iloc[rejected[_ROW_COLUMN].to_numpy()].fillna("valid").to_numpy()
    )
    crosstab = {
        reason: group["generated_as"].value_counts().to_dict()
        for reason, group in rejected.groupby("rejection_reason")
    }
    ended = np.concatenate([staged, rejected[_ROW_COLUMN].to_numpy()])
    each_row_once = len(ended) == raw and np.array_equal(np.sort(ended), np.arange(raw))
    by_reason = rejected["rejection_reason"].value_counts().to_dict()
    return {
        "raw": raw,
        "staged": len(staged),
        "rejected": len(rejected),
        "rejected_by_reason": {k: int(v) for k, v in sorted(by_reason.items())},
        "generated_malformed": {
            k: int(v) for k, v in generated.value_counts().sort_index().items()
        },
        "crosstab": {r: {s: int(n) for s, n in c.items()} for r, c in sorted(crosstab.items())},
        "negative_amount_generated": int((generated == "negative_amount").sum()),
        "negative_amount_staged": len(negative),
        "negative_amount_matched": int((generated.iloc[negative] == "negative_amount").sum()),
        "each_row_once": bool(each_row_once),
        "reconciled": bool(each_row_once) and _reconciled(crosstab, generated),
    }


def _reconciled(crosstab, generated):
    """Every rejected row was generated malformed with the matching kind, and every malformed
    row of a kind the package checks was rejected."""
    matches = all(
        set(sources) <= {s for s, rs in _EXPECTED_REASONS.items() if reason in rs}
        for reason, sources in crosstab.items()
    )
    per_kind = {
        source: sum(crosstab.get(r, {}).get(source, 0) for r in reasons)
        for source, reasons in _EXPECTED_REASONS.items()
        if reasons
    }
    return bool(matches and all(per_kind[s] == int((generated == s).sum()) for s in per_kind))


# --------------------------------------------------------------------------- embeddings
def neighbour_agreement(embedder, category_of, n_neighbours=10):
    """Share of each product's nearest products (cosine) in its own category, and by chance."""
    keys = np.asarray(embedder.vocabulary_, dtype=object)
    vectors = np.asarray(embedder.embeddings_, dtype=np.float32)
    labels = np.array([category_of.get(k) for k in keys], dtype=object)
    keep = np.not_equal(labels, None)  # elementwise on an object array
    vectors, labels = vectors[keep], labels[keep]
    k = min(n_neighbours, len(vectors) - 1)
    if k < 1:
        return float("nan"), float("nan")
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    same = float((labels[nearest] == labels[:, None]).mean())
    shares = pd.Series(labels).value_counts(normalize=True).to_numpy()
    return same, float((shares**2).sum())


def _category_of(embedder, truth):
    """Product key (as the embedder spells it) -> category, from the generator's catalogue."""
    products = truth.products
    kind = type(embedder.vocabulary_[0]) if len(embedder.vocabulary_) else str
    return dict(zip(products["product_id"].map(kind), products["category_id"].astype(str)))


# --------------------------------------------------------------------------- stages
def _stage_generate(log, results, run):
    """Generate the events and write them to DuckDB."""
    from .datasets import write_events

    database = run["database"]
    with log.stage("Generate events and write them to DuckDB") as notes:
        events, truth = generate_events(run["n_events"], run["random_state"])
        for stale in (database, database.with_name(database.name + ".wal")):
            stale.unlink(missing_ok=True)
        write_events(events, database, table=_RAW_TABLE)
        notes.append(
            f"{len(events):,} rows, {events['customer_id'].nunique():,} customers, "
            f"{events['product_id'].nunique():,} products, "
            f"{int(truth.malformed.sum()):,} malformed; {database.name} table {_RAW_TABLE}"
        )
    run.update(events=events, truth=truth)
    run["files"].append(database.name)


def _stage_init(log, results, run):
    """``basemodel init`` on the table, then the user's edits to the project file."""
    from .workflow import init_project, load_project

    project_dir = run["output_dir"] / "project"
    with log.stage("basemodel init, then edit basemodel.yml") as notes:
        if project_dir.is_dir():
            shutil.rmtree(project_dir)  # the model directory and dbt state of an earlier run
        path = init_project(project_dir, duckdb=run["database"], table=_RAW_TABLE)
        edits = project_edits(run["events"], run["truth"], run["model"], run["n_splits"])
        apply_edits(path, edits)
        run["project"] = load_project(path)
        guessed = run["project"].columns  # the edits leave init's column guesses as they were
        results["init_guess"] = {"customer": guessed.customer, "time": guessed.time,
                                 "items": list(guessed.items), "group": guessed.group}  # fmt: skip
        results["edits"] = [{"key": k, "value": v, "why": why} for k, v, why in edits]
        log.print(f"      guessed: customer {guessed.customer}, time {guessed.time}, items "
                  f"{list(guessed.items)}, group {guessed.group}; the edits:")  # fmt: skip
        for key, value, why in edits:
            log.print(f"        {key}: {json.dumps(value)}  # {why}")
        notes.append(f"{path.relative_to(run['output_dir'])}: {len(edits)} edits")
    run["files"].append("project/")


def _stage_evaluate(log, results, run):
    from .workflow import evaluate

    with log.stage("basemodel evaluate (backtest against the baselines)") as notes:
        backtest = evaluate(run["project"], run["output_dir"] / "evaluation",
                            progress=run["progress"], verbose=run["verbose"])  # fmt: skip
        results["backtest"] = _plain(backtest)
        notes.append(f"tested on {', '.join(backtest['test_cut_offs'])}")
    run["files"].append("evaluation/")


def _stage_rows(log, results, run):
    with log.stage("Count and reconcile rows (source_row against the generator)") as notes:
        rows = results["rows"] = count_rows(run["database"], run["truth"])
        notes.append(
            f"raw {rows['raw']:,} = staged {rows['staged']:,} + rejected {rows['rejected']:,}; "
            f"reconciled with the generator: {rows['reconciled']}"
        )


def _stage_fit(log, results, run):
    from .workflow import fit

    with log.stage("basemodel fit (every cut-off; the model directory)") as notes:
        fitted = fit(run["project"], run["model_dir"], progress=run["progress"],
                     verbose=run["verbose"])  # fmt: skip
        results["fit"] = _plain(fitted)
        notes.append(f"model version {fitted['model_version']}")
    run["files"].append("project/model/")


def _stage_predict(log, results, run):
    from .workflow import predict

    with log.stage("basemodel predict --as-of now (scores written back)") as notes:
        scored = predict(run["model_dir"], "now", verbose=run["verbose"])
        results["predict"] = {key: scored[key] for key in
                              ("as_of", "model_version", "written", "population")}  # fmt: skip
        results["predict"]["active_days"] = run["project"].tasks.churn.active_days
        notes.append(", ".join(f"{t}: {n:,} rows" for t, n in scored["written"].items()))


def _stage_explain(log, results, run):
    from .workflow import explain

    with log.stage(f"basemodel explain {_EXPLAINED_TASK}") as notes:
        frame = explain(run["model_dir"], _EXPLAINED_TASK, random_state=run["random_state"],
                        verbose=False)  # fmt: skip
        top = frame.head(_TOP_ATTRIBUTIONS)
        results["explanation"] = {"task": _EXPLAINED_TASK, "n_rows": int(frame["n_rows"].max()),
                                  "explained": frame.attrs.get("explained", "network"),
                                  "top": _plain(top.drop(columns="n_rows").to_dict("records"))}  # fmt: skip
        first = top.iloc[0]
        notes.append(f"{len(frame):,} sources; first {first['column']}={first['value']}")


def _stage_plots(log, results, run):
    from .workflow import load_model

    output_dir = run["output_dir"]
    with log.stage("Plot training curves and the product map") as notes:
        if report.pyplot() is None:
            message = "matplotlib is not installed: plots skipped (pip install matplotlib)"
            notes.append(message)
            results["notes"].append(message)
            return
        models = load_model(run["model_dir"]).models
        histories = {"SketchRecommender (pretraining)": models.recommender["model"].history_}
        histories |= {f"{name} (fine-tuned network)": network["model"].history_
                      for name, network in models.networks.items()}  # fmt: skip
        products = models.embedders["product_id"]
        category_of = _category_of(products, run["truth"])
        same, chance = neighbour_agreement(products, category_of)
        results["embeddings"] = {"same_category_share": same, "chance_share": chance}
        paths = [
            report.plot_training_curves(histories, output_dir / "training_curves.png"),
            report.plot_product_map(products, category_of, output_dir / "product_map.png",
                                    run["random_state"]),
        ]  # fmt: skip
        run["files"] += [Path(p).name for p in paths]
        notes.append(f"{', '.join(run['files'][-2:])}; nearest products in the same category: "
                     f"{same:.0%} (chance {chance:.0%})")  # fmt: skip


def _plain(value):
    """Results as JSON-ready data: no NumPy scalars, timestamps or paths."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (pd.Timestamp, Path)):
        return str(value)
    return value


# --------------------------------------------------------------------------- the demo
def _check_arguments(n_events, n_train_splits, settings, random_state):
    if int(n_events) < 1000:
        raise ValueError(f"n_events={n_events} is too small for the demo; use at least 1000.")
    if int(n_train_splits) < 1:
        raise ValueError(f"n_train_splits must be at least 1, got {n_train_splits}.")
    unknown = set(settings or {}) - set(_SETTINGS)
    if unknown:
        raise ValueError(f"Unknown settings {sorted(unknown)}; known: {sorted(_SETTINGS)}.")
    return {**_SETTINGS, **(settings or {}), "random_state": int(random_state)}


def run_demo(
    n_events=200_000,
    output_dir="demo_output",
    random_state=0,
    *,
    n_train_splits=4,
    grid_search=None,
    plots=True,
    progress=None,
    verbose=True,
    settings=None,
):
    """Run the user workflow on generated data and report what it measured.

    Parameters
    ----------
    n_events : int, default=200_000
        Rows of the generated raw events table (about 1% malformed).
    output_dir : path-like, default="demo_output"
        Where everything goes: ``warehouse.duckdb`` (the raw table, the package's tables and
        the scores), ``project/`` (``basemodel.yml``, ``dbt/``, ``model/``), ``evaluation/``,
        the plots, ``report.md`` and ``results.json``. Created if absent; files of an earlier
        run are replaced.
    random_state : int, default=0
        Seeds the data and every model.
    n_train_splits : int, default=4
        Monthly training cut-offs before the test cut-off of the backtest.
    grid_search : None
        Deprecated, no effect: the workflow chooses each task's model on held-out customers.
    plots : bool, default=True
        Save the plots (skipped with a note when matplotlib is not installed).
    progress : bool, default=None
        Show progress bars of the network fits; None shows them when stderr is a terminal.
    verbose : bool, default=True
        Print the stages, their timings and the report.
    settings : dict, default=None
        Overrides of the model sizes (keys of ``sklearn_basemodel.demo._SETTINGS``, the
        project's ``model:`` section), e.g. ``{"max_epochs": 3}`` for a quick run.

    Returns
    -------
    results : dict
        ``rows`` (raw / staged / rejected counts, by reason, reconciliation), ``edits`` (made
        to the file ``init`` wrote), ``backtest`` (what ``evaluate`` returned), ``fit``,
        ``predict`` (tables written and rows), ``explanation`` (top attributions),
        ``embeddings``, ``timings`` (seconds per stage), ``total_seconds``, ``files``
        (written, relative to ``output_dir``) and ``output_dir``.
    """
    if grid_search is not None:
        warnings.warn("run_demo(grid_search=...) has no effect and will be removed: the "
                      "workflow chooses each task's model itself.", FutureWarning, stacklevel=2)  # fmt: skip
    model = _check_arguments(n_events, n_train_splits, settings, random_state)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    run = {
        "n_events": int(n_events), "n_splits": int(n_train_splits) + 1, "model": model,
        "random_state": int(random_state), "output_dir": output_dir, "files": [],
        "database": output_dir / "warehouse.duckdb", "verbose": verbose,
        "model_dir": output_dir / "project" / "model",
        "progress": bool(verbose) and sys.stderr.isatty() if progress is None else progress,
    }  # fmt: skip
    results = {"n_events": int(n_events), "random_state": int(random_state),
               "output_dir": os.fspath(output_dir), "database": run["database"].name,
               "notes": []}  # fmt: skip
    stages = [_stage_generate, _stage_init, _stage_evaluate, _stage_rows, _stage_fit,
              _stage_predict, _stage_explain] + ([_stage_plots] if plots else [])  # fmt: skip
    log = report.Progress(len(stages), verbose)
    started = time.perf_counter()
    for stage in stages:
        stage(log, results, run)
    results["timings"] = dict(log.timings)
    results["cpu_timings"] = dict(log.cpu_timings)
    results["total_seconds"] = time.perf_counter() - started
    results["files"] = run["files"] + ["report.md", "results.json"]
    text = report.write_results(results, output_dir)
    log.print()
    log.print(text)
    log.print(f"Report and plots written to {output_dir.resolve()}")
    return results
