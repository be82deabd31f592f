"""Churn prediction with the BaseModel recipe: pretrain on behaviour, fine-tune on the label.

1. Features per customer and split date: EMDE sketches of the products and categories they
   interacted with (Cleora vectors), plus recency / frequency / monetary / tenure (RFM).
2. Pretrain a SketchRecommender to predict the products of the next 30 days (self-supervised:
   no label needed, every active customer is a training row).
3. Fine-tune a SketchClassifier for churn (no event in the next 30 days) from the pretrained
   trunk, and compare it with the same network trained from scratch and with gradient
   boosting on the RFM features alone.
4. Explain the churn model: how much each input block (products, categories, RFM) matters.

Run:  python examples/churn.py          (150k events)
      python examples/churn.py --small  (30k events)
"""

import argparse

import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from sklearn_basemodel import CleoraEmbedder, EMDESketcher, explain
from sklearn_basemodel.baselines import rfm_features
from sklearn_basemodel.datasets import make_events
from sklearn_basemodel.recipes import (
    behavioral_profile,
    fine_tuner,
    histories_at,
    pretrainer,
)

TEST_SPLIT = pd.Timestamp("2024-12-01")
# baselines.rfm_features: days since the last / first event, events, mean days between them,
# total amount
RFM = ["recency", "tenure", "frequency", "mean_gap", "total_amount"]


def customer_rows(events, split):
    """Per customer active before `split`: histories, RFM features and the churn label."""
    items = {"products": "product_id", "categories": "category_id"}
    rows = histories_at(events, split, items=items)
    rows = rows.join(rfm_features(events, split, amount="amount")[RFM])
    rows["churned"] = (rows["future"].map(len) == 0).astype(int)
    return rows.reset_index()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="30k events instead of 150k")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n_events = 30_000 if args.small else 150_000
    seed = args.seed

    events = make_events(n_events, malformed_fraction=0.0, random_state=seed)
    train = pd.concat([customer_rows(events, TEST_SPLIT - pd.DateOffset(months=m))
                       for m in range(6, 0, -1)], ignore_index=True)  # fmt: skip
    test = customer_rows(events, TEST_SPLIT)
    print(f"{len(events):,} events; churn rate {train['churned'].mean():.1%} over "
          f"{len(train):,} training rows, {test['churned'].mean():.1%} over "
          f"{len(test):,} test rows")

    # 1. Features: Cleora vectors from the baskets before the test split, EMDE sketches, RFM.
    baskets = events[events["event_time"] <= TEST_SPLIT].groupby("basket_id")
    products = CleoraEmbedder(n_components=64, random_state=seed).fit(
        baskets["product_id"].agg(list)
    )
    categories = CleoraEmbedder(n_components=16, random_state=seed).fit(
        baskets["category_id"].agg(list)
    )
    product_sketcher = EMDESketcher(
        embedder=FrozenEstimator(products), n_sketches=16, sketch_dim=64, random_state=seed
    ).fit(baskets["product_id"].agg(list))
    # The behavioral profile: the product sketcher (shared with the recommender's target, so
    # both use the same codes), a category sketch and the RFM columns (log-scaled).
    categories_sketch = EMDESketcher(embedder=FrozenEstimator(categories), n_sketches=8,
                                     sketch_dim=16, random_state=seed)  # fmt: skip
    profile = behavioral_profile(product_sketcher, items="products", name="products", rfm=RFM,
                                 blocks=[("categories", categories_sketch, "categories")])
    network = {"hidden_units": 256, "n_blocks": 1, "lr": 1e-3, "random_state": seed}

    # 2. Pretraining: predict the next 30 days' products of the customers who come back.
    active = train[train["future"].map(len) > 0]
    pretraining = Pipeline([
        ("features", profile),
        ("model", pretrainer(product_sketcher, max_epochs=8, **network)),
    ]).fit(active, active["future"].tolist())  # fmt: skip
    fitted_features = pretraining.named_steps["features"]
    returning = test[test["churned"] == 0]
    recall = pretraining.score(returning, returning["future"].tolist())
    print(f"pretrained SketchRecommender on {len(active):,} rows "
          f"(Recall@10 on the test customers who return: {recall:.3f})")

    # 3. Churn: fine-tuned vs from scratch vs RFM + gradient boosting.
    def churn_model(pretrained=None, **params):
        return fine_tuner(fitted_features, pretrained, max_epochs=6, validation_fraction=0.1,
                          early_stopping=True, n_iter_no_change=2, **network, **params)

    fine_tuned = churn_model(pretraining.named_steps["model"], freeze_epochs=1)
    fine_tuned.fit(train, train["churned"])
    scratch = churn_model().fit(train, train["churned"])
    boosting = HistGradientBoostingClassifier(random_state=seed).fit(train[RFM], train["churned"])
    auc = {
        "fine_tuned": roc_auc_score(test["churned"], fine_tuned.predict_proba(test)[:, 1]),
        "from_scratch": roc_auc_score(test["churned"], scratch.predict_proba(test)[:, 1]),
        "rfm_gradient_boosting": roc_auc_score(
            test["churned"], boosting.predict_proba(test[RFM])[:, 1]
        ),
        "recency_only": roc_auc_score(test["churned"], test["recency"]),
    }
    print("\nchurn ROC AUC on the test split:")
    print(f"  recency alone (days since last event)          {auc['recency_only']:.3f}")
    print(f"  RFM + HistGradientBoostingClassifier           {auc['rfm_gradient_boosting']:.3f}")
    print(f"  SketchClassifier from scratch                  {auc['from_scratch']:.3f}")
    print(f"  SketchClassifier fine-tuned from pretraining   {auc['fine_tuned']:.3f}")

    # 4. What the fine-tuned model looks at: attributions summed per ColumnTransformer block.
    explained = Pipeline([("features", fitted_features), ("model", fine_tuned[-1])])
    why = explain(explained, test.head(300))
    importance = why.block_importance()
    print("\nmean |attribution| of the churn logit per input block: "
          + ", ".join(f"{block} {value:.3f}" for block, value in importance.items()))
    return {"auc": auc, "block_importance": importance.to_dict(), "n_train": len(train)}


if __name__ == "__main__":
    main()
