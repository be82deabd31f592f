"""Warnings and errors raised by sklearn_basemodel."""

__all__ = ["UnknownEntityWarning"]


class UnknownEntityWarning(UserWarning):
    """Rows passed to ``transform`` contained keys the estimator did not see in ``fit``.

    Unknown keys are ignored (a row made only of unknown keys gives a zero vector); the warning
    says how many there were and their share of all keys. Silence with
    ``warnings.simplefilter("ignore", UnknownEntityWarning)`` when this is expected.
    """
