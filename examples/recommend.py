"""Next-month recommendations: time-decayed sketches of products and categories, repeat
purchases, discovery of new products, and why a product was recommended.

The model is a scikit-learn Pipeline:

    ColumnTransformer
      products   -> EMDESketcher over Cleora product vectors   (decay: half-life 30 days)
      categories -> EMDESketcher over Cleora category vectors  (decay: half-life 30 days)
    -> SketchRecommender (predicts the sketch of the next 30 days' products, decodes the top 10)

It is compared with two baselines on customers' next 30 days after 2024-12-01:
the most popular products of the last 30 days, and each customer's own most frequent products
(the strong baseline in repeat-purchase data). With ``history_mode="boost"`` the model blends
its prediction with the customer's own history by one weight chosen on validation customers;
``HistoryRanker`` learns there, per customer and product, how much the own history counts, and is
kept where it validates better than the boost. With ``history_mode="exclude"`` the model
recommends only products the customer never had (discovery).

Run:  python examples/recommend.py          (150k events)
      python examples/recommend.py --small  (30k events)
"""

import argparse

import numpy as np
import pandas as pd
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline

from sklearn_basemodel import CleoraEmbedder, EMDESketcher, explain
from sklearn_basemodel.baselines import (
    PersonalFrequencyRecommender,
    PopularityRecommender,
)
from sklearn_basemodel.datasets import make_events
from sklearn_basemodel.history_ranker import HistoryRanker
from sklearn_basemodel.metrics import recall_at_k
from sklearn_basemodel.recipes import (
    behavioral_profile,
    histories_at,
    history_weights,
    pretrainer,
)

TEST_SPLIT = pd.Timestamp("2024-12-01")
HORIZON = pd.Timedelta(days=30)
K = 10


def customer_rows(events, split):
    """Per customer active before `split`: products / categories with their ages in days, and
    the products of the next 30 days (``future``, the target)."""
    items = {"products": "product_id", "categories": "category_id"}
    return histories_at(events, split, items=items)


