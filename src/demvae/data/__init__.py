"""Data layer: corpora, vocabulary, encoding and batching."""

from demvae.data.batching import BucketBatchSampler, EncodedSplit, iterate, padding_efficiency
from demvae.data.corpora import CORPUS_NAMES, load_corpus
from demvae.data.tokenize import chat_tokenize
from demvae.data.types import SPLITS, Batch, Corpus, Example
from demvae.data.vocab import Vocab

__all__ = [
    "Example",
    "Corpus",
    "Batch",
    "SPLITS",
    "Vocab",
    "load_corpus",
    "CORPUS_NAMES",
    "EncodedSplit",
    "BucketBatchSampler",
    "iterate",
    "padding_efficiency",
    "chat_tokenize",
]
