"""Shared test set-up."""

import torch

# The suite runs as two pytest-xdist workers on a 2-core machine: one torch thread per worker
# avoids oversubscription (it made the network tests several times faster).
torch.set_num_threads(1)
