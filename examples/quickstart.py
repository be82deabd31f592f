"""Quickstart: from raw events to next-month product recommendations in a few lines.

1. Generate behavioural events (customers buying products in baskets over 2024).
2. Embed the products with Cleora, from which products share baskets.
3. Sketch every customer's history with EMDE (a fixed-size vector per customer).
4. Train a SketchRecommender to predict the products of the next 30 days, and compare its
   Recall@10 with recommending the most popular products.

Run:  python examples/quickstart.py          (100k events, about a minute on 2 cores)
      python examples/quickstart.py --small  (20k events, seconds)

The data are cleaned here with pandas for brevity; on a warehouse, the `basemodel` dbt package
does it (see examples/dbt_project and `basemodel demo`).
"""

import argparse

import pandas as pd
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import make_pipeline

from sklearn_basemodel import CleoraEmbedder, EMDESketcher, SketchRecommender
from sklearn_basemodel.baselines import PopularityRecommender
from sklearn_basemodel.datasets import make_events
from sklearn_basemodel.metrics import recall_at_k
from sklearn_basemodel.recipes import histories_at

SPLIT = pd.Timestamp("2024-12-01")  # histories before, targets in the 30 days after
HORIZON = pd.Timedelta(days=30)  # the popularity baseline counts the 30 days before SPLIT


def histories_and_targets(events, split=SPLIT):
    """One row per customer active before `split`: past products (``history``) and the
    products of the next 30 days (``future``)."""
    return histories_at(events, split, items={"history": "product_id"})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="20k events instead of 100k")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n_events = 20_000 if args.small else 100_000

    # 1. Events: clean ones here (malformed_fraction=0); the dbt package quarantines bad rows.
    events = make_events(n_events, malformed_fraction=0.0, random_state=args.seed)
    print(f"{len(events):,} events, {events['customer_id'].nunique():,} customers, "
          f"{events['product_id'].nunique():,} products")

    # 2. Cleora: one hyperedge per basket (the products bought together), before the split.
    baskets = events[events["event_time"] <= SPLIT].groupby("basket_id")["product_id"].agg(list)
    cleora = CleoraEmbedder(n_components=64, n_iter=3, random_state=args.seed).fit(baskets)
    probe = events["product_id"].value_counts().index[0]
    near = cleora.most_similar(probe, n=5)
    catalog = events.drop_duplicates("product_id").set_index("product_id")["category_id"]
    print(f"\nProducts closest to product {probe} (category {catalog[probe]}):")
    for key, similarity in zip(near["key"], near["similarity"]):
        print(f"  product {key:>5}  category {catalog[key]:>3}  cosine {similarity:.3f}")

    # 3 + 4. Sketches of the histories -> SketchRecommender. Training rows: the histories at
    # the first of August, September, October and November with the next 30 days' products as
    # targets; test rows: the histories at 2024-12-01.
    sketcher = EMDESketcher(
        embedder=FrozenEstimator(cleora), n_sketches=16, sketch_dim=64, random_state=args.seed
    ).fit(baskets)
    train = pd.concat(
        [histories_and_targets(events, SPLIT - pd.DateOffset(months=m)) for m in (4, 3, 2, 1)]
    )
    train = train[train["future"].map(len) > 0]
    test = histories_and_targets(events, SPLIT)
    test = test[test["future"].map(len) > 0]
    model = make_pipeline(
        FrozenEstimator(sketcher),
        SketchRecommender(
            target_sketcher=FrozenEstimator(sketcher),  # decode with the same codes
            k=10, hidden_units=256, n_blocks=1, max_epochs=10, lr=1e-3, random_state=args.seed,
        ),
    )
    model.fit(train["history"], train["future"].tolist())

    recommended = model.predict(test["history"])
    last_month = events[(events["event_time"] > SPLIT - HORIZON) & (events["event_time"] <= SPLIT)]
    popular = PopularityRecommender().fit(last_month.groupby("basket_id")["product_id"].agg(list))
    results = {
        "n_train": len(train),
        "n_test": len(test),
        "recall_model": recall_at_k(test["future"].tolist(), recommended, k=10),
        "recall_popularity": popular.score(test["history"], test["future"].tolist(), k=10),
    }
    print(f"\nRecall@10 on {len(test):,} customers (trained on {len(train):,}):")
    print(f"  SketchRecommender                    {results['recall_model']:.3f}")
    print(f"  most popular products (last 30 days) {results['recall_popularity']:.3f}")
    customer = test.index[0]
    print(f"\nCustomer {customer}: top 5 recommendations {recommended[0][:5].tolist()}, "
          f"products of the next 30 days {sorted(set(test['future'].iloc[0]))[:10]}")
    return results


if __name__ == "__main__":
    main()
