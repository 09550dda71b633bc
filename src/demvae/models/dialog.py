r"""The two-stage dialog model of the paper's SMD experiment (§4.4; the original's ``AeED_GMM`` / ``AeED``).

Stage 1 is a :class:`~demvae.models.TextVAE` trained on the responses alone (DGM-VAE + Lmi or DI-VAE); its code
``c`` (M variables of K values) is what an action such as "request-address" becomes. Stage 2, this module, keeps
stage 1 frozen and learns to talk through that code:

* a hierarchical context encoder (utterance bi-GRU + attention pooling, then a GRU over the turns) gives the
  attention memory and ``c_last``;
* a policy ``p(c | context)`` is trained towards the stage-1 code of the true response, ``ĉ = argmax q(c|r)``;
* an attention decoder writes the response from ``h_0 = Linear(latent) + c_last``, where ``latent`` is the code's
  latent: for DGM-VAE ``z`` (``z ~ q(z|r)`` in training, detached; ``z ~ p(z|c)`` or the component's mean when
  generating), for DI-VAE the one-hot code itself;
* the original's attribute loss reads the decoder's soft output distributions (expected stage-1 embeddings) with
  the frozen stage-1 encoder and ``q(c|·)`` and asks for ``ĉ`` back.

Every stage-1 parameter has ``requires_grad = False`` and stage 1 stays in eval mode whatever ``train()`` says, so
stage 2 never changes it (gradients of the attribute loss pass through it to the decoder).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from demvae.config import CODE_CHOICES, DECODINGS, Z_CHOICES
from demvae.data.dialog import DialogBatch
from demvae.data.types import Batch
from demvae.models.latents import Latent
from demvae.models.textvae import TextVAE
from demvae.nn.attention_decoder import AttentionDecoder
from demvae.nn.context import ContextEncoder, ContextEncoding, PolicyNetwork
from demvae.terms import DialogTerms


@dataclass
class Responses:
    """Generated responses and what they were generated from."""

    ids: Tensor
    """[B, ≤ max_len − 1] token ids (``</s>`` then ``<pad>``)."""
    codes: Tensor
    """[B, M] the code of each response."""
    policy: Tensor
    """[B, M, K] the policy's ``p(c_i | context)``."""


