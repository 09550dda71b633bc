"""From a DataConfig to encoded splits: load the corpus, build (or reuse) the vocabulary, encode.

With an enabled :class:`~demvae.config.DialogConfig` every split is a :class:`~demvae.data.dialog.DialogSplit`
(the responses with their contexts; an :class:`EncodedSplit`, so a sentence model trains on it unchanged): both
stages of a dialog run see the same responses."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from demvae.config import DataConfig, DialogConfig
from demvae.data.batching import EncodedSplit
from demvae.data.corpora import load_corpus
from demvae.data.dialog import encode_dialog_splits
from demvae.data.types import SPLITS, Corpus
from demvae.data.vocab import Vocab
from demvae.errors import ConfigError, DemvaeWarning

TINY_SPLIT = 50
"""Below this many examples a valid/test split gives noisy metrics (homogeneity above all)."""


@dataclass
class PreparedData:
    corpus: Corpus
    vocab: Vocab
    splits: dict[str, EncodedSplit]


def check_split(name: str) -> str:
    if name not in SPLITS:
        raise ConfigError(f"unknown split {name!r}; valid: {', '.join(SPLITS)}")
    return name


def prepare(cfg: DataConfig, vocab: Vocab | None = None, dialog: DialogConfig | None = None) -> PreparedData:
    """Encode every split; the vocabulary is built on the training split unless one is given. With
    ``dialog.enabled`` the splits are dialog splits (responses and contexts)."""
    corpus = load_corpus(cfg.corpus, cfg.data_dir, **cfg.options)
    unknown = sorted(set(cfg.max_examples) - set(SPLITS))
    if unknown:
        raise ConfigError(f"data.max_examples: unknown split(s) {', '.join(unknown)}; valid: {', '.join(SPLITS)}")
    for name, limit in cfg.max_examples.items():
        corpus.splits[name] = corpus.splits[name][:limit]
    if vocab is None:
        vocab = Vocab.build(
            (ex.tokens for ex in corpus.splits["train"]),
            max_size=cfg.max_vocab,
            min_count=cfg.min_count,
            specials=corpus.specials,
        )
    if dialog is not None and dialog.enabled:
        if not any(ex.context for ex in corpus.splits["train"]):
            raise ConfigError(
                f"dialog.enabled needs a corpus with dialogue contexts (smd, dailydialog); {cfg.corpus!r} has none"
            )
        dialog_splits = encode_dialog_splits(corpus, vocab, cfg.max_len, context_turns=dialog.context_turns,
                                             turn_len=dialog.turn_len, speakers=dialog.speakers)
        return PreparedData(corpus, vocab, dict(dialog_splits))
    label_keys = sorted(corpus.label_names)
    splits = {
        name: EncodedSplit.from_examples(corpus.splits[name], vocab, cfg.max_len, label_keys)
        for name in SPLITS
    }
    for note in corpus.notes:
        warnings.warn(note, DemvaeWarning, stacklevel=2)
    for name in ("valid", "test"):
        if 0 < len(splits[name]) < TINY_SPLIT:
            warnings.warn(f"the {name} split has only {len(splits[name])} examples: its metrics are noisy "
                          "(homogeneity especially, since small clusters are pure by chance)", DemvaeWarning,
                          stacklevel=2)
    return PreparedData(corpus, vocab, splits)
