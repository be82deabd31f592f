"""What the demo shows: progress lines, the markdown report, the plots.

* :class:`Progress` prints each stage as it starts and its time when it ends;
  :func:`epoch_printer` / :func:`print_epochs` print a network's epochs.
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

__all__ = [
    "Progress",
    "epoch_printer",
    "format_report",
    "plot_product_map",
    "plot_training_curves",
    "print_epochs",
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


def epoch_printer(prefix, verbose):
    """A skorch callback printing one line per epoch (or None when not verbose)."""
    if not verbose:
        return None
    from skorch.callbacks import Callback

    class EpochLine(Callback):
        def on_epoch_end(self, net, **kwargs):
            row = net.history[-1]
            parts = [
                f"epoch {row['epoch']:>2}/{net.max_epochs}",
                f"train loss {row['train_loss']:.4f}",
            ]
            if "valid_loss" in row:
                parts.append(f"valid loss {row['valid_loss']:.4f}")
            parts.append(f"{row['dur']:.1f} s")
            print(f"      {prefix}: " + "  ".join(parts), flush=True)

    return [("epoch_line", EpochLine())]


def print_epochs(prefix, history, verbose):
    if not verbose:
        return
    for row in history:
        valid = f"  valid loss {row['valid_loss']:.4f}" if "valid_loss" in row else ""
        print(f"      {prefix}: epoch {row['epoch']:>2}  train loss {row['train_loss']:.4f}"
              f"{valid}  {row['dur']:.1f} s", flush=True)  # fmt: skip



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


def _rows_section(results):
    rows = results["rows"]
    nodes = ", ".join(f"{n} {k}" for k, n in results["dbt_nodes"].items())
    rejected = [
        [reason, f"{n:,}",
         ", ".join(f"{s} ({c:,})" for s, c in rows["crosstab"].get(reason, {}).items())]
        for reason, n in rows["rejected_by_reason"].items()
    ]  # fmt: skip
    generated = ", ".join(f"{k} {v:,}" for k, v in rows["generated_malformed"].items())
    return [
        f"{results['n_events']:,} generated events (seed {results['random_state']}), loaded into "
        f"DuckDB (`{results['database']}`) and prepared by the `basemodel` dbt package "
        f"(`dbt build`: {nodes}).",
        "",
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
        "Rejected rows by reason, matched row by row with the rows the generator broke:",
        "",
        _table(["rejection reason (dbt)", "rows", "generated as"], rejected),
        "",
        f"Generated malformed rows: {generated}.",
        f"Reconciliation: raw = staged + rejected ({rows['raw']:,} = {rows['staged']:,} + "
        f"{rows['rejected']:,}), and every malformed row of a kind the package checks for was "
        f"rejected with the matching reason: **{'yes' if rows['reconciled'] else 'NO'}**.",
        f"Negative amounts: the package has no rule for them, so the "
        f"{rows['negative_amount_generated']:,} generated ones are staged; "
        f"{rows['negative_amount_staged']:,} staged events have an amount below zero "
        f"({rows['negative_amount_matched']:,} of them generated as `negative_amount`).",
        "",
    ]


def _data_section(results):
    data, embeddings = results["data"], results["embeddings"]
    splits = ", ".join(data["train_splits"])
    return [
        "## Data read back",
        "",
        _table(
            ["", "rows"],
            [
                ["baskets (`basemodel_hyperedges`) before the test split", f"{data['baskets']:,}"],
                ["histories (`basemodel_entity_history`), all splits", f"{data['histories']:,}"],
                [f"training rows (splits {splits})", f"{data['train_rows']:,}"],
                ["  with events in the next 30 days (recommender)",
                 f"{data['train_rows_with_future']:,}"],
                [f"test rows (split {data['test_split']})", f"{data['test_rows']:,}"],
                ["  with events in the next 30 days (Recall@10)",
                 f"{data['test_rows_with_future']:,}"],
                ["products / categories embedded",
                 f"{data['products']:,} / {data['categories']:,}"],
                ["model input width (sketches + RFM)", f"{data['n_features']:,}"],
            ],
        ),  # fmt: skip
        "",
        f"Cleora product embeddings: {embeddings['same_category_share']:.0%} of each product's "
        f"10 nearest products share its category (chance: {embeddings['chance_share']:.0%}).",
        "",
    ]


def _recall_section(results):
    rec, split = results["recall_at_10"], results["data"]["test_split"]
    names = {
        "popularity": "popularity (most frequent products of the last 30 days)",
        "personal_frequency": "personal frequency (own decayed history, then popular)",
        "sketch_recommender": "SketchRecommender",
        "sketch_recommender_with_history": "SketchRecommender + own history (boost)",
    }
    return [
        f"## Recommendation: Recall@10 on the test split ({split}, next 30 days)",
        "",
        _table(["model", "Recall@10"], [[names[k], f"{v:.4f}"] for k, v in rec.items()]),
        "",
    ]


def _churn_section(results):
    churn, search = results["churn_auc"], results["grid_search"]
    params = ", ".join(f"{k}={v}" for k, v in churn["classifier_params"].items())
    if search:
        params += ", chosen by GridSearchCV"
    out = [
        "## Churn (no event in the next 30 days): ROC AUC on the test split",
        "",
        f"Churn rate: {churn['train_churn_rate']:.1%} (training rows), "
        f"{churn['test_churn_rate']:.1%} (test rows).",
        "",
        _table(
            ["model", "AUC"],
            [
                ["RFM features + HistGradientBoostingClassifier",
                 f"{churn['rfm_gradient_boosting']:.4f}"],
                [f"SketchClassifier fine-tuned from the recommender's trunk ({params})",
                 f"{churn['sketch_classifier']:.4f}"],
            ],
        ),  # fmt: skip
        "",
    ]
    if search:
        candidates = [
            [r["rank"], ", ".join(f"{k}={v}" for k, v in r["params"].items()),
             f"{r['mean_auc']:.4f}", f"{r['std_auc']:.4f}", f"{r['mean_fit_seconds']:.1f}"]
            for r in sorted(search["results"], key=lambda r: r["rank"])
        ]  # fmt: skip
        out += [
            f"GridSearchCV over the churn pipeline ({search['cv']} folds grouped by customer, "
            "scoring ROC AUC; the best candidate is refitted on all training rows):",
            "",
            _table(["rank", "params", "mean CV AUC", "std", "mean fit time (s)"], candidates),
            "",
        ]
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
    out += _rows_section(results)
    out += _data_section(results)
    out += _recall_section(results)
    out += _churn_section(results)
    out += _timing_section(results)
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
