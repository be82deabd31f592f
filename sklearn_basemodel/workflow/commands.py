"""The workflow's commands, as Python functions (the ``basemodel`` CLI calls these).

* :func:`fit`: run the dbt package for the backtest cut-offs, fit the profile, pretrain, fine-tune
  every task, save a model directory.
* :func:`evaluate`: the temporal backtest — train on all but the last cut-off, test on the last —
  of every task against the shipped baselines; a report (markdown, JSON, plot).
* :func:`predict`: profiles as of any cut-off (``"now"``: the last event), scores of the
  configured population written back to the warehouse, idempotent per as-of.
* :func:`update`: new events folded into the stored profiles (equal to recomputing them), the
  scores refreshed without refitting.
* :func:`explain`: a task's attributions aggregated to source table, column and value.

Every command prints its stages with row counts and times (``verbose``) and returns a dict of
what it did.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ..report import Progress
from .build import _STAGING, backtest_cut_offs, build_tables, data_end, open_warehouse
from .config import Project, load_project
from .data import as_of_time, fill_amounts, read_baskets, read_descriptions, read_rows
from .fold import profile_columns
from .model_dir import load_model, save_model, save_profiles
from .threads import one_openmp_thread
from .training import explained_candidate, fit_models, item_names, task_targets

__all__ = ["evaluate", "explain", "fit", "predict", "update"]


def _project(project):
    return project if isinstance(project, Project) else load_project(project)


def _progress_bar(verbose, progress):
    return bool(verbose) and sys.stderr.isatty() if progress is None else progress


def _prepare(project, log, *, test=False):
    """Build the backtest cut-offs' tables; return the training rows, baskets and test rows."""
    with log.stage("Find the end of the data (dbt: staging)") as notes:
        end = data_end(project)
        cut_offs = backtest_cut_offs(end, project)
        if len(cut_offs) < (2 if test else 1):
            raise ValueError("backtest.splits must be at least 2 to evaluate (train and test).")
        notes.append(f"data end {end}; cut-offs {', '.join(cut_offs)}")
    with log.stage("Build the package's tables (dbt build)") as notes:
        nodes = build_tables(project, split_times=cut_offs)
        notes.append(", ".join(f"{n} {k}" for k, n in nodes.items()))
    with log.stage("Read baskets and history rows") as notes, open_warehouse(project) as warehouse:
        rows = read_rows(warehouse, project)
        rows = rows[rows["is_horizon_complete"].astype(bool)]
        n_test = project.backtest.test_splits if test else 0
        first_test = pd.Timestamp(cut_offs[-n_test]) if test else None
        baskets = read_baskets(warehouse, project, before=pd.Timestamp(cut_offs[-1]))
        train = rows[rows["split_at"] < first_test] if test else rows
        test_rows = rows[rows["split_at"] >= first_test] if test else None
        descriptions = read_descriptions(warehouse, project, before=pd.Timestamp(cut_offs[-1]))
        notes.append(f"{len(baskets):,} baskets, {len(train):,} training rows"
                     + (f", {len(test_rows):,} test rows" if test else ""))  # fmt: skip
    return {"end": str(end), "cut_offs": cut_offs, "nodes": nodes, "rows": train,
            "baskets": baskets, "test": test_rows, "descriptions": descriptions}  # fmt: skip


def _fit_stage(project, data, log, progress_bar):
    with log.stage("Fit embeddings, profile, pretrainer and task models") as notes:
        models = fit_models(project, data["baskets"], data["rows"].reset_index(drop=True),
                            descriptions=data["descriptions"], progress_bar=progress_bar,
                            log=notes.append)  # fmt: skip
    return models