class DialogModel(nn.Module):
    def __init__(
        self,
        stage1: TextVAE,
        context: ContextEncoder,
        policy: PolicyNetwork,
        decoder: AttentionDecoder,
        posterior_sample: bool = True,
    ):
        super().__init__()
        blocks = [b for b in stage1.latents if b.has_code]
        if len(stage1.latents) != 1 or not blocks:
            raise ValueError("a dialog model builds on a stage-1 model with exactly one latent block that has a code")
        if context.hidden_size != decoder.hidden_size:
            raise ValueError("h0 = Linear(latent) + c_last needs the context and decoder sizes to agree")
        self.stage1 = stage1
        self.context = context
        self.policy = policy
        self.init = nn.Linear(blocks[0].feature_dim, decoder.hidden_size)
        self.decoder = decoder
        self.posterior_sample = posterior_sample
        """Decoder input in training: a draw from q(z|r) (DGM-VAE) or the posterior mode (DI-VAE: argmax code)."""
        for p in self.stage1.parameters():
            p.requires_grad_(False)
        self.stage1.eval()

    # --- helpers ---
    @property
    def code_block(self) -> Latent:
        """The stage-1 latent block whose code the policy predicts."""
        return self.stage1.latents[0]

    @property
    def device(self) -> torch.device:
        return self.decoder.embedding.weight.device

    def train(self, mode: bool = True) -> DialogModel:
        super().train(mode)
        self.stage1.eval()  # frozen: no dropout, hard Gumbel samples
        return self

    # what evaluation asks of every model it loads: a latent (stage 1's code block), no supervised label of its own
    has_latent: bool = True
    supervise: dict[str, int] = {}

    def code_shape(self) -> tuple[int, int]:
        """(M, K) of the code."""
        return self.code_block.n_variables, self.code_block.n_values

    @torch.no_grad()
    def code_probs(self, batch: Batch) -> Tensor:
        """Stage 1's ``q(c|r)`` of the batch's responses (the sentences of any batch): [B, M, K]."""
        q = self.stage1.code_probs(batch)
        assert q is not None  # stage 1's one block has a code (checked in __init__)
        return q

    def encode_context(self, batch: DialogBatch) -> ContextEncoding:
        return self.context(batch.context, batch.context_lengths, batch.n_turns,
                            batch.host_context_lengths, batch.host_n_turns)

    def _initial_state(self, latent: Tensor, encoding: ContextEncoding) -> Tensor:
        """h_0 = Linear(latent) + c_last: [B, H]."""
        return self.init(latent) + encoding.last

    # --- training terms ---
    def forward(self, batch: DialogBatch) -> DialogTerms:
        with torch.no_grad():  # stage 1 gives the targets and the decoder's latent input, both constants here
            h = self.stage1.encode(batch)
            q = self.code_block.code_probs(h)
            assert q is not None  # the code block has a code
            target = q.argmax(-1)  # ĉ [B, M]
            latent = self.code_block.posterior_features(h, self.posterior_sample)  # [B, F]
        encoding = self.encode_context(batch)
        policy_logits = self.policy(encoding.last)  # [B, M, K]
        out = self.decoder.outputs(batch.tokens, self._initial_state(latent, encoding), encoding.outputs,
                                   encoding.mask)
        logits = self.decoder.out(out)  # [B, T − 1, V]: every position, the attribute loss reads them all
        targets = batch.tokens[:, 1:]
        pad = self.decoder.embedding.padding_idx
        assert pad is not None  # build_dialog's embedding has one
        nll = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=pad, reduction="none").sum(1)  # [B]
        log_q_soft = self._attribute_log_probs(logits, batch)  # [B, M, K]
        log_pi = torch.log_softmax(policy_logits.float(), -1)
        pick = target.unsqueeze(-1)
        return DialogTerms(
            nll=nll,
            n_tokens=(batch.lengths - 1).to(nll.dtype),
            policy=-log_pi.gather(-1, pick).squeeze(-1),
            attribute=-log_q_soft.gather(-1, pick).squeeze(-1),
            policy_error=(policy_logits.argmax(-1) != target).float(),
            attribute_error=(log_q_soft.argmax(-1) != target).float(),
        )

    def _attribute_log_probs(self, logits: Tensor, batch: DialogBatch) -> Tensor:
        """The frozen stage-1 ``log q(c | ·)`` of the decoder's soft responses: ``<s>`` then, at every predicted
        position, the stage-1 embeddings weighted by the output distribution; read over the response's own
        length (as the stage-1 encoder reads the response). [B, M, K]"""
        assert self.stage1.encoder is not None and batch.host_lengths is not None  # stage 1 has a latent; Batch sets it
        embedding = self.stage1.encoder.embedding.weight  # [V, E]
        soft = torch.softmax(logits.float(), -1).to(embedding.dtype) @ embedding  # [B, T − 1, E]
        bos = embedding[self.stage1.decoding.bos_id].expand(soft.shape[0], 1, -1)
        h = self.stage1.encoder.encode_embedded(torch.cat((bos, soft), 1), batch.host_lengths)
        log_q = self.code_block.code_log_probs(h)
        assert log_q is not None  # the code block has a code
        return log_q

    # --- generation ---
    @torch.no_grad()
    def policy_probs(self, batch: DialogBatch) -> Tensor:
        """``p(c_i | context)``: [B, M, K]."""
        return torch.softmax(self.policy(self.encode_context(batch).last).float(), -1)

    @torch.no_grad()
    def respond(
        self,
        batch: DialogBatch,
        codes: Tensor | None = None,
        code_choice: str = "argmax",
        z_choice: str = "sample",
        decoding: str = "greedy",
        beam_size: int = 5,
        length_penalty: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> Responses:
        """One response per context of ``batch``.

        The code is ``codes`` [B, M] if given, else the policy's argmax per variable (``code_choice="argmax"``)
        or a draw from it (``"sample"``); the decoder's latent is a draw from ``p(z|c)`` (``z_choice="sample"``,
        as the original) or the component's mean (``"mean"``; a discrete stage 1 feeds the one-hot code either
        way); decoding is greedy or a beam search of ``beam_size``. Only the batch's contexts are read.
        """
        if code_choice not in CODE_CHOICES or z_choice not in Z_CHOICES or decoding not in DECODINGS:
            raise ValueError(f"code_choice in {CODE_CHOICES}, z_choice in {Z_CHOICES}, decoding in {DECODINGS}")
        encoding = self.encode_context(batch)
        probs = torch.softmax(self.policy(encoding.last).float(), -1)  # [B, M, K]
        rows, m, k = probs.shape
        if codes is None:
            if code_choice == "argmax":
                codes = probs.argmax(-1)
            else:
                codes = torch.multinomial(probs.reshape(rows * m, k), 1, generator=generator).view(rows, m)
        codes = codes.to(probs.device)
        latent = self.code_block.prior_features(rows, codes, mode=z_choice == "mean").to(encoding.last.dtype)
        init = self._initial_state(latent, encoding)
        how = self.stage1.decoding  # stage 1's: the same ids and length, greedy
        if decoding == "beam":
            ids, _ = self.decoder.beam_search(init, encoding.outputs, encoding.mask, how, beam_size, length_penalty)
        else:
            ids = self.decoder.generate(init, encoding.outputs, encoding.mask, how)
        return Responses(ids, codes, probs)


def top_codes(log_probs: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """The ``n`` most probable joint codes of M independent variables: log_probs [M, K] ->
    (codes [n', M], joint probabilities [n']), most probable first, n' = min(n, K^M).

    Exact without enumerating the K^M codes: a code among the n best has a prefix among the n best prefixes
    (otherwise n better prefixes, each completed with its suffix, would beat it)."""
    codes = torch.zeros(1, 0, dtype=torch.long, device=log_probs.device)
    scores = torch.zeros(1, dtype=log_probs.dtype, device=log_probs.device)
    k = log_probs.shape[1]
    for row in log_probs:
        candidates = (scores.unsqueeze(1) + row.unsqueeze(0)).flatten()  # [P·K]
        best = candidates.topk(min(n, candidates.numel()))
        parent = torch.div(best.indices, k, rounding_mode="floor")
        codes = torch.cat((codes[parent], (best.indices % k).unsqueeze(1)), 1)
        scores = best.values
    return codes, scores.exp()


__all__ = ["DialogModel", "Responses", "top_codes"]
