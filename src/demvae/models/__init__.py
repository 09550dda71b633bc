"""The text models: one :class:`TextVAE` class, many configurations; the two-stage :class:`DialogModel`."""

from demvae.models.build import build_dialog, build_for, build_model
from demvae.models.dialog import DialogModel, Responses, top_codes
from demvae.models.latents import DiscreteLatent, Latent, MixtureLatent
from demvae.models.textvae import TextVAE

__all__ = [
    "DialogModel", "DiscreteLatent", "Latent", "MixtureLatent", "Responses", "TextVAE", "build_dialog", "build_for",
    "build_model", "top_codes",
]