def fit(project, model_dir=None, *, progress=None, verbose=True):
    """Fit every configured task on the project's warehouse and save a model directory.

    Parameters
    ----------
    project : Project or path of ``basemodel.yml``
    model_dir : path-like, default=None
        Where to save; None saves to ``model/`` next to the project file.
    progress : bool, default=None
        Progress bars of the network fits; None shows them on a terminal.
    verbose : bool, default=True
        Print each stage with its row counts and time.

    Returns
    -------
    dict
        ``model_dir``, ``model_version``, ``cut_offs``, ``rows``, ``chosen`` (per task, the
        model kept on the validation customers and the scores) and ``next_items`` (what ranks
        the next items: ``Models.next_items``).
    """
    project = _project(project)
    model_dir = Path(model_dir) if model_dir is not None else project.path("model")
    log = Progress(5, verbose)
    data = _prepare(project, log)
    models = _fit_stage(project, data, log, _progress_bar(verbose, progress))
    metrics = {"data_end": data["end"], "cut_offs": data["cut_offs"], "dbt_nodes": data["nodes"],
               "training_rows": len(data["rows"]), "baskets": len(data["baskets"]),
               "chosen": models.chosen, "next_items": models.next_items,
               "timings": log.timings}  # fmt: skip
    with log.stage("Save the model directory") as notes:
        version = save_model(model_dir, project, models, metrics)
        notes.append(f"{model_dir} (version {version})")
    return {"model_dir": str(model_dir), "model_version": version, **metrics}


# --------------------------------------------------------------------------- evaluate
def _recommendation_scores(models, baskets, test, project):
    """Recall@k and NDCG@k of the model and the popularity / own-history baselines."""
    from ..baselines import PersonalFrequencyRecommender, PopularityRecommender
    from ..metrics import ndcg_at_k, recall_at_k

    main = models.history_column.removesuffix("_history")
    rows = test[test[f"future_{main}_items"].map(len) > 0]
    truth, k = rows[f"future_{main}_items"].tolist(), project.tasks.k
    history = rows[models.history_column].tolist()
    # popularity of the horizon before the first test cut-off (no later basket leaks in)
    split_at = rows["split_at"].min()
    recent = baskets["last_event_at"] > split_at - pd.Timedelta(days=project.horizon_days)
    recent &= baskets["last_event_at"] <= split_at
    tops = {
        "model": models.recommend(rows, k)[0],
        "popularity": PopularityRecommender().fit(baskets.loc[recent, f"{main}_items"])
        .predict(history, k=k),
        "own_history_then_popularity": PersonalFrequencyRecommender()
        .fit(baskets[f"{main}_items"]).predict(history, k=k),
    }  # fmt: skip
    kept = (getattr(models, "next_items", None) or {}).get("kept", "fixed_blend")  # old models
    return {name: {f"recall@{k}": recall_at_k(truth, top, k=k), f"ndcg@{k}": ndcg_at_k(truth, top, k=k)}
            for name, top in tops.items()} | {"rows": len(rows), "kept": kept}  # fmt: skip


def _task_scores(models, train, test, project):
    """Per binary / amount task: the model's test score and RFM gradient boosting's."""
    from .training import rfm_columns

    rfm, seed, out = rfm_columns(project), project.model.random_state, {}
    for name, (kind, column) in task_targets(project).items():
        if kind != "items":
            out[name] = _task_score(models, name, kind, column, train, test, rfm, seed)
    return out


def _task_score(models, name, kind, column, train, test, rfm, seed):
    """The model's test score on one task and RFM gradient boosting's (fitted on train)."""
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
    )
    from sklearn.metrics import mean_absolute_error, roc_auc_score

    fit_rows = train[train["in_churn_population"].astype(bool) & train[column].notna()]
    rows = test[test["in_churn_population"].astype(bool) & test[column].notna()]
    y = rows[column].to_numpy(np.float64)
    model = models.predict(rows)[name].to_numpy()
    with one_openmp_thread():
        if kind == "binary":
            booster = HistGradientBoostingClassifier(random_state=seed)
            booster.fit(fit_rows[rfm], fit_rows[column].astype(int))
            score = {"model": roc_auc_score(y, model),
                     "rfm_gradient_boosting": roc_auc_score(y, booster.predict_proba(rows[rfm])[:, 1]),
                     "metric": "roc_auc", "positive_rate": float(y.mean())}  # fmt: skip
        else:
            booster = HistGradientBoostingRegressor(random_state=seed)
            booster.fit(fit_rows[rfm], fit_rows[column])
            score = {"model": mean_absolute_error(y, model),
                     "rfm_gradient_boosting": mean_absolute_error(y, booster.predict(rows[rfm])),
                     "metric": "mean_absolute_error (lower is better)"}  # fmt: skip
    return score | {"rows": len(rows), "kept": models.chosen[name]["kept"]}


