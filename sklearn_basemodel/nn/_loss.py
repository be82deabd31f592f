"""Loss of the sketch-to-sketch network (docs/ALGORITHMS.md, section 2.4)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SketchCrossEntropy", "sketch_log_softmax"]


def sketch_log_softmax(logits: torch.Tensor, sketch_dim: int) -> torch.Tensor:
    """Log-softmax over each contiguous group of ``sketch_dim`` columns.

    Column ``j * sketch_dim + b`` is bucket ``b`` of partitioning ``j``, so the groups are the
    contiguous slices ``[j * sketch_dim, (j + 1) * sketch_dim)``: one distribution per
    partitioning (the 2021 reference code normalised strided groups instead).

    Parameters
    ----------
    logits : Tensor of shape (n_rows, n_sketches * sketch_dim)
    sketch_dim : int

    Returns
    -------
    Tensor of shape (n_rows, n_sketches * sketch_dim)
    """
    n_rows, width = logits.shape
    if width % sketch_dim:
        raise ValueError(
            f"The output width {width} is not a multiple of sketch_dim={sketch_dim}."
        )
    grouped = logits.reshape(n_rows, width // sketch_dim, sketch_dim)
    return torch.log_softmax(grouped, dim=-1).reshape(n_rows, width)


class SketchCrossEntropy(nn.Module):
    """Cross-entropy between per-partitioning softmaxes and L1-normalised target sketches.

    For each row and each of the N partitionings, ``-sum_b target[b] * log_softmax(logits)[b]``
    over the partitioning's ``sketch_dim`` buckets; the loss is the mean over the
    (row, partitioning) pairs whose target has mass. A row whose target sketch is empty (none of
    its entities is known to the target sketcher) contributes nothing instead of pulling the
    mean towards zero.

    Parameters
    ----------
    sketch_dim : int
        Buckets per partitioning (W).

    Examples
    --------
    >>> import torch
    >>> from sklearn_basemodel.nn import SketchCrossEntropy
    >>> loss = SketchCrossEntropy(sketch_dim=2)
    >>> target = torch.tensor([[1.0, 0.0, 0.5, 0.5]])
    >>> round(loss(torch.zeros(1, 4), target).item(), 4)  # log(2) for both partitionings
    0.6931
    """

    def __init__(self, sketch_dim: int):
        super().__init__()
        self.sketch_dim = int(sketch_dim)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_probs = sketch_log_softmax(logits, self.sketch_dim)
        n_rows = logits.shape[0]
        target = target.reshape(n_rows, -1, self.sketch_dim).to(log_probs.dtype)
        per_group = -(target * log_probs.reshape(target.shape)).sum(dim=-1)
        has_mass = target.sum(dim=-1) > 0
        return per_group.sum() / has_mass.sum().clamp(min=1)
