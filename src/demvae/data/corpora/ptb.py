"""Penn Treebank, Mikolov's preprocessed release (``ptb/ptb.{train,valid,test}.txt``).

One sentence per line, split on whitespace, kept as is: the files are already lower-cased and contain ``<unk>``.
Blank lines (none in the real files) are skipped.
"""

from __future__ import annotations

from pathlib import Path

from demvae.data.corpora._io import read_lines, require_dir
from demvae.data.types import SPLITS, Corpus, Example
from demvae.errors import DataError

FILES = {"train": "ptb.train.txt", "valid": "ptb.valid.txt", "test": "ptb.test.txt"}


def read_sentences(path: Path) -> list[Example]:
    examples = [Example(tuple(toks)) for toks in (line.split() for line in read_lines(path, "PTB file")) if toks]
    if not examples:
        raise DataError("no sentences found", path)
    return examples


def load_ptb(data_dir: str | Path) -> Corpus:
    root = require_dir(Path(data_dir) / "ptb", "PTB", ", ".join(FILES.values()))
    splits = {split: read_sentences(root / FILES[split]) for split in SPLITS}
    return Corpus(
        name="ptb",
        splits=splits,
        description="Penn Treebank (Mikolov et al. preprocessing): one sentence per example, no labels",
    )
