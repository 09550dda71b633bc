"""The text models: one :class:`TextVAE` class, many configurations."""

from demvae.models.build import build_for, build_model
from demvae.models.latents import DiscreteLatent, Latent, MixtureLatent
from demvae.models.textvae import TextVAE

__all__ = ["DiscreteLatent", "Latent", "MixtureLatent", "TextVAE", "build_for", "build_model"]
