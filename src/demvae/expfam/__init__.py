"""Exponential families, their registry, and the DEM-VAE mixture prior built on them."""

from demvae.expfam.categorical import Categorical
from demvae.expfam.family import AutogradFamily, ExponentialFamily
from demvae.expfam.gaussian import Gaussian
from demvae.expfam.mixture import MixturePrior
from demvae.expfam.poisson import Poisson
from demvae.expfam.registry import FAMILIES, make_family

__all__ = ["FAMILIES", "AutogradFamily", "Categorical", "ExponentialFamily", "Gaussian", "MixturePrior", "Poisson",
           "make_family"]
