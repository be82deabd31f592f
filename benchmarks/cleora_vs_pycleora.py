"""CleoraEmbedder vs pycleora 3.x on generated retail data (issue #2).

How to run
----------
    pip install -e '.[bench]'                                   # pycleora + psutil
    .venv/bin/python benchmarks/cleora_vs_pycleora.py           # full run (2M events, 8M scaling)
    .venv/bin/python benchmarks/cleora_vs_pycleora.py --quick   # smoke run, a few seconds
(``make bench`` calls this script through the benchmark runner.)

What it measures
----------------
Generated retail data (seeded): ``--products`` products with power-law (Zipf-like) popularity,
purchase events grouped into baskets of varying (log-normal) size, duplicates within a basket
removed, and every basket owned by one of ``--customers`` customers (power-law activity too).
Keys are Python ints by default: baskets are a ``list`` of ``list[int]``, customers a
``list[int]``; ``--keys str`` makes them strings (``"p123"``, ``"c45"``) for both libraries.

* ``baskets (clique)``: one hyperedge per basket. Ours: ``CleoraEmbedder().fit(baskets)``.
  pycleora: build one whitespace-separated string per basket, then
  ``SparseMatrix.from_iterator(strings, "complex::reflexive::product")``.
* ``customer x products (bipartite)``: one row per basket, customer and its products. Ours: build
  ``pd.DataFrame({"customer": customers, "products": baskets})`` and fit it (the relation
  customer <-> products). pycleora: strings ``"c<id>\\tp<id> p<id> ..."`` (prefixes because
  pycleora merges equal strings of different columns) and columns ``"customer complex::product"``.

Both: d=128, 4 iterations of left Markov propagation with L2 row normalisation, no whitening, each
library's own start vectors (pycleora: ``pycleora.embed(..., whiten=False)``, which runs its
``embed_fast``). pycleora keeps its default ``hyperedge_trim_n=16`` (ours is exact, no trimming).

Every measurement runs in its own subprocess (``sys.executable`` running this script with
``--child``): the child loads the rows from a pickle, imports its library, then times the fit from
the Python rows. It reports wall time, CPU time (user + system, all threads: the steadier figure
on a shared machine), peak RSS (``ru_maxrss``: interpreter, imported libraries, the loaded rows
and the fit) and the RSS just before the fit. Ours and pycleora alternate, ``--repeats`` times;
the tables show medians. Results go to stdout and to ``benchmarks/results/cleora.md``. At the
scaling sizes pycleora runs only when its peak, projected from the 2M run, fits
``--pycleora-max-mb``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "cleora.md"
TRIM_N = 16  # pycleora's default hyperedge_trim_n


# ----------------------------------------------------------------------------- data
def generate(n_events: int, n_products: int, n_customers: int, mean_basket: float, seed: int):
    """Seeded retail data: (baskets: list[list[int]], customers: list[int]), ~n_events events.

    Product popularity ~ 1/(rank + 10)^1.1 (power law); basket sizes log-normal (mean about
    ``mean_basket``, clipped to [1, 200]); repeated products within a basket are removed, and the
    draw is scaled so that about ``n_events`` (product, basket) events remain. Customer activity is
    a power law too (exponent 0.8), and every customer owns at least one basket.
    """
    rng = np.random.default_rng(seed)
    w = 1.0 / (np.arange(n_customers) + 5.0) ** 0.8
    rank = rng.permutation(n_products)  # product ids are not sorted by popularity
    p = 1.0 / (np.arange(n_products) + 10.0) ** 1.1
    p /= p.sum()
    target, scale = n_events, 1.0
    for _ in range(3):
        n_baskets = max(1, int(round(target * scale / mean_basket)))
        sigma = 0.9
        mu = np.log(mean_basket) - sigma**2 / 2
        sizes = np.clip(np.rint(rng.lognormal(mu, sigma, n_baskets)), 1, 200).astype(np.int64)
        basket_of = np.repeat(np.arange(n_baskets, dtype=np.int64), sizes)
        product = rank[rng.choice(n_products, size=len(basket_of), p=p)]
        pair = np.unique(basket_of * n_products + product)
        if abs(len(pair) - target) <= 0.002 * target:
            break
        scale *= target / len(pair)
    basket_of, product = np.divmod(pair, n_products)
    starts = np.searchsorted(basket_of, np.arange(n_baskets + 1))
    plist = product.tolist()
    baskets = [plist[a:b] for a, b in zip(starts[:-1].tolist(), starts[1:].tolist()) if b > a]
    # every customer owns at least one basket (when there are enough baskets); the other
    # baskets go to customers with power-law activity
    owner = rng.choice(n_customers, len(baskets), p=w / w.sum())
    first = rng.permutation(len(baskets))[: min(n_customers, len(baskets))]
    owner[first] = np.arange(len(first))
    customers = rng.permutation(n_customers)[owner]
    return baskets, customers.tolist()


def describe(baskets) -> dict:
    sizes = np.fromiter((len(b) for b in baskets), dtype=np.int64, count=len(baskets))
    return {
        "events": int(sizes.sum()),
        "baskets": len(baskets),
        "mean_basket": float(sizes.mean()),
        "max_basket": int(sizes.max()),
        "share_over_trim": float(sizes[sizes > TRIM_N].sum() / sizes.sum()),
    }


# ----------------------------------------------------------------------------- children
def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _cpu_seconds() -> float:
    """User + system CPU time of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(lib: str, case: str, data_path: str, dim: int, n_iter: int, seed: int) -> dict:
    with open(data_path, "rb") as f:
        baskets, customers = pickle.load(f)
    extra = {}
    if lib == "ours":
        import pandas as pd
        import scipy.sparse  # noqa: F401
        import sklearn.base  # noqa: F401

        before = _rss_mb()
        from sklearn_basemodel import CleoraEmbedder

        # what importing the package adds beyond numpy/scipy/pandas/scikit-learn (e.g. torch)
        extra["package_import_mb"] = _rss_mb() - before

        base, cpu0 = _rss_mb(), _cpu_seconds()
        t0 = time.perf_counter()
        model = CleoraEmbedder(
            n_components=dim, n_iter=n_iter, propagation="left", whiten=False, random_state=seed
        )
        if case == "clique":
            model.fit(baskets)
        else:
            model.fit(pd.DataFrame({"customer": customers, "products": baskets}))
        seconds = time.perf_counter() - t0
        cpu = _cpu_seconds() - cpu0
        emb = model.embeddings_
    else:
        import pycleora
        from pycleora import SparseMatrix

        base, cpu0 = _rss_mb(), _cpu_seconds()
        t0 = time.perf_counter()
        if case == "clique":
            strings = [" ".join(map(str, b)) for b in baskets]
            graph = SparseMatrix.from_iterator(iter(strings), "complex::reflexive::product")
        else:
            strings = [
                f"c{c}\t" + " ".join(["p" + str(p) for p in b]) for c, b in zip(customers, baskets)
            ]
            graph = SparseMatrix.from_iterator(iter(strings), "customer complex::product")
        emb = pycleora.embed(
            graph,
            feature_dim=dim,
            num_iterations=n_iter,
            propagation="left",
            normalization="l2",
            whiten=False,
            seed=seed,
        )
        seconds = time.perf_counter() - t0
        cpu = _cpu_seconds() - cpu0
    return {
        "lib": lib,
        "case": case,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_mb": _peak_mb(),
        "base_mb": base,
        "n_entities": int(emb.shape[0]),
        "finite": bool(np.isfinite(emb).all()),
        "torch_imported": "torch" in sys.modules,
        **extra,
    }


