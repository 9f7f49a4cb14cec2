"""What a replay method trains, built from a run's config: the strategy's model and the method's structural
arguments (``ReplayMethod.structural``: a generator, an optimiser factory).

``MODEL_BUILDERS`` names the builder of each method that needs more than the solver (``ModelBuilder``: the MLP
solver, no prior); a method registered without one (``replay.methods.register_method``) trains the solver. A
builder's constructor parameters are config keys of ``method.<key>`` beside the method's own, declared the same way
(``replay.schema.Declared``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

from torch import nn

from replay.bench.protocols import Protocol
from replay.checks import COUNT, Range
from replay.generators.vae import conv_vae, mlp_vae
from replay.models import BIRModel, ConvFeatureExtractor, GenerativeClassifier, MLPClassifier
from replay.models.generative_classifier import SCORE_LIKELIHOODS
from replay.optim import adam
from replay.priors.base import LatentPrior
from replay.schema import Declared

if TYPE_CHECKING:
    from avalanche.benchmarks.scenarios.generic_scenario import CLScenario


@dataclass
class Parts:
    """What a builder receives: the config, its stream's protocol, the stream, the prior (None for methods without
    one), the frozen conv layers (None without), the optimiser's arguments, and a factory of further priors like
    the config's (``make_prior(n_classes)``: a fresh prior with that many class slots; None for methods without a
    prior)."""

    config: dict
    protocol: Protocol
    benchmark: CLScenario
    prior: Optional[LatentPrior]
    extractor: Optional[ConvFeatureExtractor]
    optimizer_args: dict
    make_prior: Optional[Callable[[Optional[int]], LatentPrior]] = None

    @property
    def hidden(self) -> list[int]:
        return list(self.config["model"]["hidden"])

    def solver(self) -> MLPClassifier:
        """The MLP solver of the stream (reading conv features when there are conv layers)."""
        return MLPClassifier(self.benchmark.input_shape, self.benchmark.n_classes, self.hidden, self.extractor)


class ModelBuilder(Declared):
    """The solver alone, no prior (the builder of any method without one of its own)."""

    prefix = "method."
    #: the method's model or generator takes the config's prior
    uses_prior = False
    #: the method scores latents with the prior's density (priors without ``log_prob`` cannot serve it)
    needs_density = False

    def build(self, parts: Parts) -> tuple[nn.Module, dict[str, Any]]:
        """(the strategy's model, the method's structural arguments)."""
        return parts.solver(), {}

    def reads_features(self, parts: Parts) -> bool:
        """Whether the model reads conv features (a ``FeatureCache`` then serves them): whenever there are conv layers."""
        return parts.extractor is not None


class GenerativeReplayModels(ModelBuilder):
    """GR: the solver, then its VAE generator with the config's prior (convolutional on streams with conv layers),
    trained with the solver's optimiser settings.

    Args:
        generator_hidden: the generator's hidden sizes (None: the solver's).
    """

    uses_prior = True
    ranges = {"generator_hidden": COUNT}

    def __init__(self, generator_hidden: Optional[list[int]] = None):
        self.generator_hidden = generator_hidden

    def build(self, parts: Parts) -> tuple[nn.Module, dict[str, Any]]:
        solver = parts.solver()
        hidden = self.generator_hidden or parts.hidden
        shape = parts.benchmark.input_shape
        generator = conv_vae(shape, parts.prior, hidden) if parts.protocol.conv else mlp_vae(shape, parts.prior, hidden)
        args = parts.optimizer_args
        return solver, {"generator": generator, "optimizer_factory": lambda params: adam(params, **args)}


class BrainInspiredReplayModels(ModelBuilder):
    """BI-R: one ``BIRModel`` with the config's prior (gates, conditional prior, internal replay per the protocol).

    Args:
        gating: context gates in the decoder.
        gate_prop: the probability that a gate silences a decoder unit (None: the stream's protocol).
        gate_contexts: what a gate belongs to, ``"class"`` or ``"task"`` (None: the stream's protocol).
        internal_replay: replay conv features (None: whenever there are conv layers).
    """

    uses_prior = True
    ranges = {"gate_prop": Range(0, 1, high_open=True)}
    choices = {"gate_contexts": ("class", "task")}

    def __init__(self, gating: bool = True, gate_prop: Optional[float] = None, gate_contexts: Optional[str] = None,
                 internal_replay: Optional[bool] = None):
        self.gating, self.gate_prop, self.gate_contexts = gating, gate_prop, gate_contexts
        self.internal_replay = internal_replay

    def reads_features(self, parts: Parts) -> bool:
        """Whether BI-R replays conv features: whenever there are conv layers, unless the config turns it off."""
        return parts.extractor is not None and self.internal_replay is not False

    def build(self, parts: Parts) -> tuple[nn.Module, dict[str, Any]]:
        benchmark = parts.benchmark
        gate_prop = self.gate_prop if self.gate_prop is not None else parts.protocol.gate_prop
        contexts = self.gate_contexts or parts.protocol.gate_contexts
        per_context = benchmark.classes_per_experience if contexts == "task" else 1
        model = BIRModel(benchmark.input_shape, benchmark.n_classes, parts.prior, parts.hidden,
                         gate_prop=gate_prop if self.gating else 0.0,
                         class_to_context=[c // per_context for c in range(benchmark.n_classes)],
                         feature_extractor=parts.extractor if self.reads_features(parts) else None,
                         seed=parts.config["seed"])
        return model, {}


class GenerativeClassifierModels(ModelBuilder):
    """The generative classifier: one VAE per class of the stream, each with a fresh prior of the config's (as few
    class slots as it takes: one, two for InteL's sectors), hidden widths ``model.hidden`` and latent size ``model.latent_dim``; conv features on streams with conv
    layers. A prior without a density (``LatentPrior.log_prob``) is refused with one line.

    Args:
        samples: importance samples per image and class when scoring (S).
        score_likelihood: ``"trained"`` or ``"gaussian"`` (``GenerativeClassifier``).
        max_rows: the most rows (images x samples) one VAE scores in one call; the default keeps a chunk's decoder
            outputs in a CPU's cache; a GPU scores faster with more (docs/speed.md).
    """

    uses_prior = True
    needs_density = True
    ranges = {"samples": COUNT, "max_rows": COUNT}
    choices = {"score_likelihood": SCORE_LIKELIHOODS}

    def __init__(self, samples: int = 100, score_likelihood: str = "trained", max_rows: int = 4096):
        self.samples, self.score_likelihood, self.max_rows = samples, score_likelihood, max_rows

    def build(self, parts: Parts) -> tuple[nn.Module, dict[str, Any]]:
        kind = type(parts.prior)
        kind.require_density()  # before a prior is built for each class
        model = GenerativeClassifier(parts.benchmark.input_shape, parts.benchmark.n_classes,
                                     lambda: parts.make_prior(kind.min_classes), parts.hidden,
                                     samples=self.samples, score_likelihood=self.score_likelihood,
                                     feature_extractor=parts.extractor, max_rows=self.max_rows)
        return model, {}


#: method name -> the builder of what it trains (``ModelBuilder`` for the others)
MODEL_BUILDERS: dict[str, type[ModelBuilder]] = {"gr": GenerativeReplayModels, "bir": BrainInspiredReplayModels,
                                                 "generative_classifier": GenerativeClassifierModels}


def builder_class(method: str) -> type[ModelBuilder]:
    """The builder of the registered method ``method``."""
    return MODEL_BUILDERS.get(method, ModelBuilder)
