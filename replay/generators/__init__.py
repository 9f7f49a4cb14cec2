"""VAE generators (MLP, convolutional, feature-level) taking a prior object."""
from replay.generators.likelihoods import Bernoulli, UnitGaussian, likelihood
from replay.generators.vae import VAE, conv_vae, feature_vae, mlp_vae

__all__ = ["VAE", "mlp_vae", "conv_vae", "feature_vae", "Bernoulli", "UnitGaussian", "likelihood"]
