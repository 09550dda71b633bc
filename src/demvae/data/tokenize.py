"""Tokenizers.

``chat_tokenize`` re-implements, with Python 3 ``re``, the regular expression the original code used for its
dialogue corpora (``\\w+|<sil>|[^\\w\\s]+``): runs of word characters, the literal ``<sil>``, and runs of
punctuation. Contractions are split around the apostrophe (``"don't"`` -> ``don ' t``). Unlike the original
(Python 2, byte strings), ``\\w`` matches non-ASCII letters, so accented words stay whole.
"""

from __future__ import annotations

import re

_CHAT_RE = re.compile(r"\w+|<sil>|[^\w\s]+")


def chat_tokenize(text: str) -> list[str]:
    """Split ``text`` into word runs, ``<sil>`` and punctuation runs (no lower-casing)."""
    return _CHAT_RE.findall(text)


def whitespace_tokenize(text: str) -> list[str]:
    """Split on whitespace (what PTB and plain user text use)."""
    return text.split()


TOKENIZERS = {"whitespace": whitespace_tokenize, "chat": chat_tokenize}

__all__ = ["chat_tokenize", "whitespace_tokenize", "TOKENIZERS"]
