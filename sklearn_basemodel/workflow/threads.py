"""Threads of the cheap models beside torch's."""

from __future__ import annotations

__all__ = ["one_openmp_thread"]


def one_openmp_thread():
    """Gradient boosting's OpenMP threads busy-wait between fits and fight torch's for the
    cores (a 20x slowdown measured on 2 cores): run it single-threaded (it is the cheap model)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="openmp")
