"""Decoding at scale: reconstructions of a split (for BLEU), samples from the prior, and a dialog model's
responses to every context of a split."""

from __future__ import annotations

import numpy as np
import torch

from demvae.config import DialogConfig
from demvae.data.batching import BucketBatchSampler, EncodedSplit
from demvae.data.dialog import DialogSplit
from demvae.data.vocab import Vocab
from demvae.evaluation.bleu import multi_bleu, sacre_bleu
from demvae.models import DialogModel, TextVAE


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


@torch.no_grad()
def dialog_responses(model: DialogModel, split: DialogSplit, vocab: Vocab, dialog: DialogConfig,
                     batch_size: int = 200) -> tuple[list[list[str]], np.ndarray]:
    """The model's response to every context of the split, in the split's order, generated as ``dialog`` says
    (``gen_code``, ``gen_z``, ``decoding``, ``beam_size``, ``length_penalty``); and the codes used [N, M]."""
    model.eval()
    out: list[list[str]] = [[] for _ in range(len(split))]
    codes = np.zeros((len(split), model.code_shape()[0]), dtype=np.int64)
    for indices in BucketBatchSampler(split.lengths, batch_size, shuffle=False).batches():
        responses = model.respond(split.batch(indices).to(model.device), code_choice=dialog.gen_code,
                                  z_choice=dialog.gen_z, decoding=dialog.decoding, beam_size=dialog.beam_size,
                                  length_penalty=dialog.length_penalty)
        for i, row in zip(indices, responses.ids.cpu().tolist()):
            out[i] = _words(vocab, row)
        codes[indices] = responses.codes.cpu().numpy()
    return out, codes


def contexts(split: DialogSplit, vocab: Vocab) -> list[list[list[str]]]:
    """Every response's context as the model reads it: its turns (oldest first), each a token list."""
    turns = [_words(vocab, row[: int(n)]) for row, n in zip(split.turns.tolist(), split.turn_lengths.tolist())]
    return [[turns[j] for j in row if j > 0] for row in split.turn_index.tolist()]
