"""The universal profile: one compact vector per customer from a pretrained trunk.

A network pretrained self-supervised (a :class:`~sklearn_basemodel.SketchRecommender` of the
next purchases) has learned, in its trunk, what a customer's history says about what comes
next. :class:`UniversalProfile` turns that into one fixed vector per customer that many tasks
can share (churn, category and product propensity ...): the trunk's output (``embed``),
compressed by PCA, beside the profile's plain numeric columns (its RFM block), kept as they
are.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.frozen import FrozenEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._compat import HasMethods, Interval, _fit_context

__all__ = ["UniversalProfile"]

# Rows of trunk output the PCA is fitted on (a seeded sample when there are more): the
# principal directions of a 1,024-wide embedding are settled long before this.
_PCA_ROWS = 100_000
# Rows embedded at once in transform: bounds the memory of the dense trunk output.
_CHUNK_ROWS = 65_536


class UniversalProfile(TransformerMixin, BaseEstimator):
    """One fixed vector per customer: the compressed embedding of a pretrained trunk, plus the
    profile's plain numeric columns.

    ``transform`` maps each row through the (fitted, frozen) ``profile`` to the network's input,
    through the ``pretrained`` trunk (:meth:`SketchRecommender.embed`), and projects that
    embedding on its first ``n_components`` principal directions (fitted in ``fit``, no label
    involved). The columns of the profile's ``passthrough`` blocks (by default its ``rfm``
    block: recency, frequency, amounts) follow unchanged.

    Why compress, and why keep the RFM columns: the trunk's output is as wide as the network
    (1,024 by default), and a small head trained on a few thousand labelled customers cannot
    find the few directions that matter for its task among them. The sketches the trunk reads
    are normalised (they describe *what* a customer did, not *how much* or *how recently*), so
    the trunk has little reason to keep the plain activity columns it was given; they are
    therefore passed on as they are. On generated data (``benchmarks/universal_profile.py``) the
    full 1,024-wide embedding lost churn to an aggregated-features profile, and even the four
    RFM columns alone beat the 1,028-wide trunk input there.

    Parameters
    ----------
    pretrained : fitted sketch estimator or FrozenEstimator of one
        The network whose trunk embeds the rows (e.g. the pretrained ``SketchRecommender``).
        Used as is, never refitted.
    profile : fitted transformer, default=None
        Maps the input rows to the network's input (e.g. the fitted
        :func:`~sklearn_basemodel.recipes.behavioral_profile`); used as is, never refitted.
        None: X is already the network's input.
    n_components : int or None, default=32
        Principal components of the embedding kept; None keeps the whole embedding (no PCA).
        Capped at the number of rows and the embedding's width (``n_components_`` says how
        many were kept).
    passthrough : str, list of str or None, default="rfm"
        Blocks of ``profile`` (a fitted ``ColumnTransformer``) whose output columns are
        appended unchanged. Blocks the profile does not have are left out (see
        ``passthrough_blocks_``); None or ``[]`` appends none.
    random_state : int, RandomState instance or None, default=None
        Seeds the sample of rows the PCA is fitted on above 100,000 rows (below, every row is
        used and the components are computed exactly, so the output does not depend on it).

    Attributes
    ----------
    pca_ : sklearn.decomposition.PCA or None
        The fitted projection of the embedding (None with ``n_components=None``).
    n_components_ : int
        Embedding columns in the output.
    passthrough_blocks_ : list of str
        The blocks whose columns are appended, in order.
    n_features_out_ : int
        Width of the output.

    See Also
    --------
    sklearn_basemodel.recipes.behavioral_profile : The profile the trunk reads.
    sklearn_basemodel.recipes.pretrainer : The self-supervised network.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from sklearn_basemodel import CleoraEmbedder, EMDESketcher, SketchRecommender
    >>> from sklearn_basemodel.recipes import behavioral_profile
    >>> from sklearn_basemodel.universal_profile import UniversalProfile
    >>> rng = np.random.default_rng(0)
    >>> items = [f"i{j}" for j in range(30)]
    >>> rows = pd.DataFrame({
    ...     "items": [list(rng.choice(items, 5)) for _ in range(200)],
    ...     "n_orders": rng.integers(1, 20, 200)})
    >>> future = [list(rng.choice(items, 3)) for _ in range(200)]
    >>> vectors = CleoraEmbedder(n_components=8, random_state=0).fit(rows["items"])
    >>> profile = behavioral_profile(vectors, n_sketches=4, sketch_dim=8, rfm=["n_orders"])
    >>> X = profile.fit_transform(rows)
    >>> net = SketchRecommender(target_sketcher=EMDESketcher(vectors, n_sketches=4,
    ...     sketch_dim=8, random_state=0), hidden_units=32, max_epochs=2, random_state=0)
    >>> net = net.fit(X, future)
    >>> universal = UniversalProfile(net, profile=profile, n_components=4, random_state=0)
    >>> universal.fit_transform(rows).shape    # 4 components + the n_orders column
    (200, 5)
    """

    _parameter_constraints: dict = {
        "pretrained": [HasMethods(["embed"]), FrozenEstimator],
        "profile": [HasMethods(["transform"]), None],
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "passthrough": [str, list, tuple, None],
        "random_state": ["random_state"],
    }

    def __init__(self, pretrained, *, profile=None, n_components=32, passthrough="rfm",
                 random_state=None):  # fmt: skip
        self.pretrained = pretrained
        self.profile = profile
        self.n_components = n_components
        self.passthrough = passthrough
        self.random_state = random_state

    # ------------------------------------------------------------------ pieces
    def _network_input(self, X):
        return X if self.profile is None else self.profile.transform(X)

    def _passthrough_blocks(self):
        wanted = self.passthrough
        wanted = [] if wanted is None else [wanted] if isinstance(wanted, str) else list(wanted)
        if not wanted:
            return [], []
        # a FrozenEstimator passes attribute look-ups on to the profile inside
        indices = getattr(self.profile, "output_indices_", None)
        if indices is None:
            raise ValueError(
                f"passthrough={self.passthrough!r} names blocks of the profile, which must be a "
                "fitted ColumnTransformer (e.g. recipes.behavioral_profile); pass "
                "passthrough=None to append no column."
            )
        blocks = [name for name in wanted if name in indices]
        columns = [np.arange(indices[name].start, indices[name].stop) for name in blocks]
        return blocks, columns

    def _embed(self, P):
        return np.asarray(self.pretrained.embed(P), dtype=np.float32)

    # ------------------------------------------------------------------ fit / transform
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the PCA of the trunk's embedding of X (``y`` is ignored).

        Parameters
        ----------
        X : rows the ``profile`` takes (a DataFrame for a behavioral profile), or the network's
            input when ``profile`` is None.
        y : ignored

        Returns
        -------
        self
        """
        self._fit(X)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None):
        """:meth:`fit`, then :meth:`transform` of the same rows, embedding them once.

        Returns
        -------
        ndarray of shape (n_rows, n_features_out_), float32
        """
        P, E = self._fit(X)
        return self._output(P, E if E.shape[0] == P.shape[0] else None)

    def _fit(self, X):
        """Fit; return the network's input of X and the embedding the PCA was fitted on (of
        every row, or of a sample above ``_PCA_ROWS`` rows)."""
        check_is_fitted(self.pretrained)
        if self.profile is not None:
            check_is_fitted(self.profile)
        self.passthrough_blocks_, columns = self._passthrough_blocks()
        self._passthrough_columns = (np.concatenate(columns) if columns
                                     else np.zeros(0, dtype=np.int64))  # fmt: skip
        P = self._network_input(X)
        n_rows = P.shape[0]
        if n_rows == 0:
            raise ValueError("UniversalProfile.fit needs at least one row.")
        rng = check_random_state(self.random_state)
        sample = np.sort(rng.choice(n_rows, _PCA_ROWS, replace=False)) if n_rows > _PCA_ROWS \
            else slice(None)  # fmt: skip
        E = self._embed(P[sample])
        if self.n_components is None:
            self.pca_ = None
            self.n_components_ = E.shape[1]
        else:
            self.n_components_ = int(min(self.n_components, E.shape[0], E.shape[1]))
            # Exact components (the width-by-width covariance's eigenvectors when there are
            # more rows than columns, as there are in use): scikit-learn's "auto" picks a
            # randomized solver for a 1,024-wide embedding, whose slightly different components
            # per seed moved a small downstream head's AUC (mean of 8 heads) by up to .02 on
            # generated data.
            solver = "covariance_eigh" if E.shape[0] >= E.shape[1] else "full"
            self.pca_ = PCA(self.n_components_, svd_solver=solver).fit(E)
        self.n_features_out_ = self.n_components_ + len(self._passthrough_columns)
        return P, E

    def transform(self, X):
        """The universal profile of each row.

        Returns
        -------
        ndarray of shape (n_rows, n_features_out_), float32
            ``n_components_`` embedding columns, then the passthrough blocks' columns.
        """
        check_is_fitted(self, "n_features_out_")
        return self._output(self._network_input(X))

    def _output(self, P, embedding=None):
        """The profile of the network's input rows ``P``, a chunk of rows at a time;
        ``embedding``: their trunk output when already computed."""
        parts = []
        for start in range(0, P.shape[0], _CHUNK_ROWS):
            chunk = P[start : start + _CHUNK_ROWS]
            E = self._embed(chunk) if embedding is None else embedding[start : start + _CHUNK_ROWS]
            E = E if self.pca_ is None else self.pca_.transform(E)
            kept = chunk[:, self._passthrough_columns]
            kept = kept.toarray() if sp.issparse(kept) else np.asarray(kept)
            parts.append(np.hstack([E, kept]).astype(np.float32))
        if not parts:
            return np.zeros((0, self.n_features_out_), dtype=np.float32)
        return np.vstack(parts)

    def get_feature_names_out(self, input_features=None):
        """``embedding0 ..`` then the passthrough blocks' own column names."""
        check_is_fitted(self, "n_features_out_")
        names = [f"embedding{i}" for i in range(self.n_components_)]
        if len(self._passthrough_columns):
            profile_names = np.asarray(self.profile.get_feature_names_out())
            names += [str(n) for n in profile_names[self._passthrough_columns]]
        return np.asarray(names, dtype=object)
