"""Warnings and errors raised by sklearn_basemodel."""

__all__ = ["OversmoothingWarning", "UnknownEntityWarning"]


class UnknownEntityWarning(UserWarning):
    """Rows passed to ``transform`` contained keys the estimator did not see in ``fit``.

    Unknown keys are ignored (a row made only of unknown keys gives a zero vector); the warning
    says how many there were and their share of all keys. Silence with
    ``warnings.simplefilter("ignore", UnknownEntityWarning)`` when this is expected.
    """


class OversmoothingWarning(UserWarning):
    """Cleora's entity vectors collapsed towards one direction (over-smoothing).

    Each propagation step averages neighbours; on dense graphs (every customer linked to many
    products) a few steps make all vectors nearly equal, and similarities stop meaning anything.
    The warning gives the measured mean pairwise cosine similarity (``mean_cosine_``); use fewer
    steps, several scales (``n_iter=[1, 2]``) or ``propagation="symmetric"``.
    """