def _span(cut_offs):
    if len(cut_offs) == 1:
        return f"the cut-off {cut_offs[0]}"
    return f"{len(cut_offs)} cut-offs from {cut_offs[0]} to {cut_offs[-1]}"


# How the model's next items are ranked, by what the workflow's HistoryRanker kept.
_KEPT_RANKING = {
    "ranker": "the learned history ranker (network scores and the customer's own history)",
    "boost": "the network with the history boost chosen on held-out rows",
    "fixed_blend": "the network with its fixed history blend (too few held-out rows to learn "
                   "a ranker)",
}


def _report_text(results):
    period = (f"Trained on {_span(results['train_cut_offs'])}; tested on "
              f"{_span(results['test_cut_offs'])} (labels over the next "
              f"{results['horizon_days']} days).")  # fmt: skip
    lines = ["# Backtest", "", period, ""]
    if "next_items" in results:
        scores = results["next_items"]
        metrics = [m for m in next(iter(v for v in scores.values() if isinstance(v, dict)))]
        lines += ["## Next items", "", "| model | " + " | ".join(metrics) + " |",
                  "|---|" + "---|" * len(metrics)]  # fmt: skip
        lines += [f"| {name} | " + " | ".join(f"{v[m]:.4f}" for m in metrics) + " |"
                  for name, v in scores.items() if isinstance(v, dict)]  # fmt: skip
        lines += ["", f"{scores['rows']:,} test customers with items in the horizon; the model "
                  f"ranks with: {_KEPT_RANKING.get(scores.get('kept'), scores.get('kept'))}.", ""]
    tasks = results.get("tasks", {})
    if tasks:
        lines += ["## Tasks", "", "| task | metric | model (kept) | RFM + gradient boosting | rows |",
                  "|---|---|---|---|---|"]  # fmt: skip
        lines += [f"| {name} | {s['metric']} | {s['model']:.4f} ({s['kept']}) | "
                  f"{s['rfm_gradient_boosting']:.4f} | {s['rows']:,} |" for name, s in tasks.items()]
        lines.append("")
    return "\n".join(lines)


def evaluate(project, output_dir=None, *, progress=None, verbose=True):
    """Temporal backtest of every task against the shipped baselines, as a report.

    Trains on every backtest cut-off but the last ``backtest.test_splits`` (exactly as
    :func:`fit` does) and tests on those: next items against popularity and the customer's own
    history; churn,
    propensity and spend against gradient boosting on the RFM columns.

    Parameters
    ----------
    project : Project or path of ``basemodel.yml``
    output_dir : path-like, default=None
        Where ``report.md``, ``results.json`` and ``training_curves.png`` go; None writes to
        ``evaluation/`` next to the project file.
    progress, verbose : see :func:`fit`

    Returns
    -------
    results : dict
    """
    from .. import report

    project = _project(project)
    output_dir = Path(output_dir) if output_dir is not None else project.path("evaluation")
    log = Progress(5, verbose)
    data = _prepare(project, log, test=True)
    models = _fit_stage(project, data, log, _progress_bar(verbose, progress))
    with log.stage("Score the test cut-off against the baselines") as notes:
        test = data["test"]
        n_test = project.backtest.test_splits
        results = {"train_cut_offs": data["cut_offs"][:-n_test], "test_cut_offs": data["cut_offs"][-n_test:],
                   "horizon_days": project.horizon_days, "chosen": models.chosen}  # fmt: skip
        if project.tasks.next_items is not None:
            results["next_items"] = _recommendation_scores(models, data["baskets"], test, project)
        results["tasks"] = _task_scores(models, data["rows"], test, project)
        output_dir.mkdir(parents=True, exist_ok=True)
        text = _report_text(results)
        (output_dir / "report.md").write_text(text)
        (output_dir / "results.json").write_text(json.dumps(results, indent=2, default=str))
        histories = {"recommender": models.recommender.named_steps["model"].history_}
        # every task's fine-tuned network, whether kept alone, in a blend or not at all
        histories |= {name: m.named_steps["model"].history_ for name, m in models.networks.items()
                      if hasattr(m.named_steps["model"], "history_")}  # fmt: skip
        if report.pyplot() is not None:
            report.plot_training_curves(histories, output_dir / "training_curves.png")
        notes.append(f"report in {output_dir}")
    log.print(text)
    return results


