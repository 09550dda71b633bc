"""The families a config can name (``model.family``): registry name -> class.

A family's constructor options come from the model's config by name (:func:`make_family` passes each
family the options its constructor takes, e.g. a categorical's ``z_values``), so building a family never
asks which one it is.
"""

from __future__ import annotations

import inspect
from typing import Any

from demvae.expfam.categorical import Categorical
from demvae.expfam.family import ExponentialFamily
from demvae.expfam.gaussian import Gaussian
from demvae.expfam.poisson import Poisson

FAMILIES: dict[str, type[ExponentialFamily]] = {
    "gaussian": Gaussian,
    "categorical": Categorical,
    "poisson": Poisson,
}
"""Every family of the library by its ``name``."""


def make_family(name: str, **options: Any) -> ExponentialFamily:
    """The family registered as ``name``, built with those of ``options`` its constructor takes."""
    if name not in FAMILIES:
        raise ValueError(f"unknown family {name!r}; known: {', '.join(FAMILIES)}")
    cls = FAMILIES[name]
    takes = inspect.signature(cls).parameters
    return cls(**{k: v for k, v in options.items() if k in takes})
