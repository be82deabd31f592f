"""EMDESketcher throughput: sketches of 1M rows of ~20 entities (issue #3).

How to run
----------
    .venv/bin/python benchmarks/emde_throughput.py            # 1M rows, ~20M entity-events
    .venv/bin/python benchmarks/emde_throughput.py --quick    # 100k rows, a few seconds
    .venv/bin/python benchmarks/emde_throughput.py --out benchmarks/results/emde.md

What it measures
----------------
Seeded data: ``--rows`` rows (customers' histories), each a Python ``list`` of ``int`` keys,
lengths 1 + Poisson(``--mean-length`` - 1), keys drawn from ``--items`` items with power-law
popularity (``1 / (rank + 10)``), repeats within a row allowed (a customer buys an item again).
The sketcher is ``EMDESketcher(RandomVectorEmbedder(64), n_sketches=10, sketch_dim=128)`` fitted
on the rows. Every timing starts from the Python lists and includes parsing them and looking up
every key in the vocabulary:

* ``EMDESketcher.transform`` with sparse (CSR, canonical) and dense output, L2-normalised blocks
  (the default, model inputs) and raw counts (``normalize=None``).
* naive loop: a Python loop over the rows, each row sketched with numpy (dict look-up of the
  keys, one ``bincount`` per row, per-block L2 normalisation), on ``--naive-rows`` rows.
* one-hot matmul: the rows as a rows x entities CSR matrix times the entities x (N*W) one-hot
  matrix of the codes (scipy's sparse product), raw counts; its result has unsorted indices, so a
  second line adds ``sort_indices()`` to reach the same canonical CSR as ours. Checked equal to
  ours on the first rows.

Entity-events/s = events in the rows / seconds. Each line is the best of ``--repeats`` runs after
one untimed warm-up transform (the first touch of fresh memory is slow on virtual machines). Output
memory is the bytes of the returned arrays (CSR: data + indices + indptr). The machine's load
average is printed with the results: other jobs on a shared machine slow every line.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy
import scipy.sparse as sp

from sklearn_basemodel.rows import flatten_rows, lookup
from sklearn_basemodel import RandomVectorEmbedder
from sklearn_basemodel import EMDESketcher


def generate(n_rows: int, mean_length: float, n_items: int, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    lengths = 1 + rng.poisson(mean_length - 1, n_rows)
    p = 1.0 / (np.arange(n_items) + 10.0)
    item_of_rank = rng.permutation(n_items)
    keys = item_of_rank[rng.choice(n_items, size=int(lengths.sum()), p=p / p.sum())].tolist()
    bounds = np.concatenate([[0], np.cumsum(lengths)]).tolist()
    return [keys[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def best_of(repeats: int, fn):
    """(best wall seconds, CPU seconds of that run, result of the last run)."""
    times, result = [], None
    for _ in range(repeats):
        result = None  # free the previous output before the next run
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        times.append((time.perf_counter() - t0, time.process_time() - c0))
    return (*min(times), result)


def nbytes(out) -> int:
    if sp.issparse(out):
        return out.data.nbytes + out.indices.nbytes + out.indptr.nbytes
    return out.nbytes


def naive_sketches(rows, sketcher):
    """The obvious implementation: one row at a time."""
    index = {key: i for i, key in enumerate(sketcher.keys_.tolist())}
    n, w = sketcher.n_sketches, sketcher.sketch_dim
    offsets = np.arange(n) * w
    out = np.zeros((len(rows), n * w), dtype=np.float32)
    for r, row in enumerate(rows):
        positions = [index[k] for k in row if k in index]
        if not positions:
            continue
        counts = np.bincount((sketcher.codes_[positions] + offsets).ravel(), minlength=n * w)
        blocks = counts.reshape(n, w).astype(np.float64)
        out[r] = (blocks / np.linalg.norm(blocks, axis=1, keepdims=True)).ravel()
    return out


def one_hot_sketches(rows, sketcher, sort):
    flat = flatten_rows(rows)
    position = lookup(flat.keys, sketcher.vocabulary_)
    known = position >= 0
    kept = np.concatenate([[0], np.cumsum(known)])[flat.indptr]
    n_entities = len(sketcher.keys_)
    A = sp.csr_matrix(
        (np.ones(int(known.sum()), dtype=np.float32), position[known], kept),
        shape=(len(rows), n_entities),
    )
    n, w = sketcher.n_sketches, sketcher.sketch_dim
    columns = (sketcher.codes_ + np.arange(n) * w).ravel()
    C = sp.csr_matrix(
        (np.ones(len(columns), dtype=np.float32), columns, np.arange(0, len(columns) + 1, n)),
        shape=(n_entities, n * w),
    )
    S = A @ C
    if sort:
        S.sort_indices()
    return S


def first_touch_seconds_per_gib() -> float:
    """Seconds to allocate and write 1 GiB of fresh memory (page faults; slow on some VMs)."""
    t0 = time.perf_counter()
    block = np.ones(2**30 // 8)
    seconds = time.perf_counter() - t0
    del block
    return seconds


def run(args) -> str:
    load_before = os.getloadavg()
    fresh_memory = first_touch_seconds_per_gib()
    t0 = time.perf_counter()
    rows = generate(args.rows, args.mean_length, args.items, args.seed)
    n_events = sum(map(len, rows))
    print(f"generated {len(rows):,} rows, {n_events:,} events in {time.perf_counter() - t0:.1f}s",
          file=sys.stderr)

    sketcher = EMDESketcher(
        RandomVectorEmbedder(64), n_sketches=args.sketches, sketch_dim=args.width, random_state=0
    )
    fit_seconds, _, _ = best_of(1, lambda: sketcher.fit(rows))
    sketcher.transform(rows[: max(1, len(rows) // 10)])  # warm-up (untimed)

    results = []  # (method, output, wall seconds, CPU seconds, events, bytes)

    def measure(label, kind, fn, events=n_events, repeats=args.repeats):
        seconds, cpu, out = best_of(repeats, fn)
        results.append((label, kind, seconds, cpu, events, nbytes(out)))
        print(f"{label} [{kind}]: {seconds:.2f}s wall, {cpu:.2f}s CPU", file=sys.stderr)
        return out

    for output in ["sparse", "dense"]:
        for normalize in ["l2", None]:
            sketcher.set_params(output=output, normalize=normalize)
            label = f"EMDESketcher.transform, normalize={normalize!r}"
            kind = "CSR float32" if output == "sparse" else "ndarray float32"
            out = measure(label, kind, lambda: sketcher.transform(rows))
            if output == "sparse" and normalize is None:
                ours_raw = out[: args.check_rows]
            del out

    # stages of the default transform (sparse, l2)
    sketcher.set_params(output="sparse", normalize="l2")
    t = time.perf_counter()
    flat = flatten_rows(rows)
    t_parse = time.perf_counter() - t
    t = time.perf_counter()
    position = lookup(flat.keys, sketcher.vocabulary_)
    t_lookup = time.perf_counter() - t
    t = time.perf_counter()
    from sklearn_basemodel.sketch.kernel import sketch_matrix

    sketch_matrix(position, flat.indptr, None, sketcher.codebook_, "l2", dense=False)
    t_kernel = time.perf_counter() - t
    del flat, position

    naive_rows = rows[: args.naive_rows]
    naive_events = sum(map(len, naive_rows))
    measure("naive per-row loop (numpy per row)", "ndarray float32",
            lambda: naive_sketches(naive_rows, sketcher), events=naive_events, repeats=1)
    onehot = measure("one-hot CSR @ one-hot codes (scipy), raw", "CSR float32, unsorted",
                     lambda: one_hot_sketches(rows, sketcher, sort=False))
    check = onehot[: args.check_rows].toarray() - ours_raw.toarray()
    assert not check.any(), "one-hot product and EMDESketcher disagree"
    del onehot
    measure("one-hot CSR @ one-hot codes (scipy), raw + sort_indices", "CSR float32",
            lambda: one_hot_sketches(rows, sketcher, sort=True))

    lines = [
        f"### EMDESketcher throughput: {len(rows):,} rows, {n_events:,} entity-events "
        f"(N={args.sketches}, W={args.width}, {len(sketcher.keys_):,} entities)",
        "",
        "| method | output | wall s | entity-events/s (wall) | CPU s | entity-events/s (CPU) "
        "| output memory |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for label, kind, seconds, cpu, events, size in results:
        memory = (
            f"{size / 2**20:,.0f} MiB ({size / len(rows):,.0f} B/row)"
            if events == n_events
            else f"{size / len(naive_rows):,.0f} B/row"
        )
        lines.append(
            f"| {label} | {kind} | {seconds:.2f} | {events / seconds / 1e6:.2f} M | {cpu:.2f} "
            f"| {events / cpu / 1e6:.2f} M | {memory} |"
        )
    if args.naive_rows < len(rows):
        lines.append("")
        lines.append(f"The naive loop ran on the first {len(naive_rows):,} rows "
                     f"({naive_events:,} events); its rate is per event like the others.")
    lines += [
        "",
        f"Stages of the default transform (sparse, l2), wall: parse rows {t_parse:.2f}s, key "
        f"look-up {t_lookup:.2f}s, sketch {t_kernel:.2f}s. Fit (RandomVectorEmbedder + "
        f"partitioning): {fit_seconds:.2f}s. CPU seconds are this process's; on a shared machine "
        "wall time also counts waiting for a core.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()},"
        f" numpy {np.__version__}, scipy {scipy.__version__}; "
        f"load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after; "
        f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f} GiB; "
        f"writing 1 GiB of fresh memory took {fresh_memory:.2f}s (every output is fresh memory).",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--mean-length", type=float, default=20.0)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--sketches", type=int, default=10)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--naive-rows", type=int, default=20_000)
    parser.add_argument("--check-rows", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="100k rows")
    parser.add_argument("--out", type=Path, help="also write the markdown table here")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.naive_rows = 100_000, 5_000
    warnings.simplefilter("ignore")  # unknown-key warnings cannot occur here; keep output clean
    table = run(args)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