def run_child(lib, case, data_path, args, timeout=3600) -> dict | None:
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--child", lib, "--case", case,
        "--data", data_path, "--dim", str(args.dim), "--iters", str(args.iters),
        "--seed", str(args.seed),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        print(f"  {lib}/{case} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}", flush=True)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- driver
def _median(results, key):
    values = [r[key] for r in results if r is not None]
    return statistics.median(values) if values else float("nan")


def _available_mb() -> float:
    try:
        import psutil

        return psutil.virtual_memory().available / 2**20
    except ImportError:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) / 1024


def make_data(n_events, args, tmpdir):
    n_customers = max(1, int(round(args.customers * n_events / args.events)))
    t0 = time.perf_counter()
    baskets, customers = generate(n_events, args.products, n_customers, args.mean_basket, args.seed)
    if args.keys == "str":
        baskets = [[f"p{p}" for p in b] for b in baskets]
        customers = [f"c{c}" for c in customers]
    path = os.path.join(tmpdir, f"rows_{n_events}.pkl")
    with open(path, "wb") as f:
        pickle.dump((baskets, customers), f, protocol=pickle.HIGHEST_PROTOCOL)
    info = describe(baskets)
    info["customers"] = len(set(customers))
    print(
        f"data {n_events:,}: {info['events']:,} events, {info['baskets']:,} baskets "
        f"(mean {info['mean_basket']:.1f}, max {info['max_basket']}, "
        f"{info['share_over_trim']:.0%} of events in baskets > {TRIM_N}), "
        f"{info['customers']:,} customers; generated in {time.perf_counter() - t0:.1f}s",
        flush=True,
    )
    return path, info