# --------------------------------------------------------------------------- predict / update
def _score_tables(model, rows, as_of):
    """The write-back tables: one score column per task; the top-k recommendations (None
    without a next_items task)."""
    models = model.models
    stamp = {"as_of": pd.Timestamp(as_of).to_pydatetime(), "model_version": model.version}
    scores = pd.DataFrame({"entity_id": rows["entity_id"].to_numpy()})
    scores = scores.assign(**stamp)
    task_scores = models.predict(rows)
    for column in task_scores:
        scores[column] = task_scores[column].to_numpy(np.float64)
    if model.project.tasks.next_items is None:
        return scores, None
    items, values = models.recommend(rows)
    k = items.shape[1]
    recommendations = pd.DataFrame({
        "entity_id": np.repeat(rows["entity_id"].to_numpy(), k),
        "rank": np.tile(np.arange(1, k + 1, dtype=np.int64), len(rows)),
        "item": items.reshape(-1).astype(str),
        "score": values.reshape(-1).astype(np.float64),
    }).assign(**stamp)  # fmt: skip
    return scores, recommendations


def _universal_table(model, rows, as_of):
    """Every customer's universal profile (all rows, not only the scored population: the
    profile is for any use downstream), or None (switched off, or a model without one)."""
    if not model.project.output.universal_profiles:
        return None
    profiles = model.models.universal_profiles(rows)
    if profiles is None:
        return None
    stamp = {"as_of": pd.Timestamp(as_of).to_pydatetime(), "model_version": model.version}
    front = pd.DataFrame({"entity_id": rows["entity_id"].to_numpy()}).assign(**stamp)
    return pd.concat([front, profiles.reset_index(drop=True).astype(np.float64)], axis=1)


def _write_back(model, warehouse, rows, as_of, log):
    """Score the population and write the tables (rows of an earlier run at this as-of are
    replaced, so re-running is idempotent)."""
    output = model.project.output
    population = rows[rows["in_churn_population"].astype(bool)].reset_index(drop=True)
    with log.stage("Score the population and write the tables back") as notes:
        scores, recommendations = _score_tables(model, population, as_of)
        universal = _universal_table(model, rows, as_of)
        written = {}
        tables = {"scores": scores, "recommendations": recommendations,
                  "universal_profiles": universal}  # fmt: skip
        for name, frame in ((n, f) for n, f in tables.items() if f is not None):
            table = f"{output.prefix}{name}"
            written[f"{output.schema}.{table}"] = warehouse.write(
                table, frame, schema=output.schema,
                replace_where={"as_of": pd.Timestamp(as_of).to_pydatetime()},
            )  # fmt: skip
        notes.append(", ".join(f"{t}: {n:,} rows" for t, n in written.items()))
    return scores, recommendations, universal, written


