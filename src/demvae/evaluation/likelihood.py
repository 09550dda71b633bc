r"""Importance-sampled log-likelihood (Burda et al. 2016), batched over sentences × samples.

``log p(x) ≈ log (1/S) Σ_s w_s``,  ``log w_s = log p(x | l_s) + log p(l_s) − log q(l_s | x)``,
``l_s ~ q(l | x)``: the proposal is the model's posterior (q(z|x) for VAE and (D)GM-VAE, where
log p(z) marginalises c exactly; q(c|x) for the discrete models; q(z|x) q(c|x) for semi-VAE;
q(z|x) over categoricals for (D)CM-VAE). Weights are combined with logsumexp in float64, so no
sentence underflows (the original silently counted such a sentence as log-likelihood 0).

Reported: ``nll`` (nats per sentence, the end-of-sentence prediction included), its standard error
over sentences, ``ppl`` = exp(Σ NLL / Σ predicted tokens incl. ``</s>``) and ``ppl_words`` (the
same with the ``</s>`` predictions left out of the denominator). The RNN-LM's NLL is exact.
"""

from __future__ import annotations

import math

import torch

from demvae.data.batching import BucketBatchSampler, EncodedSplit
from demvae.errors import ConfigError
from demvae.models import TextVAE
from demvae.objectives import perplexity


@torch.no_grad()
def log_likelihoods(
    model: TextVAE,
    split: EncodedSplit,
    n_samples: int = 500,
    rows_per_step: int = 8192,
    sentences_per_batch: int | None = None,
    max_memory: int | None = None,
) -> torch.Tensor:
    """Per-sentence ``log p(x)`` estimates [N] (float64, in the split's order).

    Sentences are sorted by length and cut into batches of ``sentences_per_batch`` (default: as many
    as fill ``rows_per_step`` decoder rows of ``n_samples``); each batch is encoded once and its samples
    drawn at once, then decoded ``rows_per_step`` rows (sentence × sample) at a time. ``max_memory``
    (bytes) replaces ``rows_per_step`` by the most rows whose decoder working memory fits in it
    (:meth:`~demvae.nn.decoders.LatentDecoder.eval_bytes`). The decoder chunking changes no number.
    """
    model.eval()
    if max_memory is not None:
        rows_per_step = rows_within(model, max_memory, int(split.lengths.max()) - 1 if len(split) else 0)
    per_batch = sentences_per_batch or max(1, rows_per_step // n_samples)
    n_draws = 1 if not model.has_latent else n_samples
    out = torch.empty(len(split), dtype=torch.float64)
    for indices in BucketBatchSampler(split.lengths, per_batch, shuffle=False).batches():
        batch = split.batch(indices).to(model.device)
        log_w = model.log_weights(batch, n_draws, chunk_rows=rows_per_step)
        out[indices] = (torch.logsumexp(log_w, dim=1) - math.log(n_draws)).cpu()
    return out


def rows_within(model: TextVAE, max_memory: int, steps: int) -> int:
    """The most decoder rows of ≤ ``steps`` predicted tokens whose evaluation working memory fits in
    ``max_memory`` bytes."""
    fixed = model.decoder.eval_bytes(0, steps)
    per_row = model.decoder.eval_bytes(1, steps) - fixed
    if max_memory < fixed + per_row:
        raise ConfigError(f"max_memory of {max_memory / 2**20:.1f} MiB is below the "
                          f"{(fixed + per_row) / 2**20:.1f} MiB that one decoder row needs")
    return (max_memory - fixed) // per_row


def nll_report(log_px: torch.Tensor, split: EncodedSplit) -> dict[str, float]:
    n = log_px.numel()
    nll = -log_px
    targets = int(split.lengths.sum()) - n  # every token after <s>, </s> included
    total = float(nll.sum())
    return {
        "nll": total / n,
        "nll_se": float(nll.std(unbiased=True) / math.sqrt(n)) if n > 1 else 0.0,
        "ppl": perplexity(total, targets),
        "ppl_words": perplexity(total, targets - n),
        "n_sentences": n,
    }


def importance_sampled_nll(model: TextVAE, split: EncodedSplit, n_samples: int = 500,
                           rows_per_step: int = 8192, max_memory: int | None = None) -> dict[str, float]:
    return nll_report(log_likelihoods(model, split, n_samples, rows_per_step, max_memory=max_memory), split)
