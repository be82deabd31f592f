"""Cleora propagation on a GPU (``device='cuda'`` or ``'cuda:<index>'``), through torch
sparse tensors."""

from __future__ import annotations

import re
import warnings

import numpy as np


def csr_tensor(m, device):
    """A scipy CSR matrix as a torch sparse CSR tensor on ``device``, without torch's warnings
    on every fit: the invariants hold by construction (scipy's own CSR), so their check is
    off (torch 2.11 warns of that even when told so explicitly), and the beta notice of sparse
    CSR support says nothing a user can act on."""
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly")
        return torch.sparse_csr_tensor(
            torch.from_numpy(m.indptr.astype(np.int64)),
            torch.from_numpy(m.indices.astype(np.int64)),
            torch.from_numpy(m.data),
            size=m.shape,
            device=device,
            check_invariants=False,
        )


def check_device(device):
    """``device`` if Cleora can run there: ``"cpu"``, ``"cuda"`` (the current GPU) or
    ``"cuda:<index>"`` of a GPU this machine has; a ValueError that says why otherwise."""
    if device == "cpu":
        return device
    if not isinstance(device, str) or not re.fullmatch(r"cuda(:[0-9]+)?", device):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:<index>'; got {device!r}.")
    import torch

    if not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but torch.cuda.is_available() is False. "
            "Use device='cpu' or install a CUDA build of torch on a machine with a GPU."
        )
    index = torch.device(device).index
    if index is not None and index >= torch.cuda.device_count():
        raise ValueError(f"device={device!r}: this machine has {torch.cuda.device_count()} "
                         "CUDA device(s), numbered from 0.")  # fmt: skip
    return device


def propagate_cuda(operator, right_scale, X0, steps, device="cuda"):
    """The propagation on a CUDA device through torch sparse CSR products (same snapshots as
    the CPU loop, up to float32 rounding)."""
    import torch

    dev = torch.device(check_device(device))
    left, right = operator.scipy_factors()
    L, R = csr_tensor(left, dev), csr_tensor(right, dev)
    scale = torch.from_numpy(right_scale).to(dev) if right_scale is not None else None
    X = torch.from_numpy(X0).to(dev)
    snapshots = [X0.copy()] if 0 in steps else []
    for it in range(1, steps[-1] + 1):
        X = L @ (R @ (X * scale if scale is not None else X))
        X = torch.nn.functional.normalize(X, dim=1)
        if it in steps:
            snapshots.append(X.cpu().numpy())
    return snapshots
