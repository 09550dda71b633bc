r"""One text model for every row of the paper's tables: encoder → latent blocks → decoder.

``TextVAE`` with no latent block is the RNN-LM; every other model differs only in its blocks and in
the objective's weights (:mod:`demvae.objectives`). The interface the trainer and the evaluation use:

* ``forward(batch, n_samples, noise)``   the batch's :class:`~demvae.terms.Terms` (``rec``, ``kl_c``, ...)
* ``log_weights(batch, n)``       importance weights ``log p(x, latent) − log q(latent | x)`` [B, n]
* ``sample_prior(n, codes)``      token ids generated from the prior (optionally for chosen codes)
* ``reconstruct(batch)``          greedy decoding from the posterior mode
* ``code_probs(batch)``           ``q(c|x)`` [B, M, K] of the model's discrete code
* ``predict_labels(batch)``       the supervised variables' most probable values
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import cast

import torch
from torch import Tensor, nn

from demvae.data.types import Batch
from demvae.distributed import Noise
from demvae.models.latents import Latent
from demvae.nn.decoders import LatentDecoder
from demvae.nn.decoding import Decoding
from demvae.nn.encoders import SentenceEncoder
from demvae.terms import Terms


class TextVAE(nn.Module):
    def __init__(
        self,
        encoder: SentenceEncoder | None,
        latents: list[Latent],
        decoder: LatentDecoder,
        decoding: Decoding,
        supervise: dict[str, int] | None = None,
    ):
        super().__init__()
        self.encoder = encoder
        # typed as the blocks it holds (nn.ModuleList yields plain Modules)
        self.latents = cast(Sequence[Latent], nn.ModuleList(latents))
        self.decoder = decoder
        self.decoding = decoding
        """How the model writes a sentence (greedy); generating callers vary it with ``dataclasses.replace``."""
        self.supervise = dict(supervise or {})
        """Label name -> index of the categorical variable it supervises (in the first supervisable block)."""

    # --- helpers ---
    @property
    def has_latent(self) -> bool:
        return len(self.latents) > 0

    @property
    def device(self) -> torch.device:
        return self.decoder.embedding.weight.device

    def encode(self, batch: Batch) -> Tensor:
        if self.encoder is None:
            raise ValueError("a model without a latent variable has no encoder")
        assert batch.host_lengths is not None  # Batch.__post_init__ sets it
        return self.encoder(batch.tokens, batch.host_lengths)

    def decoder_inputs(self, features: list[Tensor]) -> tuple[Tensor | None, Tensor | None]:
        """Per-block features [R, F_i] -> (h0 features, per-step input features)."""
        if not features:
            return None, None
        init = torch.cat(features, -1)
        inputs = [f for f, block in zip(features, self.latents) if block.concat_latent]
        return init, (torch.cat(inputs, -1) if inputs else None)

    # --- training terms ---
    def forward(self, batch: Batch, n_samples: int = 1, noise: Noise | None = None) -> Terms:
        """The batch's terms; ``rec`` = −(1/S) Σ_s log p(x | z_s) over S posterior samples, whose noise comes
        from ``noise`` (default: the batch's own; a data-parallel step passes its rows of the global batch's)."""
        assert batch.host_lengths is not None  # Batch.__post_init__ sets it
        if not self.has_latent:
            return Terms(rec=-self.decoder.log_likelihood(batch.tokens, batch.host_lengths))
        h = self.encode(batch)
        terms, features = Terms(), []
        for block in self.latents:
            f, t = block(h, n_samples, noise)
            features.append(f.flatten(0, 1))  # [B·S, F]: sentence b's S samples are rows b·S … b·S+S−1
            terms = terms + t
        init, inputs = self.decoder_inputs(features)
        log_px = self.decoder.log_likelihood(batch.tokens, batch.host_lengths, init, inputs, n_samples)
        terms.rec = -log_px.view(-1, n_samples).mean(1)
        if self.supervise:
            terms.supervision = self._supervision(h, batch)
        return terms

    def _supervised_block(self) -> Latent:
        for block in self.latents:
            if block.supervisable:
                return block
        raise ValueError("supervision needs a categorical latent variable")

    def _supervision(self, h: Tensor, batch: Batch) -> Tensor:
        """Σ_labels −log q(v_i = label | x) per example (examples without the label add 0)."""
        block = self._supervised_block()
        total = torch.zeros(h.shape[0], device=h.device)
        for name, variable in self.supervise.items():
            labels = batch.labels[name]
            log_q = block.label_log_prob(h, variable, labels.clamp_min(0))
            total = total - log_q * (labels >= 0)
        return total

    # --- evaluation interface ---
    @torch.no_grad()
    def log_weights(self, batch: Batch, n: int, chunk_rows: int = 4096) -> Tensor:
        """``log p(x | latent) + log p(latent) − log q(latent | x)`` for n posterior samples: [B, n]
        (float64). For the RNN-LM it is the exact ``log p(x)`` repeated. The encoder runs once and the
        n samples are drawn at once; the decoder takes at most ``chunk_rows`` rows (sentence × sample)
        per call, sentences of similar lengths together."""
        assert batch.host_lengths is not None  # Batch.__post_init__ sets it
        if not self.has_latent:
            return self.decoder.log_likelihood(batch.tokens, batch.host_lengths).double().unsqueeze(1).expand(-1, n)
        h = self.encode(batch)
        features: list[Tensor] = []
        log_ratio: Tensor | float = 0.0
        for block in self.latents:
            f, lr = block.importance_sample(h, n)
            features.append(f)
            log_ratio = log_ratio + lr
        order = torch.argsort(batch.host_lengths, stable=True)
        per_call, samples = max(1, chunk_rows // n), min(n, chunk_rows)  # sentences, samples per call
        log_px = torch.empty(batch.size, n, dtype=torch.float64, device=h.device)
        for start in range(0, batch.size, per_call):
            host = order[start:start + per_call]
            idx = host.to(h.device)
            for first in range(0, n, samples):
                k = min(samples, n - first)
                sl = slice(first, first + k)
                init, inputs = self.decoder_inputs([f[idx, sl].flatten(0, 1) for f in features])
                log_px[idx, sl] = self.decoder.log_likelihood(
                    batch.tokens[idx], batch.host_lengths[host], init, inputs, k).view(-1, k).double()
        return log_px + log_ratio  # float64, log_px's dtype

    @torch.no_grad()
    def code_probs(self, batch: Batch) -> Tensor | None:
        if not self.has_latent:
            return None
        h = self.encode(batch)
        for block in self.latents:
            q = block.code_probs(h)
            if q is not None:
                return q
        return None

    @torch.no_grad()
    def predict_labels(self, batch: Batch) -> dict[str, Tensor]:
        """The most probable value of every supervised variable: ``{label name: [B]}``."""
        h = self.encode(batch)
        block = self._supervised_block()
        return {name: block.predict_label(h, variable) for name, variable in self.supervise.items()}

    @torch.no_grad()
    def reconstruct(self, batch: Batch, greedy: bool = True) -> Tensor:
        """Decode from the posterior mode (mean for Gaussians, argmax for discrete codes)."""
        if not self.has_latent:
            raise ValueError("a model without a latent variable cannot reconstruct")
        h = self.encode(batch)
        init, inputs = self.decoder_inputs([b.mode_features(h) for b in self.latents])
        return self.decoder.generate(init, inputs, batch.size, replace(self.decoding, greedy=greedy))

    @torch.no_grad()
    def sample_prior(self, n: int, codes: Tensor | None = None, greedy: bool | None = None) -> Tensor:
        """n sentences from the prior; ``codes`` [n, M] fixes the discrete code of the first block
        that has one. Decoding is greedy for latent models (as the paper) and sampled for the RNN-LM."""
        if greedy is None:
            greedy = self.has_latent
        features = []
        for block in self.latents:
            block_codes = codes.to(self.device) if codes is not None and block.has_code else None
            features.append(block.prior_features(n, block_codes).to(self.device))
        init, inputs = self.decoder_inputs(features)
        return self.decoder.generate(init, inputs, n, replace(self.decoding, greedy=greedy))

    def code_shape(self) -> tuple[int, int] | None:
        """(M, K) of the model's discrete code, if it has one."""
        for block in self.latents:
            if block.has_code:
                return block.n_variables, block.n_values
        return None