def predict(model_dir, as_of="now", *, project=None, write=True, verbose=True):
    """Score the configured population as of a cut-off and write the scores back.

    Parameters
    ----------
    model_dir : path-like
        A model directory of :func:`fit`.
    as_of : str or datetime-like, default="now"
        The cut-off: ``"now"`` (the last staged event) or any time; histories use the events
        at or before it.
    project : Project or path, default=None
        Another project file (e.g. another connection); None uses the one saved with the model.
    write : bool, default=True
        Write ``<prefix>scores`` and ``<prefix>recommendations`` (the population's) and
        ``<prefix>universal_profiles`` (every customer with history; unless the project's
        ``output.universal_profiles`` is false) into the output schema.
    verbose : bool, default=True

    Returns
    -------
    dict
        ``as_of``, ``model_version``, ``scores``, ``recommendations`` and
        ``universal_profiles`` (DataFrames, or None), ``written`` (table -> rows) and
        ``population`` (customers scored).
    """
    model = load_model(model_dir)
    if project is not None:
        model.project = _project(project)
    project = model.project
    as_of = as_of if isinstance(as_of, str) else pd.Timestamp(as_of).strftime("%Y-%m-%d %H:%M:%S")
    log = Progress(3 if write else 2, verbose)
    with log.stage(f"Build the profiles as of {as_of} (dbt build)") as notes:
        # scoring needs the histories and who is active, not the baskets
        nodes = build_tables(project, as_of=as_of, select=["+basemodel_entity_targets"])
        notes.append(", ".join(f"{n} {k}" for k, n in nodes.items()))
    with open_warehouse(project) as warehouse:
        with log.stage("Read the profiles") as notes:
            cut_off = as_of_time(warehouse)
            rows = read_rows(warehouse, project, split_at=cut_off, targets=False, state=True)
            notes.append(f"{len(rows):,} customers with history at {cut_off}")
            save_profiles(model, rows[profile_columns(item_names(project))], cut_off)
        return _finish(model, warehouse, fill_amounts(rows), cut_off, log, write)


def _finish(model, warehouse, rows, cut_off, log, write):
    if write:
        scores, recommendations, universal, written = _write_back(model, warehouse, rows,
                                                                  cut_off, log)  # fmt: skip
    else:
        population = rows[rows["in_churn_population"].astype(bool)].reset_index(drop=True)
        (scores, recommendations), written = _score_tables(model, population, cut_off), {}
        universal = _universal_table(model, rows, cut_off)
    return {"as_of": str(cut_off), "model_version": model.version, "scores": scores,
            "recommendations": recommendations, "universal_profiles": universal,
            "written": written, "population": len(scores)}  # fmt: skip


def update(model_dir, as_of="now", *, write=True, verbose=True):
    """Fold the events since the stored profiles' cut-off into them and refresh the scores.

    Equal to :func:`predict` at the new cut-off (the folded profiles equal recomputed ones),
    without refitting and without rebuilding the histories: only the staging models run.

    Parameters
    ----------
    model_dir : path-like
        A model directory on which :func:`predict` (or an earlier update) stored profiles.
    as_of : str or datetime-like, default="now"
    write, verbose : see :func:`predict`

    Returns
    -------
    dict
        As :func:`predict`, plus ``new_events`` (events folded in).
    """
    from ..decay import rate_from_half_life
    from .fold import fold_events

    model = load_model(model_dir)
    project = model.project
    profiles, previous = model.profiles()
    if profiles is None:
        raise ValueError(f"{model_dir} has no stored profiles yet: run `basemodel predict` first.")
    as_of = as_of if isinstance(as_of, str) else pd.Timestamp(as_of).strftime("%Y-%m-%d %H:%M:%S")
    log = Progress(3 if write else 2, verbose)
    with log.stage(f"Stage the new events (dbt build of the staging models), as of {as_of}") as notes:
        build_tables(project, as_of=as_of, select=[*_STAGING, "basemodel_splits"])
        notes.append("staged")
    with open_warehouse(project) as warehouse:
        with log.stage("Fold the new events into the profiles") as notes:
            cut_off = as_of_time(warehouse)
            if cut_off < previous:
                raise ValueError(f"as_of {cut_off} is before the stored profiles' cut-off {previous}.")
            window = ("event_at", previous.to_pydatetime(), cut_off.to_pydatetime())
            events = warehouse.read("basemodel_stg_events", _event_columns(project), between=window)
            gap = project.grouping.gap_minutes if project.grouping.by == "gap" else None
            rows = fold_events(profiles, events, as_of=cut_off, item_names=item_names(project),
                               decay_rate=rate_from_half_life(project.model.half_life_days),
                               history_days=project.model.history_days,
                               session_gap_minutes=gap)  # fmt: skip
            notes.append(f"{len(events):,} new events; {len(rows):,} customers at {cut_off}")
            save_profiles(model, rows, cut_off)
        rows = fill_amounts(_with_population(rows, project))
        return _finish(model, warehouse, rows, cut_off, log, write) | {"new_events": len(events)}


