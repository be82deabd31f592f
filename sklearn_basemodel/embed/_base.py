"""The entity-embedder contract shared by every embedder.

An embedder is a scikit-learn estimator with ``fit(rows)`` and
``entity_vectors(column=None) -> (keys, float32 vectors)``; that is all
:class:`~sklearn_basemodel.EMDESketcher` needs from it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def normalize_rows(X: np.ndarray, block: int = 8192) -> np.ndarray:
    """Divide every row by its L2 norm, in place (zero rows stay zero); returns X."""
    for start in range(0, len(X), block):
        part = X[start : start + block]
        sq = np.einsum("ij,ij->i", part, part)
        inv = np.divide(1.0, np.sqrt(sq, dtype=np.float64), out=np.zeros(len(sq)), where=sq > 0)
        part *= inv.astype(X.dtype)[:, None]
    return X


def input_column_name(X):
    """The name of a Series, or of the first column of a DataFrame, else None."""
    if isinstance(X, pd.DataFrame) and X.shape[1]:
        return X.columns[0]
    if isinstance(X, pd.Series):
        return X.name
    return None


def check_column(column, fitted_column, owner: str) -> None:
    """Refuse ``column=`` naming anything but the one column an embedder was fitted on."""
    if column is not None and column != fitted_column:
        raise ValueError(
            f"{owner} was fitted on one column ({fitted_column!r}); column={column!r} does not "
            "name it. Pass column=None."
        )
