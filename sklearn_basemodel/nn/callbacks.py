"""Training callbacks of the sketch estimators: divergence guard, early stopping after a
frozen phase."""

from __future__ import annotations

import torch
from skorch.callbacks import Callback, EarlyStopping


def _state_is_finite(module: torch.nn.Module) -> bool:
    """Whether every floating weight and buffer (BatchNorm statistics too) is finite."""
    return all(
        bool(torch.isfinite(value).all())
        for value in module.state_dict().values()
        if torch.is_floating_point(value)
    )


class _FiniteLoss(Callback):
    """Stop training at the first non-finite loss or weight and restore the last finite state.

    The weights are copied at the start of ``fit`` and after every epoch that ends with finite
    weights (a copy per epoch, small next to the epoch itself), so a diverged network is never
    left behind: predictions stay finite and a warm start can go on with a lower ``lr``. The
    optimizer's running statistics (Adam's moments) are reset too: they hold the non-finite
    steps and would spoil the next one.
    """

    def on_train_begin(self, net, **kwargs):
        self._remember(net)

    def _remember(self, net) -> None:
        self.finite_state_ = {k: v.detach().clone() for k, v in net.module_.state_dict().items()}
        self.finite_epoch_ = len(net.history)

    def on_batch_end(self, net, batch=None, training=None, loss=None, **kwargs):
        if loss is not None and not bool(torch.isfinite(loss).all()):
            phase = "training" if training else "validation"
            self._stop(net, f"the {phase} loss became {float(loss.detach().reshape(-1)[0])}")

    def on_epoch_end(self, net, **kwargs):
        if not _state_is_finite(net.module_):
            self._stop(net, "the network's weights became non-finite")
        self._remember(net)

    def _stop(self, net, what: str):
        net.module_.load_state_dict(self.finite_state_)
        net.optimizer_.state.clear()
        restored = (
            f"after epoch {self.finite_epoch_}" if self.finite_epoch_ else "before this fit"
        )
        raise FloatingPointError(
            f"{type(net).__name__} diverged: {what} in epoch {len(net.history)}. Training "
            f"stopped and the network was restored to its state {restored}. Lower lr (now "
            f"{net.lr:g}) or rescale X (e.g. normalised sketches, standardised features)."
        )


class _TrunkEarlyStopping(EarlyStopping):
    """Early stopping that ignores the epochs in which the pretrained trunk is frozen.

    During those epochs only the new head trains: counting them against the patience can end
    training before the trunk ever trains, and restoring one of them throws the fine-tuning
    away. Epochs are counted as skorch's ``Freezer``/``Unfreezer`` count them
    (``len(net.history)``), so warm-started refits line up too.
    """

    def __init__(self, *, frozen_epochs=0, **kwargs):
        super().__init__(**kwargs)
        self.frozen_epochs = frozen_epochs

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) <= self.frozen_epochs:
            return
        super().on_epoch_end(net, **kwargs)
