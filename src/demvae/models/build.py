"""Build a :class:`TextVAE` from a :class:`ModelConfig`, and the named presets of the paper's models.

A preset is only a set of config values: every model below is the same ``TextVAE`` class.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from demvae.config import ModelConfig
from demvae.errors import ConfigError
from demvae.expfam import Categorical, Gaussian
from demvae.models.latents import DiscreteLatent, Latent, MixtureLatent
from demvae.models.textvae import TextVAE
from demvae.nn.decoders import LatentDecoder
from demvae.nn.encoders import SentenceEncoder

LATENTS = ("none", "gaussian", "discrete", "semi", "gm", "cm")

_GAUSSIAN = {"model": {"latent": "gaussian", "z_dim": 40, "share_embedding": True, "tie_output": False}}
_DISCRETE = {"model": {"latent": "discrete", "share_embedding": True}, "train": {"n_samples": 1}}
_SEMI = {"model": {"latent": "semi", "z_dim": 40, "share_embedding": True}}
_CM = {
    "model": {
        "latent": "cm", "n_codes": 1, "code_size": 30, "z_dim": 30, "z_values": 8,
        "embed_dim": 200, "bidirectional": False, "share_embedding": True, "tie_output": False,
        "concat_latent": False, "supervise": {"emotion": 0, "act": 1},
    },
}

PRESETS: dict[str, dict[str, Any]] = {
    "rnnlm": {"model": {"latent": "none", "tie_output": False}, "train": {"n_samples": 1, "select_metric": "rec"}},
    "ae": {**_GAUSSIAN, "model": {**_GAUSSIAN["model"], "deterministic": True},
           "objective": {"kl_weight": 0.0}, "train": {"n_samples": 1}},
    "vae": _GAUSSIAN,
    "dae": {**_DISCRETE, "objective": {"kl_weight": 0.0}},
    "dvae": _DISCRETE,
    "di-vae": {**_DISCRETE, "objective": {"mi_weight": 1.0, "anneal": "none"}},
    "semi-vae": _SEMI,
    "semi-vae-mi": {**_SEMI, "objective": {"mi_weight": 1.0}},
    "gm-vae": {"model": {"latent": "gm"}, "objective": {"beta": 0.0}},
    "gm-vae-mi": {"model": {"latent": "gm"}, "objective": {"beta": 0.0, "mi_weight": 1.0}},
    "dgm-vae": {"model": {"latent": "gm"}, "objective": {"beta": 0.8}},
    "dgm-vae-mi": {"model": {"latent": "gm"}, "objective": {"beta": 0.8, "mi_weight": 1.0}},
    "gm-vae-fb": {"model": {"latent": "gm"}, "objective": {"free_bits_c": 5.0, "free_bits_z": 10.0}},
    "beta-gm-vae": {"model": {"latent": "gm"}, "objective": {"kl_weight": 0.5}},
    "gm-vae-aggressive": {"model": {"latent": "gm"}, "train": {"aggressive": True}},
    "cm-vae": {**_CM, "objective": {"beta": 0.0}},
    "dcm-vae": {**_CM, "objective": {"beta": 0.4}},
    "dvae-sup": {
        "model": {**_CM["model"], "latent": "discrete", "n_codes": 30, "code_size": 8},
        "train": {"n_samples": 1},
    },
}
"""Model name -> config values (merged over the defaults, under the experiment's own values)."""


def preset(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(PRESETS)}")
    return PRESETS[name]


def _latents(cfg: ModelConfig, in_dim: int) -> list[Latent]:
    concat, temp = cfg.concat_latent, cfg.temperature
    standard_normal = torch.zeros(2)  # (mean, log-variance) of N(0, 1)

    def gaussian(concat_input: bool) -> MixtureLatent:
        return MixtureLatent(Gaussian(), in_dim, 1, 1, cfg.z_dim, learn_prior=False,
                             prior_init=standard_normal, deterministic=cfg.deterministic,
                             concat_input=concat_input)

    if cfg.latent == "none":
        return []
    if cfg.latent == "gaussian":
        return [gaussian(concat)]
    if cfg.latent == "discrete":
        return [DiscreteLatent(in_dim, cfg.n_codes, cfg.code_size, concat, temp)]
    if cfg.latent == "semi":  # the decoder's h0 sees [c; z], its inputs only z (as the original)
        return [DiscreteLatent(in_dim, cfg.n_codes, cfg.code_size, False, temp), gaussian(concat)]
    if cfg.latent == "gm":
        return [MixtureLatent(Gaussian(), in_dim, cfg.n_codes, cfg.code_size, cfg.z_dim, concat_input=concat)]
    if cfg.latent == "cm":
        return [MixtureLatent(Categorical(cfg.z_values), in_dim, cfg.n_codes, cfg.code_size, cfg.z_dim,
                              concat_input=concat, temperature=temp)]
    raise ConfigError(f"unknown latent {cfg.latent!r}; valid: {', '.join(LATENTS)}")


def build_model(cfg: ModelConfig, vocab_size: int, bos_id: int, eos_id: int, pad_id: int = 0,
                max_len: int = 40) -> TextVAE:
    dec_emb = nn.Embedding(vocab_size, cfg.embed_dim, padding_idx=pad_id)
    nn.init.uniform_(dec_emb.weight, -0.1, 0.1)
    with torch.no_grad():
        dec_emb.weight[pad_id].zero_()
    encoder = None
    if cfg.latent != "none":
        enc_emb = dec_emb if cfg.share_embedding else nn.Embedding(vocab_size, cfg.embed_dim, padding_idx=pad_id)
        encoder = SentenceEncoder(enc_emb, cfg.hidden_size, cfg.bidirectional)
    latents = _latents(cfg, encoder.output_size if encoder else 0)
    init_dim = sum(b.feature_dim for b in latents)
    input_dim = sum(b.feature_dim for b in latents if b.concat_input)
    decoder = LatentDecoder(dec_emb, cfg.hidden_size, init_dim, input_dim, cfg.dropout, cfg.tie_output)
    if cfg.supervise and cfg.latent not in ("cm", "discrete", "semi"):
        raise ConfigError("model.supervise needs a categorical latent (latent: cm, discrete or semi)")
    return TextVAE(encoder, latents, decoder, bos_id, eos_id, cfg.supervise, max_len)
