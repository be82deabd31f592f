"""The main job, end to end (``make demo`` / ``basemodel demo``)."""

from __future__ import annotations

import time

import numpy as np

from .cleora import CleoraEmbedder


def _generated_baskets(n_baskets, n_products, n_categories, rng):
    category = rng.integers(0, n_categories, n_products)
    by_category = [np.flatnonzero(category == c) for c in range(n_categories)]
    baskets = []
    for _ in range(n_baskets):
        c = rng.integers(n_categories)
        size = 2 + rng.poisson(3)
        own = rng.choice(by_category[c], size=size)
        noise = rng.integers(0, n_products, size=rng.poisson(0.5))
        baskets.append([f"p{i}" for i in np.concatenate([own, noise])])
    return baskets, {f"p{i}": int(category[i]) for i in range(n_products)}


def run_demo(n_baskets: int = 20_000, random_state: int = 0) -> dict:
    """Embed generated baskets with Cleora and print each probe product's nearest products."""
    rng = np.random.default_rng(random_state)
    baskets, category = _generated_baskets(n_baskets, 2_000, 20, rng)
    t0 = time.perf_counter()
    cleora = CleoraEmbedder(n_components=64, n_iter=3, random_state=random_state).fit(baskets)
    elapsed = time.perf_counter() - t0
    print(f"Cleora: {len(cleora.vocabulary_)} products from {n_baskets} baskets in {elapsed:.2f}s")
    same = []
    for probe in ["p0", "p1", "p2"]:
        near = cleora.most_similar(probe, n=5)
        share = np.mean([category[k] == category[probe] for k in near["key"]])
        same.append(share)
        print(f"  nearest to {probe} (category {category[probe]}): "
              + ", ".join(f"{k} (cat {category[k]}, {s:.2f})" for k, s in zip(near["key"], near["similarity"])))
    print(f"share of nearest products in the probe's category: {np.mean(same):.0%}")
    return {"seconds": elapsed, "same_category_share": float(np.mean(same))}


if __name__ == "__main__":
    run_demo()
