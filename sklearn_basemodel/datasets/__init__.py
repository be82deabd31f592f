"""Synthetic behavioral event data, and loaders for public event datasets.

:func:`make_events` generates a raw events table with known structure and malformed rows;
:func:`write_events` writes it to DuckDB. :func:`load_tafeng`, :func:`load_cdnow` and
:func:`load_yoochoose` read public datasets from a local folder.
"""

from ._model import EVENT_TYPES, MALFORMED_REASONS
from .public import load_cdnow, load_tafeng, load_yoochoose
from .synthetic import make_events, write_events

__all__ = [
    "EVENT_TYPES",
    "MALFORMED_REASONS",
    "make_events",
    "write_events",
    "load_tafeng",
    "load_cdnow",
    "load_yoochoose",
]
