"""sklearn-basemodel: behavioral profiles from event data for scikit-learn.

Cleora graph embeddings, EMDE sketches and feed-forward estimators, composable in scikit-learn
pipelines, with a dbt package that prepares the tables inside the warehouse.
"""

from .cleora import CleoraEmbedder
from .embedders import RandomVectorEmbedder, TextEmbedder
from .emde import EMDESketcher
from .exceptions import UnknownEntityWarning
from .nn import SketchClassifier, SketchRecommender, SketchRegressor, explain

__version__ = "0.1.0"

__all__ = [
    "CleoraEmbedder",
    "EMDESketcher",
    "RandomVectorEmbedder",
    "SketchClassifier",
    "SketchRecommender",
    "SketchRegressor",
    "TextEmbedder",
    "UnknownEntityWarning",
    "explain",
    "__version__",
]