def measure(libs, case, path, args, label):
    runs = {lib: [] for lib in libs}
    for rep in range(args.repeats):
        order = libs if rep % 2 == 0 else libs[::-1]
        for lib in order:
            r = run_child(lib, case, path, args)
            runs[lib].append(r)
            if r is not None:
                print(
                    f"  {label} {case:9s} {lib:8s} rep {rep + 1}: {r['seconds']:7.2f}s "
                    f"(CPU {r['cpu_seconds']:6.2f}s)  "
                    f"peak {r['peak_mb']:7.0f} MB (base {r['base_mb']:.0f})  "
                    f"{r['n_entities']:,} entities",
                    flush=True,
                )
    keys = ("seconds", "cpu_seconds", "peak_mb", "base_mb")
    out = {}
    for lib, results in runs.items():
        out[lib] = {k: _median(results, k) for k in keys}
        out[lib]["fit_mb"] = _median(
            [{"d": r["peak_mb"] - r["base_mb"]} for r in results if r is not None], "d"
        )
        out[lib]["torch_imported"] = any(r and r["torch_imported"] for r in results)
        out[lib]["package_import_mb"] = _median(
            [r for r in results if r is not None and "package_import_mb" in r], "package_import_mb"
        )
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: small sizes, 1 repeat")
    ap.add_argument("--events", type=int, default=2_000_000, help="events of the comparison")
    ap.add_argument("--products", type=int, default=50_000)
    ap.add_argument("--customers", type=int, default=100_000, help="customers at --events")
    ap.add_argument("--mean-basket", type=float, default=8.0)
    ap.add_argument("--scaling", default="500000,2000000,8000000", help="event counts, comma-sep")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--iters", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keys", choices=["int", "str"], default="int", help="type of the keys")
    ap.add_argument(
        "--pycleora-max-mb", type=float, default=16_000,
        help="skip pycleora at a scaling size whose projected peak (MB) exceeds this",
    )  # fmt: skip
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--child", choices=["ours", "pycleora"], help=argparse.SUPPRESS)
    ap.add_argument("--case", choices=["clique", "bipartite"], help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        result = child(args.child, args.case, args.data, args.dim, args.iters, args.seed)
        print(json.dumps(result))
        return 0

    try:
        import pycleora  # noqa: F401
    except ImportError:
        print(
            "pycleora is not installed: it is the benchmark peer. Install the bench extra:\n"
            "    pip install -e '.[bench]'",
            file=sys.stderr,
        )
        return 2

    if args.quick:
        args.events, args.products, args.customers = 100_000, 5_000, 5_000
        args.scaling, args.repeats = "50000,100000,200000", 1
    sizes = [int(s) for s in args.scaling.split(",") if s]
    load_start = os.getloadavg()[0]
    libs = ["ours", "pycleora"]
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, "
          f"{_available_mb():.0f} MB available", flush=True)  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="cleora_bench_") as tmpdir:
        cache = {}

        def data(n):
            if n not in cache:
                cache[n] = make_data(n, args, tmpdir)
            return cache[n]

        path, info = data(args.events)
        main_results = {}
        for case in ("clique", "bipartite"):
            main_results[case] = measure(libs, case, path, args, f"{args.events:,}")

        scaling = {}
        pyc_peak_per_event = main_results["clique"]["pycleora"]["peak_mb"] / info["events"]
        for n in sizes:
            p, inf = data(n)
            want = ["ours"]
            projected = pyc_peak_per_event * inf["events"] * 1.2
            if n == args.events:
                scaling[n] = (inf, main_results["clique"], projected)
                continue
            if projected <= min(args.pycleora_max_mb, 0.8 * _available_mb()):
                want.append("pycleora")
            else:
                print(f"  skipping pycleora at {n:,} events: projected peak {projected:.0f} MB")
            scaling[n] = (inf, measure(want, "clique", p, args, f"{n:,}"), projected)
            os.remove(p)

    load = (load_start, os.getloadavg()[0])
    table = render(args, info, main_results, scaling, load)
    print()
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    print(f"written to {out}")
    return 0


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "n/a"


