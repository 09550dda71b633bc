"""Decoding at scale: reconstructions of a split (for BLEU) and samples from the prior."""

from __future__ import annotations

import torch

from demvae.data.batching import BucketBatchSampler, EncodedSplit
from demvae.data.vocab import Vocab
from demvae.evaluation.bleu import multi_bleu, sacre_bleu
from demvae.models import TextVAE


def _words(vocab: Vocab, ids: list[int]) -> list[str]:
    return vocab.decode(ids)


@torch.no_grad()
def reconstructions(model: TextVAE, split: EncodedSplit, vocab: Vocab, batch_size: int = 500) -> list[list[str]]:
    """Greedy decoding from the posterior mean of every sentence, in the split's order."""
    model.eval()
    out: list[list[str]] = [[] for _ in range(len(split))]
    for indices in BucketBatchSampler(split.lengths, batch_size, shuffle=False).batches():
        ids = model.reconstruct(split.batch(indices).to(model.device)).cpu().tolist()
        for i, row in zip(indices, ids):
            out[i] = _words(vocab, row)
    return out


def references(split: EncodedSplit, vocab: Vocab) -> list[list[str]]:
    """The split's sentences as the model sees them (truncated, OOV as ``<unk>``)."""
    return [_words(vocab, row[: int(n)]) for row, n in zip(split.ids.tolist(), split.lengths.tolist())]


def bleu_scores(hyps: list[list[str]], refs: list[list[str]]) -> dict:
    """Corpus BLEU-4 ×100: multi-bleu compatible (the paper's) and sacreBLEU with its signature."""
    sacre, signature = sacre_bleu([" ".join(h) for h in hyps], [" ".join(r) for r in refs])
    return {"bleu": multi_bleu(hyps, refs), "sacrebleu": sacre, "sacrebleu_signature": signature,
            "examples": [(" ".join(r), " ".join(h)) for r, h in list(zip(refs, hyps))[:5]]}


@torch.no_grad()
def prior_samples(model: TextVAE, vocab: Vocab, n: int, batch_size: int = 2000, seed: int = 0) -> list[list[str]]:
    """``n`` sentences from the prior, decoded as the paper does (greedy for latent models)."""
    model.eval()
    torch.manual_seed(seed)
    out: list[list[str]] = []
    for start in range(0, n, batch_size):
        ids = model.sample_prior(min(batch_size, n - start)).cpu().tolist()
        out.extend(_words(vocab, row) for row in ids)
    return out
