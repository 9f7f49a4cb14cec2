"""VAE generators (MLP, convolutional, feature-level) taking a prior object."""
from replay.generators.likelihoods import Bernoulli, UnitGaussian, likelihood
from replay.generators.normalization import Normalization, find_normalization
from replay.generators.vae import VAE, VAEOutput, conv_vae, mlp_vae
from replay.generators.avalanche import AvalancheGenerator, PriorHooks, vae_training

__all__ = ["VAE", "VAEOutput", "mlp_vae", "conv_vae", "Bernoulli", "UnitGaussian", "likelihood",
           "Normalization", "find_normalization", "AvalancheGenerator", "PriorHooks", "vae_training"]

