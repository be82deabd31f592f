"""Feed-forward estimators on sketches (skorch-based), their network, loss and explanations."""

from ._loss import SketchCrossEntropy, sketch_log_softmax
from ._module import ResidualSketchNet
from .classifier import SketchClassifier, SketchRegressor
from .data import SketchDataset
from .explain import Explanation, entity_attributions, explain, explain_sources
from .recommender import SketchRecommender
from .streaming import BatchStream

__all__ = [
    "BatchStream",
    "Explanation",
    "ResidualSketchNet",
    "SketchClassifier",
    "SketchCrossEntropy",
    "SketchDataset",
    "SketchRecommender",
    "SketchRegressor",
    "entity_attributions",
    "explain",
    "explain_sources",
    "sketch_log_softmax",
]
