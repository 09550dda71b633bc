"""Build a :class:`TextVAE` from a :class:`ModelConfig`: which latent blocks each ``model.latent``
means. The paper's models are presets of config values (``configs/presets.yaml``), not classes. A run
whose ``dialog`` section is enabled gets a :class:`DialogModel` around that TextVAE (its stage 1)."""

from __future__ import annotations

import torch
from torch import nn

from demvae.config import DialogConfig, ModelConfig
from demvae.data.vocab import Vocab
from demvae.errors import ConfigError
from demvae.expfam import Gaussian, make_family
from demvae.models.dialog import DialogModel
from demvae.models.latents import DiscreteLatent, Latent, MixtureLatent
from demvae.models.textvae import TextVAE
from demvae.nn.attention_decoder import AttentionDecoder
from demvae.nn.context import ContextEncoder, PolicyNetwork, UtteranceEncoder
from demvae.nn.decoders import LatentDecoder
from demvae.nn.decoding import Decoding
from demvae.nn.encoders import SentenceEncoder


def _latents(cfg: ModelConfig, in_dim: int) -> list[Latent]:
    def standard_normal(concat_latent: bool) -> MixtureLatent:
        """The VAE's z: one fixed N(0, I) component, i.e. a mixture with M = K = 1."""
        return MixtureLatent(Gaussian(), in_dim, 1, 1, cfg.gaussian_dim, learn_prior=False,
                             prior_init=torch.zeros(2), deterministic=cfg.deterministic,
                             concat_latent=concat_latent, z_head=cfg.z_head, code_head=cfg.code_head)

    def discrete(concat_latent: bool) -> DiscreteLatent:
        return DiscreteLatent(in_dim, cfg.n_variables, cfg.n_values, concat_latent, cfg.temperature)

    if cfg.decode_code and cfg.mixture_family is None:
        raise ConfigError(f"model.decode_code needs a mixture latent (gm, cm or mixture), not {cfg.latent!r}")
    if cfg.latent == "none":
        return []
    if cfg.latent == "gaussian":
        return [standard_normal(cfg.concat_latent)]
    if cfg.latent == "discrete":
        return [discrete(cfg.concat_latent)]
    if cfg.latent == "semi":  # the decoder's h0 sees [c; z], its inputs only z (as the original)
        return [discrete(False), standard_normal(cfg.concat_latent)]
    if cfg.mixture_family is not None:  # gm, cm, mixture: the family from the registry, with its config options
        family = make_family(cfg.mixture_family, z_values=cfg.z_values)
        return [MixtureLatent(family, in_dim, cfg.n_variables, cfg.n_values, cfg.n_units,
                              concat_latent=cfg.concat_latent, temperature=cfg.temperature,
                              decode_code=cfg.decode_code, z_head=cfg.z_head, code_head=cfg.code_head)]
    raise ConfigError(f"unknown latent {cfg.latent!r}")


def code_shape(cfg: ModelConfig) -> tuple[int, int] | None:
    """(M, K) of the discrete code a config's model has (None: none), as :meth:`TextVAE.code_shape` gives it; only
    the latent blocks are built, on a 1-wide input."""
    return next(((b.n_variables, b.n_values) for b in _latents(cfg, 1) if b.has_code), None)


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
    input_dim = sum(b.feature_dim for b in latents if b.concat_latent)
    decoder = LatentDecoder(dec_emb, cfg.hidden_size, init_dim, input_dim, cfg.dropout, cfg.tie_output,
                           recurrence=cfg.recurrence)
    if cfg.supervise and not any(b.supervisable for b in latents):
        raise ConfigError("model.supervise needs a categorical latent variable (latent: cm, discrete, semi or a "
                          "mixture of a discrete family)")
    return TextVAE(encoder, latents, decoder, Decoding(bos_id, eos_id, max_len, pad_id=pad_id), cfg.supervise)


def build_dialog(stage1: TextVAE, model: ModelConfig, dialog: DialogConfig, vocab_size: int,
                 pad_id: int = 0) -> DialogModel:
    """Stage 2 around a (frozen) stage-1 TextVAE: its own Emb(V, embed_dim) shared by the utterance encoder and
    the attention decoder, both initialised U(±0.1) as the original's decoder."""
    embedding = nn.Embedding(vocab_size, model.embed_dim, padding_idx=pad_id)
    utterance = UtteranceEncoder(embedding, dialog.utterance_size)
    context = ContextEncoder(utterance, dialog.context_size)
    block = stage1.latents[0]
    policy = PolicyNetwork(dialog.context_size, block.n_variables, block.n_values, dialog.policy_size)
    decoder = AttentionDecoder(embedding, dialog.context_size, dialog.context_size, dialog.attn_size, model.dropout)
    for p in decoder.parameters():  # the embedding included
        nn.init.uniform_(p, -0.1, 0.1)
    with torch.no_grad():
        embedding.weight[pad_id].zero_()
    return DialogModel(stage1, context, policy, decoder, posterior_sample=dialog.posterior_latent == "sample")


def build_for(cfg, vocab: Vocab) -> TextVAE | DialogModel:
    """The model of a :class:`~demvae.config.RunConfig` for a vocabulary: a TextVAE, or with ``dialog.enabled``
    the dialog model around one."""
    stage1 = build_model(cfg.model, len(vocab), vocab.bos_id, vocab.eos_id, vocab.pad_id, cfg.data.max_len)
    if not cfg.dialog.enabled:
        return stage1
    return build_dialog(stage1, cfg.model, cfg.dialog, len(vocab), vocab.pad_id)
