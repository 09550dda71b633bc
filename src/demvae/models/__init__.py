"""The text models: one :class:`TextVAE` class, many configurations."""

from demvae.models.build import PRESETS, build_model, preset
from demvae.models.latents import DiscreteLatent, Latent, MixtureLatent
from demvae.models.textvae import TextVAE

__all__ = ["PRESETS", "DiscreteLatent", "Latent", "MixtureLatent", "TextVAE", "build_model", "preset"]
