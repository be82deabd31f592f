"""Cleora: entity embeddings from hyperedges by iterated Markov smoothing.

``graph`` turns rows into hypergraph columns and a vocabulary, ``engine`` propagates on CPU
threads (``cuda`` on a GPU), and ``estimator`` holds the scikit-learn transformer.
"""

from .estimator import CleoraEmbedder

__all__ = ["CleoraEmbedder"]
