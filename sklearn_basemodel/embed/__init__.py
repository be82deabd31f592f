"""Entity embedders: each gives ``entity_vectors(column=None) -> (keys, vectors)``.

- :class:`CleoraEmbedder` — vectors from co-occurrence in hyperedges (baskets, sessions).
- :class:`RandomVectorEmbedder` — hashed random vectors per key (ID hashing).
- :class:`TextEmbedder` — vectors from item descriptions (TF-IDF + SVD).
"""

from .cleora import CleoraEmbedder
from .random import RandomVectorEmbedder
from .text import TextEmbedder

__all__ = ["CleoraEmbedder", "RandomVectorEmbedder", "TextEmbedder"]
