"""sklearn-basemodel: behavioral profiles from event data for scikit-learn.

Cleora graph embeddings, EMDE sketches and feed-forward estimators, composable in scikit-learn
pipelines, with a dbt package that prepares the tables inside the warehouse.
"""

from ._lazy import lazy_exports

__version__ = "0.1.0"

# Public name -> module. Loaded on first use, so that `basemodel dbt-path` or
# `sklearn_basemodel.warehouse` do not pay for importing torch.
_EXPORTS = {
    "CleoraEmbedder": ".embed",
    "EMDESketcher": ".sketch",
    "SketchCodebook": ".sketch",
    "RandomVectorEmbedder": ".embed",
    "TextEmbedder": ".embed",
    "SketchClassifier": ".nn",
    "SketchRecommender": ".nn",
    "SketchRegressor": ".nn",
    "explain": ".nn",
    "explain_sources": ".nn",
    "UniversalProfile": ".universal_profile",
    "OversmoothingWarning": ".exceptions",
    "UnknownEntityWarning": ".exceptions",
}

__all__ = [*_EXPORTS, "__version__"]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)
