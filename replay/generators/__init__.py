"""VAE generators (MLP, convolutional, feature-level) taking a prior object."""
from replay.generators.likelihoods import BernoulliLikelihood, UnitGaussianLikelihood, likelihood
from replay.generators.normalization import Normalization, find_normalization
from replay.generators.vae import VAE, VAEOutput, conv_vae, mlp_vae

__all__ = ["VAE", "VAEOutput", "mlp_vae", "conv_vae", "BernoulliLikelihood", "UnitGaussianLikelihood", "likelihood",
           "Normalization", "find_normalization"]

