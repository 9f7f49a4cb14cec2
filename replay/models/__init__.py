"""Models: the BI-R network, the MLP solver, the frozen conv feature extractor."""
from replay.models.bir import BIRModel
from replay.models.classifier import MLPClassifier
from replay.models.conv import ConvFeatureExtractor

__all__ = ["BIRModel", "MLPClassifier", "ConvFeatureExtractor"]
