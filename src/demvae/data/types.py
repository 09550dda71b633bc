"""The data types every reader produces and every model consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Example:
    """One sentence (PTB, built-in, user text) or one dialog turn (DailyDialog, SMD).

    ``tokens`` holds the words only, without ``<s>``/``</s>``; a speaker token, where the corpus
    has one, is the first token. ``labels`` maps a label name (``act``, ``emotion``, ``intent``,
    ...) to an integer class id. ``context`` holds up to N previous turns of the dialogue
    (dialog corpora only), oldest first.
    """

    tokens: tuple[str, ...]
    labels: dict[str, int] = field(default_factory=dict)
    context: tuple[tuple[str, ...], ...] = ()


@dataclass
class Corpus:
    """Train/valid/test examples of one corpus plus what the labels mean.

    ``label_names[name][i]`` is the human-readable name of class ``i`` of label ``name``.
    ``specials`` are corpus-specific special tokens (e.g. speaker tokens) that must be in the
    vocabulary.
    """

    name: str
    splits: dict[str, list[Example]]
    label_names: dict[str, list[str]] = field(default_factory=dict)
    specials: tuple[str, ...] = ()
    description: str = ""
    info: dict[str, dict[str, int]] = field(default_factory=dict)
    """Extra per-split counts worth printing, e.g. ``{"dialogues": {"train": 2425, ...}}``."""
    notes: list[str] = field(default_factory=list)
    """What a user should know about how the corpus was read (shown as warnings)."""


@dataclass
class Batch:
    """A padded batch: ``tokens`` [B, T] starts with ``<s>`` and ends with ``</s>`` then ``<pad>``.

    ``lengths`` [B] counts tokens including ``<s>`` and ``</s>``. ``labels[name]`` is [B] long,
    -1 where an example lacks that label.
    """

    tokens: torch.Tensor
    lengths: torch.Tensor
    labels: dict[str, torch.Tensor] = field(default_factory=dict)
    host_lengths: torch.Tensor | None = None
    """A CPU copy of ``lengths`` (packing sequences needs one; reading it never syncs a GPU)."""
    global_size: int | None = None
    """In data-parallel training: the size of the global batch this batch is one rank's shard of."""

    def __post_init__(self):
        if self.host_lengths is None:
            self.host_lengths = self.lengths if self.lengths.device.type == "cpu" else self.lengths.cpu()

    def to(self, device: torch.device | str) -> Batch:
        return Batch(
            self.tokens.to(device, non_blocking=True),
            self.lengths.to(device, non_blocking=True),
            {k: v.to(device, non_blocking=True) for k, v in self.labels.items()},
            self.host_lengths,
            self.global_size,
        )

    @property
    def size(self) -> int:
        return self.tokens.shape[0]

    @property
    def n_targets(self) -> int:
        """Predicted tokens: every token after ``<s>``, ``</s>`` included."""
        assert self.host_lengths is not None  # __post_init__ sets it
        return int(self.host_lengths.sum()) - self.size