def _event_columns(project):
    return ["entity_id", "event_id", "event_at", "event_type", "group_id", "amount",
            *item_names(project)]  # fmt: skip


def _with_population(rows, project):
    """Who is scored: customers active within ``active_days`` of the cut-off (the package's
    ``in_churn_population``)."""
    active = project.tasks.churn.active_days if project.tasks.churn is not None else 90
    rows = rows.copy()
    rows["in_churn_population"] = (rows["days_since_last_event"] <= active).astype(np.int64)
    return rows


# --------------------------------------------------------------------------- explain
def explain(model_dir, task, *, level="value", n_rows=2000, random_state=0, verbose=True):
    """A task's attributions aggregated to source table, column and value.

    Explains, on up to ``n_rows`` customers of the stored profiles (run :func:`predict`
    first), the candidate the task keeps when it is a network (the fine-tuned one, or the RFM
    network, which reads only the RFM columns); in a blend, its network of largest weight;
    when gradient boosting is kept alone (no gradients), the fine-tuned network
    (:func:`~sklearn_basemodel.workflow.training.explained_candidate`; ``model/metrics.json``
    says what is kept). ``frame.attrs["explained"]`` names the explained candidate.

    Parameters
    ----------
    model_dir : path-like
    task : str
        A task name of the project (``churn``, ``spend``, ``propensity_<column>_<value>``).
    level : {"value", "column"}, default="value"
    n_rows : int, default=2000
    random_state : int, default=0
        Which customers are explained when there are more than ``n_rows``.
    verbose : bool, default=True

    Returns
    -------
    DataFrame
        ``table, column, value, attribution, mean_abs_attribution, n_rows`` (see
        :func:`sklearn_basemodel.nn.explain_sources`).
    """
    from ..nn import explain_sources

    model = load_model(model_dir)
    project = model.project
    networks = model.models.networks
    if task not in networks:
        raise ValueError(f"unknown task {task!r}; the model's tasks are {sorted(networks)}.")
    profiles, _ = model.profiles()
    if profiles is None:
        raise ValueError(f"{model_dir} has no stored profiles yet: run `basemodel predict` first.")
    rows = fill_amounts(_with_population(profiles, project))
    rows = rows[rows["in_churn_population"].astype(bool)]
    if len(rows) > n_rows:
        rows = rows.sample(n_rows, random_state=random_state)
    table = project.events.table or project.events.ref or ".".join(project.events.source)
    sources = {name: column for name, column in zip(item_names(project), project.columns.items)}
    sources["rfm"] = _rfm_sources(project)
    name, network = explained_candidate(model.models, task)
    if name == "rfm_network":  # it reads the RFM block alone
        sources = {"rfm": sources["rfm"]}
    frame = explain_sources(network, rows.reset_index(drop=True), sources=sources,
                            table=table, level=level)  # fmt: skip
    frame.attrs["explained"] = name
    if verbose:
        print(f"explained: {name}")
        print(frame.head(20).to_string(index=False))
    return frame


def _rfm_sources(project):
    """Each RFM feature -> the source column it is computed from (None: the events as a whole)."""
    columns = project.columns
    sources = {"n_events": None, "days_since_last_event": columns.time,
               "days_since_first_event": columns.time, "decay_weight_sum": columns.time,
               "n_groups": columns.group}  # fmt: skip
    if columns.amount:
        sources |= {"total_amount": columns.amount, "mean_amount": columns.amount}
    return sources
