"""demvae: dispersed exponential-family mixture VAEs for interpretable text generation."""

from demvae._version import __version__


def load(run_dir, device: str = "cpu"):
    """Load a trained run folder and return its model, ready (eval mode): a :class:`~demvae.models.TextVAE`,
    or for a dialog run its :class:`~demvae.models.DialogModel`."""
    from demvae.training.run_folder import load_run

    return load_run(run_dir, device=device).model


__all__ = ["__version__", "load"]
