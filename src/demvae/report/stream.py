"""``demvae sample`` and ``demvae encode`` as streams of output lines, one batch at a time: whatever the number of
sentences asked for or the size of the input file, memory holds one batch, and each batch's lines can be written
as soon as they exist.

Both keep one output line per item: ``sample`` one line per sentence (its words separated by spaces; an empty
line for a sentence that ended at once), ``encode`` one line per input line: ``CODE<tab>PROBABILITY<tab>SENTENCE``,
or an empty line for a blank one (the format ``demvae encode --help`` states).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import numpy as np
import torch

from demvae.data.batching import EncodedSplit
from demvae.data.types import Example
from demvae.data.vocab import Vocab
from demvae.evaluation.codes import encode_codes, format_code
from demvae.models import TextVAE
from demvae.models.generation import DEFAULT, CodeStats, Procedure, generate_from_codes

BATCH = 1000
"""Sentences generated or encoded per batch: the memory of ``sample --n N`` and ``encode`` is that of one batch."""


def sample_batches(model: TextVAE, vocab: Vocab, n: int, code: list[int] | None = None,
                   procedure: Procedure = DEFAULT, stats: CodeStats | None = None, greedy: bool | None = None,
                   batch_size: int = BATCH) -> Iterator[list[str]]:
    """``n`` sentences, ``batch_size`` at a time: from the prior, or with every sentence's discrete code ``code``
    chosen by ``procedure`` (``greedy`` None: the model's default decoding). Draws from torch's random state."""
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        if code is None:
            ids = model.sample_prior(size, greedy=greedy)
        else:
            ids = generate_from_codes(model, torch.tensor([code] * size), procedure, stats, greedy=greedy is not False)
        yield [" ".join(vocab.decode(row)) for row in ids.tolist()]


def encode_batches(model: TextVAE, vocab: Vocab, max_len: int, sentences: Iterable[tuple[str, ...]],
                   batch_size: int = BATCH) -> Iterator[list[str]]:
    """The output line of each sentence (an empty tuple, i.e. a blank input line: an empty line), ``batch_size``
    at a time."""
    sentences = iter(sentences)
    while chunk := list(itertools.islice(sentences, batch_size)):
        present = [tokens for tokens in chunk if tokens]
        found: Iterator[tuple[np.ndarray, float]] = iter(())
        if present:
            codes = encode_codes(model, EncodedSplit.from_examples([Example(t) for t in present], vocab, max_len))
            assert codes is not None  # api.encode: the model has a discrete code
            found = zip(codes.codes, codes.confidence)
        lines = []
        for tokens in chunk:
            if tokens:
                code, probability = next(found)
                lines.append(f"{format_code(code)}\t{probability:.3f}\t{' '.join(tokens)}")
            else:
                lines.append("")
        yield lines
