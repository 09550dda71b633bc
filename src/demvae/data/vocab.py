"""The vocabulary: a fixed mapping token <-> id.

Layout: ``<pad>`` ``<unk>`` ``<s>`` ``</s>`` at ids 0-3, then the corpus' own special tokens (e.g. ``<usr>``,
``<sys>``), then words by descending train count, ties broken by the token string, so a vocabulary is the same
on every platform (the original's tie order depended on Python-2 dict order).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import ClassVar

from demvae.errors import DataError
from demvae.io import write_text

PAD = "<pad>"
UNK = "<unk>"
BOS = "<s>"
EOS = "</s>"
CORE_SPECIALS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3

_FORMAT = "demvae-vocab"
_VERSION = 1


class Vocab:
    """Token <-> id mapping. Build one with :meth:`Vocab.build` on the train split."""

    pad_id: ClassVar[int] = PAD_ID
    unk_id: ClassVar[int] = UNK_ID
    bos_id: ClassVar[int] = BOS_ID
    eos_id: ClassVar[int] = EOS_ID
    """The core specials' ids: the same in every vocabulary."""

    def __init__(
        self,
        words: Sequence[str] = (),
        specials: Sequence[str] = (),
        settings: dict | None = None,
    ):
        extra = []
        for s in specials:
            if s not in CORE_SPECIALS and s not in extra:
                extra.append(s)
        tokens = list(CORE_SPECIALS) + extra
        seen = set(tokens)
        for w in words:
            if w in seen:
                raise ValueError(f"duplicate or special token in vocabulary words: {w!r}")
            seen.add(w)
            tokens.append(w)
        self._tokens: list[str] = tokens
        self._ids: dict[str, int] = {t: i for i, t in enumerate(tokens)}
        self._specials: tuple[str, ...] = tuple(extra)
        self.settings: dict = dict(settings or {})

    # ----------------------------------------------------------------------------------------------- construction
    @classmethod
    def build(
        cls,
        token_seqs: Iterable[Sequence[str]],
        max_size: int | None = 10000,
        min_count: int = 1,
        specials: Sequence[str] = (),
    ) -> Vocab:
        """Count tokens (train only!); keep the ``max_size`` most frequent non-special words seen ``min_count``+ times.

        Special tokens (the four core ones and ``specials``) are always included and never count against ``max_size``.
        Ties are broken by the token string, so the result is deterministic.
        """
        if max_size is not None and max_size < 0:
            raise ValueError("max_size must be >= 0 or None")
        counts: Counter[str] = Counter()
        for seq in token_seqs:
            counts.update(seq)
        reserved = set(CORE_SPECIALS) | set(specials)
        items = [(w, c) for w, c in counts.items() if c >= min_count and w not in reserved]
        items.sort(key=lambda wc: (-wc[1], wc[0]))
        if max_size is not None:
            items = items[:max_size]
        settings = {"max_size": max_size, "min_count": min_count, "counted_types": len(counts)}
        return cls([w for w, _ in items], specials=specials, settings=settings)

    # ----------------------------------------------------------------------------------------------- basic access
    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._ids

    def __iter__(self):
        return iter(self._tokens)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocab):
            return NotImplemented
        return self._tokens == other._tokens and self._specials == other._specials

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, specials={list(self._specials)})"

    @property
    def tokens(self) -> list[str]:
        """All tokens in id order (a copy)."""
        return list(self._tokens)

    @property
    def specials(self) -> tuple[str, ...]:
        """The corpus specials (not the four core ones)."""
        return self._specials

    @property
    def n_specials(self) -> int:
        """Number of special tokens (core + corpus): words start at this id."""
        return len(CORE_SPECIALS) + len(self._specials)

    @property
    def words(self) -> list[str]:
        return self._tokens[self.n_specials :]

    def id(self, token: str) -> int:
        """The id of ``token``; ``<unk>``'s id if it is not in the vocabulary."""
        return self._ids.get(token, UNK_ID)

    def token(self, i: int) -> str:
        return self._tokens[int(i)]

    # ----------------------------------------------------------------------------------------------- encode/decode
    def encode(self, tokens: Sequence[str], max_len: int | None = 40) -> list[int]:
        """``[<s>] + ids + [</s>]``, at most ``max_len`` ids long.

        A longer sequence keeps its first ``max_len - 1`` ids and then ``</s>`` (as the original's ``pad_to``).
        """
        get = self._ids.get
        ids = [BOS_ID]
        ids.extend(get(t, UNK_ID) for t in tokens)
        ids.append(EOS_ID)
        if max_len is not None and len(ids) > max_len:
            if max_len < 2:
                raise ValueError("max_len must be at least 2 (<s> and </s>)")
            ids = ids[: max_len - 1] + [EOS_ID]
        return ids

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of ``ids``, skipping ``<s>`` and ``<pad>`` and stopping at the first ``</s>``."""
        out = []
        toks = self._tokens
        for i in ids:
            i = int(i)
            if i == EOS_ID:
                break
            if i == BOS_ID or i == PAD_ID:
                continue
            out.append(toks[i] if 0 <= i < len(toks) else UNK)
        return out

    # ----------------------------------------------------------------------------------------------- persistence
    def to_dict(self) -> dict:
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "tokens": list(self._tokens),
            "specials": list(self._specials),
            "settings": dict(self.settings),
        }

    @classmethod
    def from_dict(cls, data: object, path: object = None) -> Vocab:
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise DataError("not a demvae vocabulary file", path)
        tokens = data.get("tokens")
        specials = data.get("specials", [])
        if (
            not isinstance(tokens, list)
            or not all(isinstance(t, str) for t in tokens)
            or not isinstance(specials, list)
            or not all(isinstance(t, str) for t in specials)
        ):
            raise DataError("vocabulary 'tokens'/'specials' must be lists of strings", path)
        n = len(CORE_SPECIALS) + len(specials)
        if tuple(tokens[: len(CORE_SPECIALS)]) != CORE_SPECIALS or tokens[len(CORE_SPECIALS) : n] != specials:
            raise DataError("vocabulary does not start with <pad> <unk> <s> </s> and its specials", path)
        settings = data.get("settings") or {}
        try:
            return cls(tokens[n:], specials=specials, settings=settings if isinstance(settings, dict) else {})
        except ValueError as e:
            raise DataError(str(e), path) from None

    def save(self, path: str | Path) -> None:
        write_text(Path(path), json.dumps(self.to_dict(), ensure_ascii=False, indent=0) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DataError("vocabulary file not found", path) from None
        except (OSError, UnicodeDecodeError) as e:
            raise DataError(f"cannot read vocabulary file ({e})", path) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"malformed vocabulary JSON ({e.msg})", path, e.lineno) from None
        return cls.from_dict(data, path)


__all__ = [
    "Vocab",
    "PAD",
    "UNK",
    "BOS",
    "EOS",
    "CORE_SPECIALS",
    "PAD_ID",
    "UNK_ID",
    "BOS_ID",
    "EOS_ID",
]
