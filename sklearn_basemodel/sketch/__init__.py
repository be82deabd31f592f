"""EMDE sketches: the layout (``codebook``), the counting ``kernel``, the ``partition`` of the
entity vector space, and the :class:`EMDESketcher` transformer that joins them."""

from .codebook import SketchCodebook, codebook_of
from .sketcher import EMDESketcher

__all__ = ["EMDESketcher", "SketchCodebook", "codebook_of"]
