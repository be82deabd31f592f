"""What the demo shows: progress lines, the markdown report, the plots.

* :class:`Progress` prints each stage as it starts and its time when it ends (the demo and the
  workflow's commands use it).
* :func:`format_report` turns the results of :func:`sklearn_basemodel.demo.run_demo` into
  markdown; :func:`write_results` writes ``report.md`` and ``results.json``.
* :func:`plot_training_curves` and :func:`plot_product_map` draw the plots (nothing without
  matplotlib: :func:`pyplot` is None then).
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from .workflow.training import describe_kept

__all__ = [
    "Progress",
    "format_report",
    "plot_product_map",
    "plot_training_curves",
    "pyplot",
    "write_results",
]


# --------------------------------------------------------------------------- progress
class Progress:
    """Prints each stage as it starts and its time when it ends; keeps the timings.

    ``timings`` holds the wall-clock seconds of each stage, ``cpu_timings`` the CPU seconds of
    this process (all its threads; dbt runs in-process too), which tell how much work a stage
    is when the machine is shared.
    """

    def __init__(self, n_stages, verbose=True):
        self.n_stages = n_stages
        self.verbose = verbose
        self.timings = {}
        self.cpu_timings = {}
        self._index = 0

    def print(self, message=""):
        if self.verbose:
            print(message, flush=True)

    @contextmanager
    def stage(self, name):
        self._index += 1
        self.print(f"[{self._index}/{self.n_stages}] {name} ...")
        start, cpu_start = time.perf_counter(), time.process_time()
        notes = []
        try:
            yield notes
        finally:
            elapsed = time.perf_counter() - start
            self.timings[name] = elapsed
            self.cpu_timings[name] = time.process_time() - cpu_start
            detail = f": {'; '.join(notes)}" if notes else ""
            cpu = self.cpu_timings[name]
            self.print(f"      done in {elapsed:.1f} s (CPU {cpu:.1f} s){detail}")


# --------------------------------------------------------------------------- plots
def pyplot():
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_training_curves(histories, path):
    """Train / validation loss per epoch of each network, side by side."""
    plt = pyplot()
    if plt is None:
        return None
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(histories), figsize=(5 * len(histories), 3.6))
    axes = np.atleast_1d(axes)
    for ax, (title, history) in zip(axes, histories.items()):
        epochs = [row["epoch"] for row in history]
        ax.plot(epochs, [row["train_loss"] for row in history], marker="o", label="train")
        if all("valid_loss" in row for row in history):
            ax.plot(epochs, [row["valid_loss"] for row in history], marker="o", label="validation")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_product_map(embedder, category_of, path, random_state=0, n_coloured=10,
                     max_products=800):  # fmt: skip
    """Product embeddings in 2-D (t-SNE of the Cleora vectors), coloured by category.

    t-SNE costs seconds per thousand points, so only the ``max_products`` most frequent
    products are drawn; the ``n_coloured`` largest categories among them get a colour.
    """
    plt = pyplot()
    if plt is None:
        return None
    from sklearn.manifold import TSNE

    order = np.argsort(-np.asarray(embedder.entity_counts_), kind="stable")[:max_products]
    keys = np.asarray(embedder.vocabulary_, dtype=object)[order]
    vectors = np.asarray(embedder.embeddings_, dtype=np.float32)[order]
    labels = pd.Series([category_of.get(k) for k in keys], dtype=object)
    perplexity = float(min(30, max(2, (len(keys) - 1) / 3)))
    points = TSNE(
        n_components=2, perplexity=perplexity, init="pca", max_iter=500,
        random_state=random_state,
    ).fit_transform(vectors)  # fmt: skip
    top = labels.value_counts().index[:n_coloured]
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    rest = ~labels.isin(top).to_numpy()
    ax.scatter(points[rest, 0], points[rest, 1], s=6, c="lightgrey", label="other categories")
    colours = plt.get_cmap("tab10")
    for i, category in enumerate(top):
        mask = (labels == category).to_numpy()
        ax.scatter(points[mask, 0], points[mask, 1], s=9, color=colours(i % 10),
                   label=f"category {category}")  # fmt: skip
    ax.set_title(
        f"Cleora product embeddings, t-SNE of the {len(keys):,} most frequent products,\n"
        f"coloured by category ({len(top)} largest; others grey)",
        fontsize=10,
    )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, markerscale=2, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- report
def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _number(value):
    return f"{value:,}" if isinstance(value, int) else f"{value:.4f}"


def _intro_section(results):
    guess, fitted = results["init_guess"], results["fit"]
    nodes = ", ".join(f"{n} {k}" for k, n in fitted["dbt_nodes"].items())
    edits = [[f"`{e['key']}`", f"`{json.dumps(e['value'])}`", e["why"]] for e in results["edits"]]
    return [
        f"{results['n_events']:,} generated events (seed {results['random_state']}) in DuckDB "
        f"(`{results['database']}`, table `raw_events`), run through the user workflow: "
        "`basemodel init`, a few edits, `evaluate`, `fit`, `predict`, `explain`.",
        "",
        "## The project",
        "",
        f"`basemodel init` guessed the customer `{guess['customer']}`, the time "
        f"`{guess['time']}`, the items {', '.join(f'`{i}`' for i in guess['items'])} and the "
        f"basket `{guess['group']}`. The edits then made to `project/basemodel.yml`:",
        "",
        _table(["key", "value", "why"], edits),
        "",
        f"`dbt build` of the last fit: {nodes}.",
        "",
    ]


def _rows_section(results):
    rows = results["rows"]
    rejected = [
        [reason, f"{n:,}",
         ", ".join(f"{s} ({c:,})" for s, c in rows["crosstab"].get(reason, {}).items())]
        for reason, n in rows["rejected_by_reason"].items()
    ]  # fmt: skip
    generated = ", ".join(f"{k} {v:,}" for k, v in rows["generated_malformed"].items())
    return [
        "## Rows",
        "",
        _table(
            ["table", "rows"],
            [
                ["raw events (`raw_events`)", f"{rows['raw']:,}"],
                ["staged events (`basemodel_stg_events`)", f"{rows['staged']:,}"],
                ["rejected rows (`basemodel_rejected_events`)", f"{rows['rejected']:,}"],
            ],
        ),
        "",
        "Rejected rows by reason, matched row by row (`source_row`) with the rows the generator "
        "broke:",
        "",
        _table(["rejection reason (dbt)", "rows", "generated as"], rejected),
        "",
        f"Generated malformed rows: {generated}.",
        f"Reconciliation: every raw row number is in exactly one of the staged and rejected "
        f"tables ({rows['raw']:,} = {rows['staged']:,} + {rows['rejected']:,}), and every "
        f"malformed row of a kind the package checks for was rejected with the matching reason: "
        f"**{'yes' if rows['reconciled'] else 'NO'}**.",
        f"Negative amounts: the package has no rule for them, so the "
        f"{rows['negative_amount_generated']:,} generated ones are staged; "
        f"{rows['negative_amount_staged']:,} staged events have an amount below zero "
        f"({rows['negative_amount_matched']:,} of them generated as `negative_amount`).",
        "",
    ]


def _backtest_section(results):
    backtest = results["backtest"]
    out = [
        "## Backtest (`basemodel evaluate`)",
        "",
        f"Trained on the cut-offs {', '.join(backtest['train_cut_offs'])}; tested on "
        f"{', '.join(backtest['test_cut_offs'])}, labels over the next "
        f"{backtest['horizon_days']} days.",
        "",
    ]
    items = backtest.get("next_items")
    if items:
        scored = {name: v for name, v in items.items() if isinstance(v, dict)}
        metrics = list(next(iter(scored.values())))
        out += [
            f"Next items ({items['rows']:,} test customers with items in the horizon):",
            "",
            _table(["model", *metrics], [[name, *(_number(v[m]) for m in metrics)]
                                         for name, v in scored.items()]),
            "",
        ]  # fmt: skip
    tasks = [
        [name, s["metric"], f"{_number(s['model'])} ({s['kept']})",
         _number(s["rfm_gradient_boosting"]), f"{s['rows']:,}"]
        for name, s in backtest.get("tasks", {}).items()
    ]  # fmt: skip
    if tasks:
        out += [
            "Tasks, the model kept on the validation customers against gradient boosting on the "
            "RFM columns (ROC AUC: higher is better; mean absolute error: lower is better):",
            "",
            _table(["task", "metric", "model (kept)", "RFM + gradient boosting", "test rows"],
                   tasks),
            "",
        ]  # fmt: skip
    return out


def _network_start(chosen):
    """Which start the fine-tuned network kept, with the two held-out losses when compared."""
    start = chosen.get("network_start")
    if not start:
        return ""
    kept = "pretrained trunk" if start["pretrained_kept"] else "from scratch"
    losses = start.get("valid_losses")
    if not losses:
        return kept
    return (f"{kept} (held-out loss: pretrained {losses['pretrained']:.4f}, "
            f"scratch {losses['scratch']:.4f})")


def _fit_section(results):
    fitted = results["fit"]
    rows = [
        [name, describe_kept(chosen),
         ", ".join(f"{k} {_number(v)}" for k, v in chosen["validation"].items()),
         _network_start(chosen), f"{chosen['rows']:,}"]
        for name, chosen in fitted["chosen"].items()
    ]  # fmt: skip
    return [
        "## The fitted model (`basemodel fit`)",
        "",
        f"Model version `{fitted['model_version']}`, trained on {fitted['training_rows']:,} "
        f"history rows of the cut-offs {', '.join(fitted['cut_offs'])} and "
        f"{fitted['baskets']:,} baskets. Each task keeps the best candidate on held-out "
        "customers (validation: ROC AUC, or minus the mean absolute error; the blend's score "
        "is cross-fitted):",
        "",
        _table(["task", "kept", "validation scores", "fine-tuned network's start", "rows"],
               rows),
        "",
    ]


def _predict_section(results):
    scored = results["predict"]
    return [
        "## Scores written back (`basemodel predict --as-of now`)",
        "",
        f"{scored['population']:,} customers active in the {scored['active_days']} days before "
        f"{scored['as_of']} "
        f"scored by model `{scored['model_version']}`, written to the DuckDB file:",
        "",
        _table(["table", "rows"], [[f"`{t}`", f"{n:,}"] for t, n in scored["written"].items()]),
        "",
    ]


_CANDIDATE_NAMES = {"network": "fine-tuned network",
                    "rfm_network": "RFM network (it reads the RFM columns alone)"}


def _explain_section(results):
    explanation = results["explanation"]
    header = ["table", "column", "value", "attribution", "mean absolute attribution"]
    rows = [[r["table"], r["column"], r["value"], f"{r['attribution']:+.4f}",
             f"{r['mean_abs_attribution']:.4f}"] for r in explanation["top"]]  # fmt: skip
    explained = explanation.get("explained", "network")
    out = [
        f"## What drives {explanation['task']} (`basemodel explain {explanation['task']}`)",
        "",
        f"Attributions of the {_CANDIDATE_NAMES.get(explained, explained)} on "
        f"{explanation['n_rows']:,} scored customers, aggregated to source table, column and "
        "value (the largest first):",
        "",
        _table(header, rows),
        "",
    ]
    chosen = results.get("fit", {}).get("chosen", {}).get(explanation["task"])
    if chosen and chosen["kept"] != explained:
        why = ("its candidate of largest weight with gradients" if chosen["kept"] == "blend"
               else "gradient boosting has no gradients to attribute")  # fmt: skip
        out += [f"The scores of {explanation['task']} come from {describe_kept(chosen)}, kept "
                f"on the validation customers; the {_CANDIDATE_NAMES.get(explained, explained)}"
                f" is explained ({why}).", ""]  # fmt: skip
    if "embeddings" in results:
        share = results["embeddings"]
        out += [f"Cleora product embeddings: {share['same_category_share']:.0%} of each "
                f"product's 10 nearest products share its category (chance: "
                f"{share['chance_share']:.0%}).", ""]  # fmt: skip
    return out


def _timing_section(results):
    cpu = results["cpu_timings"]
    rows = [
        [name, f"{seconds:.1f}", f"{cpu.get(name, float('nan')):.1f}"]
        for name, seconds in results["timings"].items()
    ]
    rows.append(
        ["**total**", f"**{results['total_seconds']:.1f}**", f"**{sum(cpu.values()):.1f}**"]
    )
    return [
        "## Time per stage",
        "",
        "Wall-clock seconds, and CPU seconds of this process (all threads; dbt runs in-process).",
        "",
        _table(["stage", "seconds", "CPU seconds"], rows),
        "",
    ]


def format_report(results):
    """The demo's results (the dict :func:`run_demo` returns) as a markdown report."""
    out = ["# sklearn-basemodel demo report", ""]
    for section in (_intro_section, _rows_section, _backtest_section, _fit_section,
                    _predict_section, _explain_section, _timing_section):
        out += section(results)
    out += ["## Files", ""] + [f"- `{name}`" for name in results["files"]]
    if results.get("notes"):
        out += ["", "## Notes", ""] + [f"- {note}" for note in results["notes"]]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- files
def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (pd.Timestamp, Path)):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")



def write_results(results, output_dir):
    """Write ``report.md`` and ``results.json`` to ``output_dir``; returns the report."""
    output_dir = Path(output_dir)
    report = format_report(results)
    (output_dir / "report.md").write_text(report)
    (output_dir / "results.json").write_text(
        json.dumps(results, indent=2, default=_json_default, allow_nan=True)
    )
    return report
