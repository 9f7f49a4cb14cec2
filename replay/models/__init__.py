"""Models: the BI-R network, the MLP solver, the generative classifier, the frozen conv feature extractor."""
from replay.models.bir import BIRModel
from replay.models.classifier import MLPClassifier
from replay.models.conv import ConvFeatureExtractor
from replay.models.generative_classifier import GenerativeClassifier

__all__ = ["BIRModel", "MLPClassifier", "ConvFeatureExtractor", "GenerativeClassifier"]
