"""Training speed of the library's network against a plain torch MLP of the same shape.

How to run
----------
    .venv/bin/python benchmarks/training_speed.py                   # issue #10's shape
    .venv/bin/python benchmarks/training_speed.py --rows 2000 --width 256 --hidden 128
    python benchmarks/training_speed.py --device cuda                # on a GPU

What is timed
-------------
The shape of issue #10: ``--rows`` rows (20,000) of an EMDE-like sparse input, ``--width``
(2,048) columns made of ``--sketches`` (16) sketches with ``--nnz-per-sketch`` (1) nonzero
bucket each; a trunk of ``--hidden`` (1,024) units and ``--blocks`` (2) residual blocks; an
output sketch as wide as the input (16 partitionings), the targets being random baskets of
``--basket`` items.

* **library**: ``SketchRecommender`` (public API, its default AdamW at ``lr=1e-3``) trained
  ``--epochs`` epochs (``fit`` then ``partial_fit``, one epoch each) on the CSR input (the
  dataset densifies one batch at a time) with the targets given as item lists (encoded into
  sketches before training starts, as ``fit`` does). The epoch time is skorch's own per-epoch
  ``dur`` in ``history_``: training only, without the input checks and target encoding, which
  are reported separately as the rest of the fits.
* **plain torch**: ``Linear -> ReLU`` layers of the same widths (input, hidden, ``--blocks``
  hidden-to-hidden layers, output), no BatchNorm, dropout or residuals, on the input densified
  once up front, the targets the same L1-normalised sketches (dense), the same per-partitioning
  softmax cross-entropy written inline, the same optimizer, learning rate and batch size,
  batches drawn from a seeded permutation.

Both run in this one process on ``--device`` (``cpu``; ``cuda`` on a GPU, where the library
gathers and densifies each batch from its one copy of the CSR rows on the GPU, and the plain
network reads its dense input from the GPU's memory) with the same ``torch.set_num_threads`` (``--threads``; default: torch's
current setting), their epochs taken in turns (library, plain, library, ...) so that
other jobs on a shared machine slow both alike. The reported time of each is the fastest of its
``--epochs`` epochs (the first pays for allocations). The ratio is library time / plain time per epoch: issue #10's
target is <= 1.5.

Output: a markdown table (printed and written to ``benchmarks/results/training_speed.md``, or
``training_speed_cuda.md`` with ``--device cuda``, unless ``--no-write``), then the last line
``training_speed rows_per_s=<x> torch_rows_per_s=<y> ratio=<r>``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

RESULTS = Path(__file__).resolve().parent / "results" / "training_speed{}.md"
SEED = 0


# --------------------------------------------------------------------------- data
def sparse_sketches(n_rows, n_sketches, sketch_dim, nnz_per_sketch, rng):
    """CSR (n_rows, n_sketches * sketch_dim): each sketch has ``nnz_per_sketch`` buckets set,
    weights summing to one inside the sketch (an L1-normalised EMDE sketch)."""
    buckets = rng.integers(sketch_dim, size=(n_rows, n_sketches, nnz_per_sketch))
    columns = buckets + (np.arange(n_sketches) * sketch_dim)[None, :, None]
    values = np.full(columns.size, 1.0 / nnz_per_sketch, dtype=np.float32)
    indptr = np.arange(0, columns.size + 1, n_sketches * nnz_per_sketch)
    X = sp.csr_matrix((values, columns.ravel(), indptr), shape=(n_rows, n_sketches * sketch_dim))
    X.sum_duplicates()  # two draws of one bucket add up, as in a real sketch
    return X


def target_sketcher(n_items, n_sketches, sketch_dim):
    """A fitted EMDESketcher of ``n_items`` items on random vectors: the output layout."""
    from sklearn_basemodel import EMDESketcher, RandomVectorEmbedder

    sketcher = EMDESketcher(
        embedder=RandomVectorEmbedder(n_components=32, random_state=SEED),
        n_sketches=n_sketches, sketch_dim=sketch_dim, random_state=SEED,
    )  # fmt: skip
    return sketcher.fit([[item] for item in range(n_items)])


def random_baskets(n_rows, n_items, basket, rng):
    return [rng.choice(n_items, size=basket, replace=False).tolist() for _ in range(n_rows)]


# --------------------------------------------------------------------------- the two runs
def library_model(sketcher, args):
    """SketchRecommender of the benchmark's shape, one epoch per ``fit`` / ``partial_fit``."""
    from sklearn.frozen import FrozenEstimator

    from sklearn_basemodel import SketchRecommender

    return SketchRecommender(
        target_sketcher=FrozenEstimator(sketcher), hidden_units=args.hidden,
        n_blocks=args.blocks, max_epochs=1, batch_size=args.batch_size, lr=1e-3,
        early_stopping=False, device=args.device,
        random_state=SEED,  # every row trains: the epoch is what is timed
    )  # fmt: skip


def plain_mlp(n_features, hidden, blocks, n_outputs):
    layers = [torch.nn.Linear(n_features, hidden), torch.nn.ReLU()]
    for _ in range(blocks):
        layers += [torch.nn.Linear(hidden, hidden), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers, torch.nn.Linear(hidden, n_outputs))


def grouped_cross_entropy(logits, target, sketch_dim):
    """Softmax cross-entropy per partitioning (contiguous groups of ``sketch_dim`` columns)."""
    n = logits.shape[0]
    log_probs = torch.log_softmax(logits.reshape(n, -1, sketch_dim), dim=-1)
    target = target.reshape(log_probs.shape)
    has_mass = target.sum(dim=-1) > 0
    return -(target * log_probs).sum() / has_mass.sum().clamp(min=1)


