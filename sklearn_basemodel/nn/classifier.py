"""Classification and regression heads on sketches: churn, propensities, future spend."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from scipy.special import expit, log_softmax, softmax
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import column_or_1d

from ._base import SketchNetBase, _splice_shared_docs, _unavailable

__all__ = ["SketchClassifier", "SketchRegressor"]

class SketchClassifier(ClassifierMixin, SketchNetBase):
    """Feed-forward classifier on sketches: binary, multiclass or multilabel (multi-task).

    The target kind is read from ``y``: two classes give one logit with a sigmoid and binary
    cross-entropy (churn); more classes a softmax cross-entropy; a 2-D 0/1 indicator matrix one
    sigmoid per label (several propensities at once, sharing one trunk). Labels may be strings.

    Parameters
    ----------{shared}

    Attributes
    ----------
    classes_ : ndarray
        The class labels (binary/multiclass), or the label indices (multilabel; the column
        names when ``y`` was a DataFrame).
    target_type_ : {"binary", "multiclass", "multilabel-indicator"}
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when X was a DataFrame with string column names.
    module_ : ResidualSketchNet
        The trained network; ``history_`` holds skorch's per-epoch losses.
{shared_attributes}

    See Also
    --------
    SketchRecommender : The self-supervised model whose trunk ``pretrained`` reuses.
    SketchRegressor : The same network for continuous targets.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_basemodel.nn import SketchClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(64, 8))
    >>> y = np.where(X[:, 0] > 0, "churn", "stay")
    >>> clf = SketchClassifier(hidden_units=16, n_blocks=1, max_epochs=20, batch_size=16,
    ...                        lr=1e-2, random_state=0)
    >>> clf.fit(X, y).predict_proba(X[:2]).shape
    (2, 2)
    >>> clf.score(X, y) > 0.9
    True
    """

    # ------------------------------------------------------------------ targets
    def _fit_target(self, y):
        if sp.issparse(y):
            y = y.toarray()
        kind = type_of_target(y, input_name="y", raise_unknown=True)
        if kind not in ("binary", "multiclass", "multilabel-indicator"):
            hint = " Use SketchRegressor for continuous targets." if "continuous" in kind else ""
            raise ValueError(
                f"SketchClassifier takes class labels (binary or multiclass, 1-D) or a 0/1 "
                f"indicator matrix (multilabel); y is {kind!r}.{hint}"
            )
        self.target_type_ = kind
        if kind == "multilabel-indicator":
            n_labels = np.shape(y)[1]
            columns = y.columns if isinstance(y, pd.DataFrame) else None
            self.classes_ = np.asarray(columns) if columns is not None else np.arange(n_labels)
            self.n_outputs_ = n_labels
            return
        self.classes_ = np.unique(column_or_1d(y, warn=True))
        if len(self.classes_) < 2:
            raise ValueError(
                f"y has a single class ({self.classes_[0]!r}); a classifier needs at least two."
            )
        self.n_outputs_ = 1 if kind == "binary" else len(self.classes_)

    def _encode_target(self, y):
        if self.target_type_ == "multilabel-indicator":
            y = y.toarray() if sp.issparse(y) else np.asarray(y)
            if y.ndim != 2 or y.shape[1] != self.n_outputs_:
                raise ValueError(
                    f"y must be an indicator matrix with {self.n_outputs_} columns, like in fit."
                )
            return y.astype(np.float32)
        y = column_or_1d(y)
        codes = np.searchsorted(self.classes_, y)
        codes = np.clip(codes, 0, len(self.classes_) - 1)
        unknown = self.classes_[codes] != y
        if unknown.any():
            raise ValueError(
                f"y contains labels not seen in fit: {sorted(set(y[unknown].tolist()))[:5]}."
            )
        if self.target_type_ == "binary":
            return codes.astype(np.float32)[:, None]
        return codes.astype(np.int64)

    def _default_criterion(self, **kwargs):
        if self.target_type_ == "multiclass":
            return torch.nn.CrossEntropyLoss(**kwargs)
        return torch.nn.BCEWithLogitsLoss(**kwargs)

    def _stratify_labels(self, dataset):
        if self.target_type_ == "multilabel-indicator":
            return None
        return np.asarray(dataset.y).ravel()

    # ------------------------------------------------------------------ predictions
    def decision_function(self, X):
        """Logits: shape (n_rows,) for binary, (n_rows, n_outputs) otherwise."""
        logits = self._network_output(X)
        return logits[:, 0] if self.target_type_ == "binary" else logits

    def predict_proba(self, X):
        """Class probabilities.

        Returns
        -------
        ndarray of shape (n_rows, n_classes)
            For multilabel, the probability of each label (columns do not sum to one).
        """
        logits = self._network_output(X).astype(np.float64)
        if self.target_type_ == "binary":
            p = expit(logits[:, 0])
            return np.column_stack([1.0 - p, p])
        if self.target_type_ == "multiclass":
            return softmax(logits, axis=1)
        return expit(logits)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        logits = self._network_output(X).astype(np.float64)
        if self.target_type_ == "multiclass":
            return log_softmax(logits, axis=1)
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Most probable class (binary/multiclass) or 0/1 indicator per label (multilabel)."""
        proba = self.predict_proba(X)
        if self.target_type_ == "multilabel-indicator":
            return (proba > 0.5).astype(np.int64)
        return self.classes_[np.argmax(proba, axis=1)]

    def _explain_targets(self, X, target):
        n_rows = X.shape[0]
        if target is None:
            if self.target_type_ == "binary":
                return np.zeros(n_rows, dtype=np.int64)
            return np.argmax(self._network_output(X), axis=1).astype(np.int64)
        if self.target_type_ == "binary":
            raise ValueError(
                "For a binary classifier the explained value is the logit of the positive "
                f"class {self.classes_[1]!r}; leave target=None."
            )
        if self.target_type_ == "multilabel-indicator" and isinstance(target, Integral):
            position = int(target)
        else:
            matches = np.flatnonzero(self.classes_ == target)
            if len(matches) != 1:
                raise ValueError(f"target={target!r} is not one of classes_ {list(self.classes_)}.")
            position = int(matches[0])
        return np.full(n_rows, position, dtype=np.int64)

    def _explained_value(self, logits, targets):
        if self.target_type_ == "multiclass":
            logits = torch.log_softmax(logits, dim=1)
        return logits.gather(1, targets[:, None])[:, 0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class SketchRegressor(RegressorMixin, SketchNetBase):
    """Feed-forward regressor on sketches (e.g. future spend), one or several outputs.

    Targets are standardised inside (mean 0, variance 1 per output) so the default learning rate
    suits any scale, from 1e-200 to 1e200; predictions are mapped back. The loss is the mean
    squared error.

    Parameters
    ----------
    standardize_target : bool, default=True
        Standardise each output before training (undone in ``predict``).{shared}

    Attributes
    ----------
    n_outputs_ : int
    target_mean_, target_scale_ : ndarray of shape (n_outputs,)
        The standardisation of y (0 and 1 when ``standardize_target=False``).
    n_features_in_ : int
    module_ : ResidualSketchNet
{shared_attributes}

    See Also
    --------
    SketchClassifier : Same network, classification losses.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_basemodel.nn import SketchRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(64, 8))
    >>> spend = 100 + 30 * X[:, 0]
    >>> reg = SketchRegressor(hidden_units=16, n_blocks=1, max_epochs=20, batch_size=16,
    ...                       lr=1e-2, random_state=0)
    >>> reg.fit(X, spend).predict(X[:3]).shape
    (3,)
    >>> reg.score(X, spend) > 0.8
    True
    """

    _parameter_constraints: dict = {
        **SketchNetBase._parameter_constraints,
        "standardize_target": ["boolean"],
    }

    def __init__(self, *, standardize_target=True, **kwargs):
        super().__init__(**kwargs)
        self.standardize_target = standardize_target

    @staticmethod
    def _as_array(y) -> np.ndarray:
        y = np.asarray(y.toarray() if sp.issparse(y) else y, dtype=np.float64)
        if y.ndim not in (1, 2):
            raise ValueError(f"y must be 1-D or 2-D (one column per output); got {y.ndim}-D.")
        if not np.isfinite(y).all():
            raise ValueError("y contains NaN or infinite values; impute or drop those rows.")
        return y

    def _fit_target(self, y):
        y = self._as_array(y)
        self._target_ndim_ = y.ndim
        y2 = y.reshape(len(y), -1)
        self.n_outputs_ = y2.shape[1]
        if self.standardize_target:
            # Moments of values near 1e200 overflow (their squares are inf): take them in units
            # of each output's largest magnitude, then scale back.
            magnitude = np.abs(y2).max(axis=0)
            magnitude = np.where(magnitude > 0, magnitude, 1.0)
            unit = y2 / magnitude
            self.target_mean_ = unit.mean(axis=0) * magnitude
            scale = unit.std(axis=0) * magnitude
            self.target_scale_ = np.where(scale > 0, scale, 1.0)
        else:
            self.target_mean_ = np.zeros(self.n_outputs_)
            self.target_scale_ = np.ones(self.n_outputs_)

    def _encode_target(self, y):
        y = self._as_array(y)
        y2 = y.reshape(len(y), -1)
        if y2.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {y2.shape[1]} outputs; the model was fitted with {self.n_outputs_}.")
        # y / scale - mean / scale rather than (y - mean) / scale: the difference of two values
        # of opposite sign near the float64 limit overflows.
        encoded = (y2 / self.target_scale_ - self.target_mean_ / self.target_scale_).astype(
            np.float32
        )
        if not np.isfinite(encoded).all():
            raise ValueError(
                f"y (largest magnitude {np.abs(y2).max():.3g}) does not fit in float32 for "
                "training; keep standardize_target=True or rescale y."
            )
        return encoded

    def _default_criterion(self, **kwargs):
        return torch.nn.MSELoss(**kwargs)

    # A regressor has no class probabilities: hide skorch's predict_proba.
    predict_proba = available_if(_unavailable)(SketchNetBase.predict_proba)

    def predict(self, X):
        """Predicted values: shape (n_rows,) when fitted on a 1-D y, else (n_rows, n_outputs)."""
        out = self._network_output(X).astype(np.float64) * self.target_scale_ + self.target_mean_
        return out[:, 0] if self._target_ndim_ == 1 else out

    def _explain_targets(self, X, target):
        position = 0 if target is None else int(target)
        if not 0 <= position < self.n_outputs_:
            raise ValueError(f"target must be an output index in [0, {self.n_outputs_}).")
        return np.full(X.shape[0], position, dtype=np.int64)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


_splice_shared_docs(SketchClassifier)
_splice_shared_docs(SketchRegressor)