def render(args, info, main_results, scaling, load) -> str:
    names = {"clique": "baskets (clique)", "bipartite": "customer × products (bipartite)"}
    torch_note = ""
    ours_any = next(iter(main_results.values()))["ours"]
    if ours_any.get("torch_imported"):
        torch_note = (
            " Our peak includes what `import sklearn_basemodel` loads beyond numpy, scipy, "
            f"pandas and scikit-learn: {ours_any['package_import_mb']:.0f} MB, torch (for the "
            "nn estimators) being most of it."
        )
    lines = [
        f"#### CleoraEmbedder vs pycleora {_pycleora_version()}",
        "",
        f"{info['events']:,} purchase events, {args.products:,} products (power-law popularity), "
        f"{info['baskets']:,} baskets (mean size {info['mean_basket']:.1f}, max "
        f"{info['max_basket']}), {info['customers']:,} customers; {args.keys} keys; d={args.dim}, "
        f"{args.iters} iterations, left Markov, L2, no whitening. {os.cpu_count()} cores "
        f"(load average {load[0]:.1f} at the start, {load[1]:.1f} at the end: a shared machine), "
        f"median of {args.repeats} alternating runs, each in its own process. Time: from the "
        "Python rows to the embeddings (pycleora: including building its strings; ours: "
        "including building the DataFrame for the bipartite case). CPU: user + system time of "
        "all threads, less sensitive to other load. Peak: the process's peak RSS "
        "(interpreter, libraries, rows and fit); fit: peak minus the RSS just before the fit."
        + torch_note,
        "",
        "| case | ours (s) | pycleora (s) | time ratio | ours CPU (s) | pycleora CPU (s) "
        "| CPU ratio | ours peak (MB) | pycleora peak (MB) | memory ratio "
        + ("| ours peak less package extras (MB) " if torch_note else "")
        + "| ours fit (MB) | pycleora fit (MB) |",
        "|---|" + "---:|" * (12 if torch_note else 11),
    ]
    for case, res in main_results.items():
        o, p = res["ours"], res["pycleora"]
        lines.append(
            f"| {names[case]} | {o['seconds']:.2f} | {p['seconds']:.2f} | "
            f"{_ratio(o['seconds'], p['seconds'])} | {o['cpu_seconds']:.2f} | "
            f"{p['cpu_seconds']:.2f} | {_ratio(o['cpu_seconds'], p['cpu_seconds'])} | "
            f"{o['peak_mb']:.0f} | {p['peak_mb']:.0f} | {_ratio(o['peak_mb'], p['peak_mb'])} | "
            + (f"{o['peak_mb'] - o['package_import_mb']:.0f} | " if torch_note else "")
            + f"{o['fit_mb']:.0f} | {p['fit_mb']:.0f} |"
        )
    lines += [
        "",
        "Scaling (baskets, clique; products fixed, baskets and customers grow with the events):",
        "",
        "| events | ours (s) | ours µs/event | ours CPU µs/event | ours peak (MB) | pycleora (s) "
        "| pycleora µs/event | pycleora CPU µs/event | pycleora peak (MB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, (inf, res, projected) in scaling.items():
        o, ev = res["ours"], inf["events"]
        row = (
            f"| {ev:,} | {o['seconds']:.2f} | {1e6 * o['seconds'] / ev:.2f} "
            f"| {1e6 * o['cpu_seconds'] / ev:.2f} | {o['peak_mb']:.0f} |"
        )
        if "pycleora" in res:
            p = res["pycleora"]
            row += (
                f" {p['seconds']:.2f} | {1e6 * p['seconds'] / ev:.2f} "
                f"| {1e6 * p['cpu_seconds'] / ev:.2f} | {p['peak_mb']:.0f} |"
            )
        else:
            row += f" not run (projected peak {projected / 1024:.0f} GB) | | | |"
        lines.append(row)
    return "\n".join(lines) + "\n"


def _pycleora_version() -> str:
    try:
        from importlib.metadata import version

        return version("pycleora")
    except Exception:
        return "3.x"


if __name__ == "__main__":
    sys.exit(main())