def own_history(rows, half_life=30.0):
    """Each customer's own products weighted by 0.5 ** (age / half_life) (boost and baseline)."""
    return history_weights(rows["products"], rows["products_ages"], half_life)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="30k events instead of 150k")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n_events = 30_000 if args.small else 150_000

    events = make_events(n_events, malformed_fraction=0.0, random_state=args.seed)
    category_of = events.drop_duplicates("product_id").set_index("product_id")["category_id"]

    # Entity vectors from the baskets before the test split (unsupervised: no target leaks).
    baskets = events[events["event_time"] <= TEST_SPLIT].groupby("basket_id")
    products = CleoraEmbedder(n_components=64, random_state=args.seed).fit(
        baskets["product_id"].agg(list)
    )
    categories = CleoraEmbedder(n_components=16, random_state=args.seed).fit(
        baskets["category_id"].agg(list)
    )

    # Training rows: monthly splits from July to November; the network learns from July to
    # October, the November split is held out to choose the history boost (rows the network
    # has learned would favour trusting it); test: December.
    train = pd.concat([customer_rows(events, TEST_SPLIT - pd.DateOffset(months=m))
                       for m in range(5, 0, -1)])  # fmt: skip
    train = train[train["future"].map(len) > 0]
    valid = train[train["split"] == train["split"].max()]
    test = customer_rows(events, TEST_SPLIT)
    test = test[test["future"].map(len) > 0]
    print(f"{len(events):,} events; {len(train):,} training rows, {len(test):,} test customers")

    # The behavioral profile: decayed product and category histories.
    category_sketch = EMDESketcher(
        embedder=FrozenEstimator(categories), n_sketches=8, sketch_dim=16, half_life=30.0,
        time_input="age", random_state=args.seed,
    )  # fmt: skip
    features = behavioral_profile(
        products, n_sketches=16, sketch_dim=64, items="products", ages="products_ages",
        half_life=30.0, name="products", random_state=args.seed,
        blocks=[("categories", category_sketch, ["categories", "categories_ages"])],
    )  # fmt: skip
    # The targets are decoded with a sketcher of the same product vectors (no decay on targets).
    target_sketcher = EMDESketcher(
        embedder=FrozenEstimator(products), n_sketches=16, sketch_dim=64,
        handle_unknown="ignore", random_state=args.seed,
    )  # fmt: skip
    model = Pipeline([
        ("features", features),
        ("recommender", pretrainer(
            target_sketcher, k=K, hidden_units=256, n_blocks=1, max_epochs=10, lr=1e-3,
            validation_fraction=0.1, early_stopping=True, n_iter_no_change=2,
            random_state=args.seed,
        )),
    ])  # fmt: skip
    learn = train[train["split"] < valid["split"].max()]
    model.fit(learn, learn["future"].tolist())
    print(f"trained {len(model[-1].history_)} epochs, final validation loss "
          f"{model[-1].history_[-1]['valid_loss']:.3f}")

    # On the validation split: the history boost's history_weight and history_blend
    # (recipes.tune_history_boost), and a ranker that learns per customer and product how much
    # the own history counts (popularity and repeat rates counted on the training rows); the
    # ranker is kept only where it validates better than the boost (out of fold).
    ranker = HistoryRanker(model, k=K, boost_weights=(0.25, 0.5, 0.75, 0.9),
                           random_state=args.seed)  # fmt: skip
    ranker.fit(valid, valid["future"].tolist(), {"30 days": own_history(valid)},
               item_rows=(learn["products"].tolist(), learn["future"].tolist()))  # fmt: skip
    best_weight = ranker.boost_["history_weight"]
    print("validation Recall@10 by (history_blend, history_weight): "
          + ", ".join(f"{blend} {w}: {recall:.3f}" for _, blend, w, recall, _ in ranker.boost_grid_)
          + f" -> {ranker.boost_['history_blend']} {best_weight}; the ranker out of fold "
          f"{ranker.cv_score_[0]:.3f} -> kept the {ranker.kept_}")  # fmt: skip

    # Baselines: the most popular products of the last 30 days, and each customer's own
    # decayed history ranked first (ties and the rest by popularity over the baskets).
    truth = test["future"].tolist()
    last_month = events[(events["event_time"] > TEST_SPLIT - HORIZON)
                        & (events["event_time"] <= TEST_SPLIT)]  # fmt: skip
    popular = PopularityRecommender().fit(last_month.groupby("basket_id")["product_id"].agg(list))
    frequent = PersonalFrequencyRecommender().fit(baskets["product_id"].agg(list))
    history = own_history(test)
    ranked = ranker.predict(test, {"30 days": history})
    recommended = model.predict(test, history=history)
    results = {
        "popularity": recall_at_k(truth, popular.predict(history, k=K), k=K),
        "personal_frequency": recall_at_k(truth, frequent.predict(history, k=K), k=K),
        "model": recall_at_k(truth, model.predict(test), k=K),
        "model_with_history": recall_at_k(truth, recommended, k=K),
        "model_with_ranker": recall_at_k(truth, ranked, k=K),
        "ranker_kept": ranker.kept_,
        "history_weight": best_weight,
    }

    # Discovery: only products new to the customer count, and nobody may recommend known ones.
    new_truth = [[p for p in f if p not in h] for f, h in zip(truth, history)]
    has_new = np.array([len(t) > 0 for t in new_truth])
    model.set_params(recommender__history_mode="exclude")
    new_history = [h for h, n in zip(history, has_new) if n]
    discovered = model.predict(test[has_new], history=new_history)
    popular.set_params(exclude_seen=True)
    popular_new = popular.predict(new_history, k=K)
    new_truth = [t for t, n in zip(new_truth, has_new) if n]
    results["new_products_model"] = recall_at_k(new_truth, discovered, k=K)
    results["new_products_popularity"] = recall_at_k(new_truth, popular_new, k=K)
    model.set_params(recommender__history_mode="boost")

    print(f"\nRecall@10, next 30 days after {TEST_SPLIT.date()} ({len(test):,} customers):")
    print(f"  most popular products (last 30 days)     {results['popularity']:.3f}")
    print(f"  own most frequent products (decayed)     {results['personal_frequency']:.3f}")
    print(f"  SketchRecommender                        {results['model']:.3f}")
    print(f"  SketchRecommender + own history (boost)  {results['model_with_history']:.3f}")
    print(f"  SketchRecommender + HistoryRanker        {results['model_with_ranker']:.3f}")
    print(f"\nRecall@10 of products new to the customer ({int(has_new.sum()):,} customers):")
    print(f"  most popular products they never had     {results['new_products_popularity']:.3f}")
    print(f"  SketchRecommender, history_mode=exclude  {results['new_products_model']:.3f}")

    # One customer: the recommendations, and which past products drove the top one.
    row = test.iloc[[0]]
    top = recommended[0]
    seen = set(row["products"].iloc[0])
    print(f"\nCustomer {row.index[0]}: top {K} (category, * = bought before):")
    print("  " + ", ".join(f"{p} ({category_of[p]}{'*' if p in seen else ''})" for p in top))
    why = explain(model, row, target=top[0])
    drivers = why.entity_importance("products").head(5)
    print(f"  product {top[0]} is recommended mostly because of past products: "
          + ", ".join(f"{entity} ({attr:+.3f})" for (_, entity), attr
                      in drivers["attribution"].items()))  # fmt: skip
    print("  input blocks by importance: "
          + ", ".join(f"{b} {v:.3f}" for b, v in why.block_importance().items()))
    results["explained_products"] = [entity for _, entity in drivers.index]
    return results


if __name__ == "__main__":
    main()
