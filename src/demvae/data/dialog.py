"""Dialog data: each response with its context, one padded sequence per earlier turn.

The original's hierarchical encoder reads a context tensor [B, turns, 40] in which every earlier turn is its own
``<s> speaker words </s>`` sequence, the dialogue's opening ``<s> <d> </s>`` turn first: the context of the turn at
position i of ``[<d>, t_0, t_1, ...]`` is ``dialog[max(0, i − 30):i]``. Turns are not joined into one string.

A :class:`DialogSplit` is an :class:`~demvae.data.batching.EncodedSplit` of the responses (so it batches, buckets by
response length with :class:`~demvae.data.batching.BucketBatchSampler` and iterates with
:func:`~demvae.data.batching.iterate` like any split) that also stores each distinct context turn once, encoded as
``vocab.encode`` does (truncation keeps ``</s>``), and for every response the ids of its turns. A batch gathers them
into a :class:`DialogBatch`: context [B, C, Lc] padded to the batch's most turns and longest turn, left-aligned
(oldest turn first, padded turns after the real ones), with each turn's length (0 for a padded turn) and the number
of real turns per row. Models must read only the real turns and positions (see :mod:`demvae.nn.context`), so a
batch's padding never changes an encoding, which the original's unmasked encoders did not guarantee.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from demvae.config import SPEAKER_CHOICES
from demvae.data.batching import EncodedSplit
from demvae.data.corpora.smd import OPENING, SPEAKER_NAMES
from demvae.data.types import SPLITS, Batch, Corpus, Example
from demvae.data.vocab import Vocab
from demvae.errors import ConfigError, DataError


def _host(t: Tensor) -> Tensor:
    return t if t.device.type == "cpu" else t.cpu()


@dataclass(kw_only=True)
class DialogBatch(Batch):
    """A :class:`Batch` of responses plus their contexts.

    ``context`` [B, C, Lc] long: turn j of row b is ``<s> speaker words </s>`` then ``<pad>``; a padded turn is all
    ``<pad>``. ``context_lengths`` [B, C] counts each turn's tokens (0 for a padded turn); ``n_turns`` [B] counts the
    real turns, which come first. The ``host_*`` fields are CPU copies (packing reads them; reading them never syncs
    a GPU).
    """

    context: Tensor
    context_lengths: Tensor
    n_turns: Tensor
    host_context_lengths: Tensor | None = None
    host_n_turns: Tensor | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.host_context_lengths is None:
            self.host_context_lengths = _host(self.context_lengths)
        if self.host_n_turns is None:
            self.host_n_turns = _host(self.n_turns)

    def to(self, device: torch.device | str) -> DialogBatch:
        base = super().to(device)
        return DialogBatch(
            base.tokens,
            base.lengths,
            base.labels,
            base.host_lengths,
            base.global_size,
            context=self.context.to(device, non_blocking=True),
            context_lengths=self.context_lengths.to(device, non_blocking=True),
            n_turns=self.n_turns.to(device, non_blocking=True),
            host_context_lengths=self.host_context_lengths,
            host_n_turns=self.host_n_turns,
        )

    @property
    def turn_mask(self) -> Tensor:
        """[B, C] bool: True on the real turns."""
        c = self.context.shape[1]
        return torch.arange(c, device=self.n_turns.device) < self.n_turns.unsqueeze(1)


class DialogSplit(EncodedSplit):
    """Responses (``ids``, ``lengths``, ``labels`` as :class:`EncodedSplit`) and their contexts.

    ``turns`` [U, Lt] long: the distinct context turns, encoded; row 0 is the empty padding turn (length 0).
    ``turn_lengths`` [U]. ``turn_index`` [N, Cmax] long: the rows of ``turns`` that form response n's context, oldest
    first, 0 after its ``n_turns[n]`` real turns. ``example_index`` [N]: the position of each response in the
    examples it was built from (responses can be a subset: ``speakers="sys"``). ``n_turns_truncated``: distinct
    context turns cut to the turn length.
    """

    def __init__(
        self,
        ids: Tensor,
        lengths: Tensor,
        labels: dict[str, Tensor] | None = None,
        n_truncated: int = 0,
        max_len: int | None = None,
        *,
        turns: Tensor,
        turn_lengths: Tensor,
        turn_index: Tensor,
        example_index: Tensor,
        n_turns_truncated: int = 0,
    ):
        super().__init__(ids, lengths, labels, n_truncated, max_len)
        n = ids.shape[0]
        if turns.dim() != 2 or turn_lengths.shape != turns.shape[:1] or int(turn_lengths[0]) != 0:
            raise ValueError("turns must be [U, Lt] with turn_lengths [U] and an empty padding turn at row 0")
        if turn_index.dim() != 2 or turn_index.shape[0] != n or example_index.shape != (n,):
            raise ValueError("turn_index must be [N, C] and example_index [N]")
        self.turns = turns
        self.turn_lengths = turn_lengths
        self.turn_index = turn_index
        self.example_index = example_index
        self.n_turns = (turn_index > 0).sum(1)
        self.n_turns_truncated = int(n_turns_truncated)

    @classmethod
    def from_examples(
        cls,
        examples: Sequence[Example],
        vocab: Vocab,
        max_len: int | None = 40,
        label_keys: Iterable[str] | None = None,
        *,
        context_turns: int = 30,
        turn_len: int | None = None,
        speakers: str = "both",
        opening: str | None = OPENING,
    ) -> DialogSplit:
        """Encode the responses among ``examples`` and their contexts.

        ``speakers``: ``"both"`` keeps every example, ``"sys"`` those whose ``speaker`` label is ``sys`` (contexts
        keep every turn either way). ``opening``: the token of the turn put before each dialogue's first turn
        (``<d>``; None for none); it must be in ``vocab``. ``context_turns``: the most recent turns kept, the
        opening turn included; it must not exceed the reader's own ``context_turns`` (the number of earlier
        utterances each example carries; 30 for both by default) for the opening turn to be placed as the
        original's ``dialog[max(0, i − cap):i]``. ``turn_len``: the longest context turn (default ``max_len``).
        """
        if speakers not in SPEAKER_CHOICES:
            raise ConfigError(f"speakers: {speakers!r} is not one of {', '.join(SPEAKER_CHOICES)}")
        if context_turns < 1:
            raise ConfigError(f"context_turns must be >= 1 for a dialog split, got {context_turns}")
        if opening is not None and opening not in vocab:
            raise DataError(f"the vocabulary has no {opening!r} token: build it with the corpus specials")
        keep = _responses(examples, speakers)
        kept = [examples[i] for i in keep]
        responses = EncodedSplit.from_examples(kept, vocab, max_len, label_keys)

        row_of: dict[tuple[str, ...], int] = {}
        rows: list[list[int]] = []
        head = ((opening,),) if opening is not None else ()
        for ex in kept:
            row = []
            for turn in (head + ex.context)[-context_turns:]:
                j = row_of.get(turn)
                if j is None:
                    j = row_of[turn] = len(row_of) + 1  # row 0 is the padding turn
                row.append(j)
            rows.append(row)
        distinct = EncodedSplit.from_examples(
            [Example(turn) for turn in row_of], vocab, max_len if turn_len is None else turn_len, label_keys=()
        )
        width = distinct.ids.shape[1] if len(distinct) else 0
        turns = torch.cat((torch.zeros(1, width, dtype=torch.long), distinct.ids))
        turn_lengths = torch.cat((torch.zeros(1, dtype=torch.long), distinct.lengths))
        index = np.zeros((len(rows), max((len(r) for r in rows), default=0)), dtype=np.int64)
        for n, row in enumerate(rows):
            index[n, : len(row)] = row
        return cls(
            responses.ids,
            responses.lengths,
            responses.labels,
            responses.n_truncated,
            max_len,
            turns=turns,
            turn_lengths=turn_lengths,
            turn_index=torch.from_numpy(index),
            example_index=torch.as_tensor(keep, dtype=torch.long),
            n_turns_truncated=distinct.n_truncated,
        )

    def batch(self, indices: Sequence[int] | Tensor) -> DialogBatch:
        """The responses at ``indices`` (in that order) and their contexts, padded to the batch's maxima."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        base = super().batch(idx)
        n_turns = self.n_turns[idx]
        index = self.turn_index[idx, : int(n_turns.max()) if idx.numel() else 0]  # [B, C]
        context_lengths = self.turn_lengths[index]
        width = int(context_lengths.max()) if context_lengths.numel() else 0
        return DialogBatch(
            base.tokens,
            base.lengths,
            base.labels,
            context=self.turns[:, :width][index],
            context_lengths=context_lengths,
            n_turns=n_turns,
        )


