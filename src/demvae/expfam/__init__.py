"""Exponential families and the DEM-VAE mixture prior built on them."""

from demvae.expfam.categorical import Categorical
from demvae.expfam.family import AutogradFamily, ExponentialFamily
from demvae.expfam.gaussian import Gaussian
from demvae.expfam.mixture import MixturePrior
from demvae.expfam.poisson import Poisson

__all__ = ["AutogradFamily", "Categorical", "ExponentialFamily", "Gaussian", "MixturePrior", "Poisson"]
