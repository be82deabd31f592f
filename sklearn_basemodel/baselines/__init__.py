"""Strong baselines, scikit-learn style: the recommenders and churn features to beat.

Recommenders (all with ``fit(X, y=None)``, ``predict_scores``, ``predict(X, k)`` and ``score``):

- :class:`PopularityRecommender` — global item counts;
- :class:`PersonalFrequencyRecommender` — GP-TopFreq: the customer's own most frequent items,
  ties and the rest by global popularity;
- :class:`TIFUKNNRecommender` — TIFU-KNN (Hu et al., SIGIR 2020): time-decayed personal item
  frequencies blended with those of the nearest customers;
- :class:`EASERecommender` — EASE (Steck, WWW 2019): the closed-form item-item linear model, with
  its L2 strength chosen on held-out rows;
- :class:`ItemKNNRecommender` — item-item cosine k-nearest neighbours.

A *row* is one customer's history: an iterable of item keys (baskets flattened, repeats allowed:
a repeat adds 1) or a mapping item -> weight (e.g. time-decayed counts). ``X`` is a sequence
(list, pandas Series, 1-D array) of rows. :class:`TIFUKNNRecommender` alone takes rows that keep
the baskets apart: a time-ordered list of baskets, each an iterable of item keys.

Churn features: :class:`RFMTransformer` (per-customer event times and amounts -> recency,
frequency, monetary, tenure, mean gap, decayed frequency), :func:`rfm_features` (the same from
an events table) and :class:`BGNBDChurn` (the BG/NBD buy-till-you-die model).
"""

from .bgnbd import BGNBDChurn
from .ease import EASERecommender
from .knn import ItemKNNRecommender
from .popularity import PersonalFrequencyRecommender, PopularityRecommender
from .rfm import RFMTransformer, rfm_features
from .tifu import TIFUKNNRecommender

__all__ = [
    "BGNBDChurn",
    "EASERecommender",
    "ItemKNNRecommender",
    "PersonalFrequencyRecommender",
    "PopularityRecommender",
    "RFMTransformer",
    "TIFUKNNRecommender",
    "rfm_features",
]
