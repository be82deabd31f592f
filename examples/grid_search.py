"""Tune a sketch-and-recommend pipeline with scikit-learn's GridSearchCV.

Everything is an ordinary scikit-learn estimator, so the embedding and sketching parameters are
tuned together with the network's: each cross-validation fit learns Cleora vectors from the
training fold's histories, the EMDE partitionings, and the SketchRecommender, and is scored by
Recall@10 on the held-out fold (``recall_at_k_scorer``). Folds are grouped by customer, so a
customer's rows at different split dates never sit on both sides.

Run:  python examples/grid_search.py          (100k events, 8 candidates x 3 folds)
      python examples/grid_search.py --small  (20k events, 4 candidates x 2 folds)
"""

import argparse

import pandas as pd
from sklearn.model_selection import GridSearchCV, GroupKFold, ParameterGrid
from sklearn.pipeline import Pipeline

from sklearn_basemodel import CleoraEmbedder, EMDESketcher, SketchRecommender
from sklearn_basemodel.baselines import PopularityRecommender
from sklearn_basemodel.datasets import make_events
from sklearn_basemodel.metrics import recall_at_k_scorer
from sklearn_basemodel.recipes import histories_at

TEST_SPLIT = pd.Timestamp("2024-12-01")


def customer_rows(events, split):
    """Per customer active before `split` who comes back within 30 days: past products
    (``history``) and the next 30 days' products (``future``)."""
    rows = histories_at(events, split, items={"history": "product_id"})
    return rows[rows["future"].map(len) > 0].reset_index()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="20k events and a smaller grid")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n_events = 20_000 if args.small else 100_000

    events = make_events(n_events, malformed_fraction=0.0, random_state=args.seed)
    train = pd.concat([customer_rows(events, TEST_SPLIT - pd.DateOffset(months=m))
                       for m in range(4, 0, -1)], ignore_index=True)  # fmt: skip
    test = customer_rows(events, TEST_SPLIT)

    pipeline = Pipeline([
        ("sketch", EMDESketcher(
            embedder=CleoraEmbedder(n_components=32),  # fitted on each fold's histories
            n_sketches=8, sketch_dim=64, random_state=args.seed,
            handle_unknown="ignore",  # products first seen in the held-out fold
        )),
        ("recommender", SketchRecommender(
            target_sketcher=EMDESketcher(embedder=CleoraEmbedder(n_components=32), n_sketches=8,
                                         sketch_dim=64, handle_unknown="ignore",
                                         random_state=args.seed),
            k=10, hidden_units=128, n_blocks=1, max_epochs=8, lr=2e-3,
            random_state=args.seed,
        )),
    ])  # fmt: skip
    grid = {
        "sketch__embedder__n_iter": [1, 3],  # Cleora: how far context propagates
        "sketch__sketch_dim": [32, 128],  # EMDE: buckets per partitioning
    }
    if not args.small:
        grid["recommender__hidden_units"] = [128, 512]
    search = GridSearchCV(
        pipeline,
        grid,
        scoring=recall_at_k_scorer(k=10),
        cv=GroupKFold(n_splits=2 if args.small else 3),
        n_jobs=1,
    )
    n_candidates = len(ParameterGrid(grid))
    print(f"{len(train):,} training rows ({train['customer_id'].nunique():,} customers), "
          f"{len(test):,} test customers; fitting {n_candidates} candidates x "
          f"{search.cv.get_n_splits()} folds ...", flush=True)
    search.fit(train["history"], train["future"].tolist(), groups=train["customer_id"])

    results = pd.DataFrame(search.cv_results_)
    columns = [c for c in results.columns if c.startswith("param_")]
    table = results[columns + ["mean_test_score", "std_test_score", "mean_fit_time",
                               "rank_test_score"]].sort_values("rank_test_score")  # fmt: skip
    table.columns = [c.removeprefix("param_") for c in table.columns]
    print("cross-validated Recall@10 by candidate:")
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))

    # the products most bought in the training targets, for everyone
    popular = PopularityRecommender(source="target").fit(train["history"], train["future"])
    test_recall = search.score(test["history"], test["future"].tolist())
    baseline = popular.score(test["history"], test["future"].tolist(), k=10)
    print(f"\nbest: {search.best_params_} (CV Recall@10 {search.best_score_:.3f})")
    print(f"test Recall@10 of the refitted best pipeline: {test_recall:.3f} "
          f"(most popular products: {baseline:.3f})")
    return {
        "best_params": search.best_params_,
        "best_cv_recall": float(search.best_score_),
        "n_candidates": len(results),
        "test_recall": float(test_recall),
        "test_recall_popularity": float(baseline),
    }


if __name__ == "__main__":
    main()