def _responses(examples: Sequence[Example], speakers: str) -> list[int]:
    if speakers == "both":
        return list(range(len(examples)))
    sys_id = SPEAKER_NAMES.index("sys")
    if any("speaker" not in ex.labels for ex in examples):
        raise DataError("speakers='sys' needs a 'speaker' label on every example (the SMD reader gives one)")
    return [i for i, ex in enumerate(examples) if ex.labels["speaker"] == sys_id]


def encode_dialog_splits(
    corpus: Corpus,
    vocab: Vocab,
    max_len: int | None = 40,
    *,
    context_turns: int = 30,
    turn_len: int | None = None,
    speakers: str = "both",
) -> dict[str, DialogSplit]:
    """Every split of a dialog corpus as a :class:`DialogSplit`, opened by ``<d>`` where the corpus has it."""
    opening = OPENING if OPENING in corpus.specials else None
    label_keys = sorted(corpus.label_names)
    return {
        name: DialogSplit.from_examples(
            corpus.splits[name], vocab, max_len, label_keys,
            context_turns=context_turns, turn_len=turn_len, speakers=speakers, opening=opening,
        )
        for name in SPLITS
    }


__all__ = ["DialogBatch", "DialogSplit", "SPEAKER_CHOICES", "encode_dialog_splits"]
