"""The residual feed-forward network used by every sketch estimator."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import torch
from torch import nn

__all__ = ["ResidualSketchNet"]


class _ResidualBlock(nn.Module):
    """``h + dropout(leaky_relu(batch_norm(linear(h))))``."""

    def __init__(self, width: int, dropout: float, negative_slope: float):
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.norm = nn.BatchNorm1d(width)
        self.activation = nn.LeakyReLU(negative_slope)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.dropout(self.activation(self.norm(self.linear(h))))


class ResidualSketchNet(nn.Module):
    """Residual feed-forward network from sketches to one or more output heads.

    ``trunk`` = an input layer (linear, BatchNorm, leaky ReLU, dropout) followed by ``n_blocks``
    residual blocks of the same width; each head is one linear layer on the trunk output. With the
    default ``n_blocks=3`` the network has five linear layers. The module returns raw scores
    (logits); losses and estimators apply the output nonlinearity.

    Parameters
    ----------
    n_features : int
        Width of the input (e.g. several concatenated sketches).
    n_outputs : int or sequence of int
        Width of the single head, or of each head (the forward pass then returns a tuple).
    hidden_units : int, default=1024
        Width of the trunk.
    n_blocks : int, default=3
        Number of residual blocks after the input layer.
    dropout : float, default=0.1
        Dropout probability after every trunk layer.
    negative_slope : float, default=0.01
        Slope of the leaky ReLU for negative inputs.

    Examples
    --------
    >>> import torch
    >>> from sklearn_basemodel.nn import ResidualSketchNet
    >>> net = ResidualSketchNet(n_features=20, n_outputs=(8, 1), hidden_units=16, n_blocks=2)
    >>> logits, churn = net.eval()(torch.zeros(4, 20))
    >>> tuple(logits.shape), tuple(churn.shape)
    ((4, 8), (4, 1))
    """

    def __init__(
        self,
        n_features: int,
        n_outputs: int | Sequence[int],
        hidden_units: int = 1024,
        n_blocks: int = 3,
        dropout: float = 0.1,
        negative_slope: float = 0.01,
    ):
        super().__init__()
        self.n_features = int(n_features)
        self.single_head = isinstance(n_outputs, Integral)
        self.n_outputs = int(n_outputs) if self.single_head else tuple(int(n) for n in n_outputs)
        self.hidden_units = int(hidden_units)
        self.n_blocks = int(n_blocks)
        self.dropout = float(dropout)
        self.negative_slope = float(negative_slope)
        self.trunk = nn.Sequential(
            nn.Linear(self.n_features, self.hidden_units),
            nn.BatchNorm1d(self.hidden_units),
            nn.LeakyReLU(self.negative_slope),
            nn.Dropout(self.dropout),
            *(
                _ResidualBlock(self.hidden_units, self.dropout, self.negative_slope)
                for _ in range(self.n_blocks)
            ),
        )
        widths = (self.n_outputs,) if self.single_head else self.n_outputs
        self.heads = nn.ModuleList(nn.Linear(self.hidden_units, w) for w in widths)

    def trunk_config(self) -> dict:
        """The hyperparameters that fix the shapes of the trunk's weights."""
        return {
            "n_features": self.n_features,
            "hidden_units": self.hidden_units,
            "n_blocks": self.n_blocks,
            "negative_slope": self.negative_slope,
        }

    def embed(self, X: torch.Tensor) -> torch.Tensor:
        """Trunk output: the learned representation of each input row."""
        return self.trunk(X)

    def forward(self, X: torch.Tensor):
        h = self.trunk(X)
        if self.single_head:
            return self.heads[0](h)
        return tuple(head(h) for head in self.heads)
