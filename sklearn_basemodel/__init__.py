"""sklearn-basemodel: behavioral profiles from event data for scikit-learn.

Cleora graph embeddings, EMDE sketches and feed-forward estimators, composable in scikit-learn
pipelines, with a dbt package that prepares the tables inside the warehouse.
"""

from .cleora import CleoraEmbedder
from .exceptions import UnknownEntityWarning

__version__ = "0.1.0"

__all__ = ["CleoraEmbedder", "UnknownEntityWarning", "__version__"]