class PlainTraining:
    """The plain MLP, its optimizer and batch order; ``epoch()`` trains one epoch, timed."""

    def __init__(self, X, Y, sketch_dim, args):
        torch.manual_seed(SEED)
        self.device = torch.device(args.device)
        self.X, self.Y = X.to(self.device), Y.to(self.device)
        self.sketch_dim, self.batch_size = sketch_dim, args.batch_size
        self.net = plain_mlp(X.shape[1], args.hidden, args.blocks, Y.shape[1]).to(self.device)
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=1e-3)
        self.rng = np.random.default_rng(SEED)

    def epoch(self) -> float:
        t0 = time.perf_counter()
        self.net.train()
        order = torch.from_numpy(self.rng.permutation(len(self.X))).to(self.device)
        for batch in order.split(self.batch_size):
            self.optimizer.zero_grad()
            loss = grouped_cross_entropy(self.net(self.X[batch]), self.Y[batch], self.sketch_dim)
            loss.backward()
            self.optimizer.step()
            # as skorch does each batch (it records the batch's loss), so both wait for the GPU
            loss.item()
        return time.perf_counter() - t0


def interleaved_epochs(X, y, sketcher, args):
    """Library and plain epochs taken in turns, so that other jobs on a shared machine slow
    both alike. Returns the per-epoch seconds of each and the rest of the library's fits.

    A library epoch's time is skorch's own ``dur`` (training only); each ``fit`` /
    ``partial_fit`` call also checks X and encodes the targets, reported as the rest.
    """
    model = library_model(sketcher, args)
    library, plain, rest = [], [], 0.0
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        (model.fit if epoch == 0 else model.partial_fit)(X, y)
        library.append(float(model.history_[-1, "dur"]))
        rest += time.perf_counter() - t0 - library[-1]
        if epoch == 0:  # the very targets the library trains on, dense, for the plain network
            Y = model.codebook_.normalize(
                sp.csr_matrix(sketcher.transform(y), dtype=np.float32), "l1"
            )
            run = PlainTraining(torch.from_numpy(X.toarray()), torch.from_numpy(Y.toarray()),
                                model.sketch_dim_, args)  # fmt: skip
        plain.append(run.epoch())
    return library, plain, rest


# --------------------------------------------------------------------------- report
def device_name(device):
    if torch.device(device).type != "cuda":
        return "CPU"
    return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"


def table(args, lib_epochs, rest, plain, nnz, load_before):
    lib, base = min(lib_epochs), min(plain)
    lines = [
        "## Training speed: the library's network against a plain torch MLP",
        "",
        f"{args.rows:,} rows, input {args.sketches} x {args.width // args.sketches} = "
        f"{args.width:,} columns ({nnz:.1f} nonzeros per row, CSR), hidden {args.hidden:,}, "
        f"{args.blocks} blocks, output {args.width:,}, batch {args.batch_size}, AdamW lr 1e-3; "
        f"device {device_name(args.device)}; "
        f"{torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs "
        f"({platform.processor() or platform.machine()}), torch {torch.__version__}. "
        f"Fastest of {args.epochs} epochs.",
        "",
        "| network | seconds / epoch | rows / s |",
        "|---|---:|---:|",
        f"| SketchRecommender (sparse input, BatchNorm, dropout, residual) | {lib:.2f} | "
        f"{args.rows / lib:,.0f} |",
        f"| plain torch MLP (dense input, Linear + ReLU) | {base:.2f} | {args.rows / base:,.0f} |",
        "",
        f"Ratio library / plain: **{lib / base:.2f}x** (issue #10's target: <= 1.5x). The rest "
        f"of the library's fit (input checks, target encoding): {rest:.2f} s. Epoch times: "
        f"library {', '.join(f'{t:.2f}' for t in lib_epochs)}; plain "
        f"{', '.join(f'{t:.2f}' for t in plain)}. Load average {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after (the machine may be shared).",
    ]
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--width", type=int, default=2048, help="input and output width")
    parser.add_argument("--sketches", type=int, default=16, help="sketches in the width")
    parser.add_argument("--nnz-per-sketch", type=int, default=1)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--items", type=int, default=5000, help="items of the target baskets")
    parser.add_argument("--basket", type=int, default=8, help="items per target basket")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda on a GPU")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if args.width % args.sketches:
        parser.error(f"--width {args.width} is not a multiple of --sketches {args.sketches}")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    load_before = os.getloadavg()[0]
    if args.threads:
        torch.set_num_threads(args.threads)
    sketch_dim = args.width // args.sketches
    rng = np.random.default_rng(SEED)
    X = sparse_sketches(args.rows, args.sketches, sketch_dim, args.nnz_per_sketch, rng)
    y = random_baskets(args.rows, args.items, args.basket, rng)
    sketcher = target_sketcher(args.items, args.sketches, sketch_dim)

    lib_epochs, plain, rest = interleaved_epochs(X, y, sketcher, args)

    report = table(args, lib_epochs, rest, plain, X.nnz / args.rows, load_before)
    print(report)
    if not args.no_write:
        results = Path(str(RESULTS).format("" if args.device == "cpu" else "_cuda"))
        results.parent.mkdir(exist_ok=True)
        results.write_text(report + "\n")
    lib, base = min(lib_epochs), min(plain)
    result = {"rows_per_s": args.rows / lib, "torch_rows_per_s": args.rows / base,
              "ratio": lib / base}  # fmt: skip
    print(f"training_speed rows_per_s={result['rows_per_s']:.0f} "
          f"torch_rows_per_s={result['torch_rows_per_s']:.0f} ratio={result['ratio']:.2f}")  # fmt: skip
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)
