"""Entity vectors in, buckets out: EMDE's data-dependent partitioning of the vector space."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd


class Partitioning(NamedTuple):
    """Standardisation, hyperplanes and the resulting codes (see ``EMDESketcher``)."""

    mean: np.ndarray
    scale: np.ndarray
    hyperplanes: np.ndarray
    biases: np.ndarray
    codes: np.ndarray


def given_vectors(given):
    """(keys, vectors) from a mapping, a DataFrame indexed by key, or a (keys, vectors) pair."""
    if isinstance(given, pd.DataFrame):
        keys, vectors = given.index.to_numpy(), given.to_numpy()
    elif isinstance(given, tuple):
        if len(given) != 2:
            raise ValueError(
                "entity_vectors as a tuple must be a pair (keys, vectors), as returned by an "
                "embedder's entity_vectors()."
            )
        keys, vectors = np.asarray(given[0]), given[1]
    else:
        keys = np.empty(len(given), dtype=object)
        keys[:] = list(given.keys())
        try:
            vectors = np.asarray([np.asarray(v, dtype=np.float64) for v in given.values()])
        except ValueError:
            raise ValueError(
                "entity_vectors must map every key to a vector of the same length."
            ) from None
    return keys, vectors


def check_vectors(keys, vectors):
    """Validated (keys, vocabulary index, float32 vectors)."""
    keys = np.asarray(keys)
    try:
        vectors = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError):
        raise TypeError("The entity vectors must be numbers.") from None
    if len(keys) == 0 or vectors.size == 0:
        raise ValueError("There are no entity vectors to partition (empty vocabulary).")
    if vectors.ndim != 2 or len(vectors) != len(keys):
        raise ValueError(
            f"Expected one vector per key: {len(keys)} keys and vectors of shape "
            f"{vectors.shape}."
        )
    if not np.isfinite(vectors).all():
        raise ValueError("The entity vectors contain NaN or infinite values.")
    # a list lets pandas infer the key type: integer keys get a fast integer index
    vocabulary = pd.Index(keys.tolist() if keys.dtype == object else keys, tupleize_cols=False)
    if vocabulary.has_duplicates:
        raise ValueError(
            f"Key {vocabulary[vocabulary.duplicated()][0]!r} has several entity vectors; "
            "give one vector per key."
        )
    if vocabulary.hasnans:
        raise ValueError("The entity keys contain a missing value (None or NaN).")
    return keys, vocabulary, vectors


def partition(vectors, n_sketches, sketch_dim, bias_quantile, rng):
    """Standardise, draw K = log2(sketch_dim) hyperplanes per partitioning, put each through a
    quantile of the projections, and code every entity by the sides it falls on."""
    n_bits = int(sketch_dim).bit_length() - 1
    mean = vectors.mean(axis=0, dtype=np.float64)
    std = vectors.std(axis=0, dtype=np.float64)
    scale = np.where(std > 0, std, 1.0)
    hyperplanes = rng.standard_normal((n_sketches, n_bits, vectors.shape[1]))
    if bias_quantile == "random":
        quantiles = rng.uniform(0.0, 1.0, (n_sketches, n_bits))
    else:
        quantiles = np.full((n_sketches, n_bits), float(bias_quantile))
    biases = np.empty((n_sketches, n_bits))
    codes = np.zeros((len(vectors), n_sketches), dtype=np.int32)
    for j in range(n_sketches):
        # (E - mean) / scale @ H.T without a standardised copy of E
        directions = hyperplanes[j] / scale
        projection = vectors @ directions.T.astype(np.float32)
        projection -= (mean @ directions.T).astype(np.float32)
        for k in range(n_bits):
            biases[j, k] = np.quantile(projection[:, k], quantiles[j, k])
            codes[:, j] |= (projection[:, k] > biases[j, k]).astype(np.int32) << k
    return Partitioning(mean, scale, hyperplanes, biases, codes)
