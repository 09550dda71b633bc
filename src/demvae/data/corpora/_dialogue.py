"""What the dialog corpora share: every turn of a dialogue becomes one example whose context holds
the turns before it, and a corpus is its three splits read the same way."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from demvae.data.types import SPLITS, Corpus, Example
from demvae.errors import DataError


def dialogue_examples(turns: Sequence[tuple[tuple[str, ...], dict[str, int]]], context_turns: int) -> list[Example]:
    """One dialogue's (tokens, labels) turns as examples; each context holds up to ``context_turns``
    earlier turns of the same dialogue, oldest first."""
    history = [tokens for tokens, _ in turns]
    return [
        Example(tokens, labels, tuple(history[max(0, t - context_turns): t]) if context_turns > 0 else ())
        for t, (tokens, labels) in enumerate(turns)
    ]


def load_dialogue_corpus(name: str, read_split: Callable[[str], tuple[list[Example], int]], context_turns: int,
                         label_names: dict[str, list[str]], description: str, specials: tuple[str, ...] = ()) -> Corpus:
    """``read_split(split) -> (examples, dialogues)`` for train/valid/test, gathered into a Corpus
    that records the dialogue counts."""
    if context_turns < 0:
        raise DataError(f"context_turns must be >= 0, got {context_turns}")
    splits: dict[str, list[Example]] = {}
    dialogues: dict[str, int] = {}
    for split in SPLITS:
        splits[split], dialogues[split] = read_split(split)
    return Corpus(name=name, splits=splits, label_names=label_names, specials=specials, description=description,
                  info={"dialogues": dialogues})


__all__ = ["dialogue_examples", "load_dialogue_corpus"]
