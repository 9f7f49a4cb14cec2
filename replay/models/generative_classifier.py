"""The generative classifier (van de Ven, Li & Tolias 2021, "Class-Incremental Learning with Generative Classifiers"):
one VAE per class, classification by Bayes' rule over importance-sampled likelihoods."""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor, nn

from replay.errors import UserInputError
from replay.generators.likelihoods import UnitGaussianLikelihood, likelihood as get_likelihood
from replay.generators.normalization import ModelsData, Normalization
from replay.generators.vae import VAE, mlp_vae
from replay.priors.base import LatentPrior, Posterior

#: how ``log p(x|z)`` is scored: with the likelihood the VAEs train with, or with a unit-variance Gaussian around
#: the decoder's mean (what the reference code does on every dataset)
SCORE_LIKELIHOODS = ("trained", "gaussian")


class GenerativeClassifier(ModelsData, nn.Module):
    """One VAE per class; ``forward(x)`` returns one score per class: the estimate of log p(x|y) (eq. 2 of the paper),
    so that softmax(scores) is p(y|x) under a uniform p(y) and Avalanche's accuracy reads the argmax unchanged.

    The estimate is importance sampling with each class's encoder as the proposal (eq. 3):

        log p(x|y) ~ logsumexp_s [log p(x|z_s) + log p(z_s) - log q(z_s|x)] - log S,   z_s ~ q(z|x, y),

    S = ``samples`` in evaluation. Classes not trained yet score -inf. In training mode (the strategy's forward pass
    on its own batch, whose scores only feed Avalanche's training metrics) the estimate takes one sample, without
    gradients, over the classes being trained (``active``). The draw and log p(z) - log q(z|x) come from each VAE's
    prior (``LatentPrior.importance_sample``): priors without a density are refused when the model is built. All VAEs exist from the start (their parameters
    are in the strategy's optimiser from the first experience; a VAE gets gradients only while its class trains).

    Args:
        input_shape: shape of one image, without the batch dimension.
        n_classes: number of classes (one VAE each).
        make_prior: builds one VAE's prior (a fresh object per call; its class slot 0 is the VAE's class).
        hidden: widths of each VAE's encoder (the decoder mirrors them).
        samples: importance samples S per image and class in evaluation (>= 1).
        score_likelihood: ``"trained"`` (log p(x|z) of the training likelihood) or ``"gaussian"`` (unit-variance
            Gaussian around the decoder's mean, the reference code's scoring).
        likelihood: ``"bernoulli"`` or ``"gaussian"`` (default: Bernoulli on images, Gaussian on features).
        feature_extractor: frozen conv layers (``out_features`` attribute): the VAEs model their features.
        normalization: how the images were normalised (``Normalization(mean, std)``), or None if the pixels are in
            [0, 1]; not with a feature extractor.
        max_rows: the most rows (images x samples) one VAE scores in one call: bounds the scoring's memory; the
            default keeps a chunk's decoder outputs in a CPU's cache (a GPU scores faster with more).
    """

    def __init__(self, input_shape: Sequence[int], n_classes: int, make_prior: Callable[[], LatentPrior],
                 hidden: Sequence[int] = (85, 85), samples: int = 100, score_likelihood: str = "trained",
                 likelihood: Optional[str] = None, feature_extractor: Optional[nn.Module] = None,
                 normalization: Optional[Normalization] = None, max_rows: int = 4096):
        super().__init__()
        if score_likelihood not in SCORE_LIKELIHOODS:
            raise UserInputError(f"score_likelihood must be one of {', '.join(SCORE_LIKELIHOODS)}, got {score_likelihood!r}")
        if samples < 1 or max_rows < 1:
            raise UserInputError(f"samples and max_rows must be at least 1, got {samples} and {max_rows}")
        if feature_extractor is not None and normalization is not None:
            raise UserInputError("GenerativeClassifier with a feature_extractor models features, not pixels: drop normalization")
        self.feature_extractor = feature_extractor
        self.input_shape = tuple(input_shape)
        self.replay_shape = (feature_extractor.out_features,) if feature_extractor is not None else self.input_shape
        self.n_classes, self.samples, self.max_rows = n_classes, samples, max_rows
        self.score_likelihood = score_likelihood
        likelihood = likelihood or ("gaussian" if feature_extractor is not None else "bernoulli")
        self.likelihood = get_likelihood(likelihood)
        self.vaes = nn.ModuleList(self._vae(make_prior(), hidden, likelihood) for _ in range(n_classes))
        self.register_buffer("trained", torch.zeros(n_classes, dtype=torch.bool))
        self.active: list[int] = []
        self.normalization: Optional[Normalization] = None
        self.use_normalization(normalization)

    def _vae(self, prior: LatentPrior, hidden: Sequence[int], likelihood: str) -> VAE:
        type(prior).require_density()
        if prior.n_classes:
            prior.observe_classes([0])  # the VAE's one class is slot 0 (a prior with more slots leaves them unseen)
        return mlp_vae(self.replay_shape, prior, hidden, likelihood=likelihood)

    @property
    def data_shape(self) -> tuple[int, ...]:
        return self.replay_shape

    def check_data(self, x: Tensor, where: str) -> None:
        """The shape (the model's input shape or its feature space), then the likelihood's support."""
        if tuple(x.shape[1:]) not in (self.input_shape, self.replay_shape):
            raise UserInputError(f"{where}: the data's samples have shape {tuple(x.shape[1:])}, but GenerativeClassifier "
                                 f"was built for input_shape={self.input_shape}: build it with the data's shape")
        super().check_data(x, where)

    def to_replay_space(self, x: Tensor) -> Tensor:
        """Images -> what the VAEs model (frozen conv features, or the images); features pass through."""
        if self.feature_extractor is None or tuple(x.shape[1:]) == self.replay_shape:
            return x
        with torch.no_grad():
            return self.feature_extractor(x)

    # -- one VAE's loss --------------------------------------------------------------------------------------
    def vae_loss(self, c: int, x: Tensor) -> dict[str, Tensor]:
        """Class ``c``'s VAE on its batch ``x`` (replay space): ``recon`` (negative log-likelihood averaged over the
        input units) and ``reg`` (the prior's regulariser divided by the number of input units), batch means.

        Args:
            c: the class.
            x: a batch of class ``c`` in replay space.
        """
        vae = self.vaes[c]
        # a prior with one slot is told its class (GMM: the closed-form KL to its mode); with more (InteL's sectors)
        # nothing, which leaves the plain KL of the intermediary
        labels = torch.zeros(len(x), dtype=torch.long, device=x.device) if vae.prior.n_classes == 1 else None
        terms = vae.loss_terms(self.data_to_unit(x), labels=labels)
        return {"recon": terms["recon"].mean(), "reg": terms["reg"].mean() / vae.n_inputs}

    # -- scoring ---------------------------------------------------------------------------------------------
    def log_likelihood(self, x: Tensor, classes: Sequence[int], samples: int) -> Tensor:
        """Importance-sampled log p(x|y) for each of ``classes``, [batch, len(classes)] (eq. 3 above).

        Each class's VAE scores all images and samples of a chunk in one batched call (chunks of at most
        ``max_rows`` images x samples; with S above ``max_rows``, one image per chunk and its samples in blocks).

        Args:
            x: images or features.
            classes: the classes to score.
            samples: importance samples per image (S).
        """
        unit = self.data_to_unit(self.to_replay_space(x)).flatten(1).float()
        per_chunk = max(1, self.max_rows // samples)
        scores = unit.new_empty(len(unit), len(classes))
        for start in range(0, len(unit), per_chunk):
            chunk = unit[start:start + per_chunk]
            for column, c in enumerate(classes):
                scores[start:start + len(chunk), column] = self._class_log_likelihood(self.vaes[c], chunk, samples)
        return scores

    def _class_log_likelihood(self, vae: VAE, unit: Tensor, samples: int) -> Tensor:
        """One class's estimate for a chunk of images; with more samples than ``max_rows``, the samples are drawn in
        blocks of at most ``max_rows`` and their log-sum-exps combined."""
        n = len(unit)
        posterior = vae.encode(unit.view(n, *self.replay_shape))
        block = max(1, self.max_rows // n)
        sums = [self._log_weight_sum(vae, posterior, unit, min(block, samples - done))
                for done in range(0, samples, block)]
        return torch.logsumexp(torch.stack(sums), dim=0) - math.log(samples)

    def _log_weight_sum(self, vae: VAE, posterior: Posterior, unit: Tensor, samples: int) -> Tensor:
        """logsumexp over ``samples`` draws of log p(x|z) + log p(z) - log q(z|x), per image of the chunk."""
        n = len(unit)
        repeated = posterior.rows(torch.arange(n, device=unit.device).repeat(samples))  # sample-major: [S * n]
        z, log_ratio = vae.prior.importance_sample(repeated)
        output = vae.decode_output(z).view(samples, n, -1)
        if self.score_likelihood == "gaussian":
            log_px = UnitGaussianLikelihood.log_prob_samples(vae.likelihood.mean(output), unit)
        else:
            log_px = vae.likelihood.log_prob_samples(output, unit)
        return torch.logsumexp(log_px + log_ratio.view(samples, n), dim=0)

    def forward(self, x: Tensor) -> Tensor:
        """Scores [batch, n_classes]: log p(x|y) of the trained classes (S = ``samples``), -inf for the others; in
        training mode one sample over the ``active`` classes, without gradients."""
        if self.training:
            classes, samples = list(self.active), 1
        else:
            classes, samples = self.trained.nonzero().flatten().tolist(), self.samples
        scores = torch.full((len(x), self.n_classes), float("-inf"), device=x.device)
        if classes:
            with torch.no_grad():
                scores[:, classes] = self.log_likelihood(x, classes, samples)
        return scores
