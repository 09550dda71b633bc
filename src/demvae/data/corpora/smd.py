"""Stanford multi-domain dialogues / KVRET (``stanford/kvret_{train,dev,test}_public.json``).

Every turn is one example: ``<usr>`` (driver) or ``<sys>`` (assistant) followed by the chat-tokenized utterance (case
kept, as the original), labels ``domain`` (navigate / schedule / weather) and ``speaker`` (0 usr, 1 sys), and up to
``context_turns`` previous turns of the dialogue as context. ``<d>`` is a corpus special so that dialog models can
open every context with the original's ``<s> <d> </s>`` turn (:mod:`demvae.data.dialog` adds it).
"""

from __future__ import annotations

from pathlib import Path

from demvae.data.corpora._dialogue import dialogue_examples, load_dialogue_corpus
from demvae.data.corpora._io import read_json, require_dir
from demvae.data.tokenize import chat_tokenize
from demvae.data.types import Corpus, Example
from demvae.errors import DataError

FILES = {"train": "kvret_train_public.json", "valid": "kvret_dev_public.json", "test": "kvret_test_public.json"}
USR = "<usr>"
SYS = "<sys>"
OPENING = "<d>"
"""The token of the turn that opens every dialogue in the original's contexts."""
SPEAKERS = {"driver": USR, "assistant": SYS}
SPEAKER_NAMES = ["usr", "sys"]
DOMAIN_NAMES = ["navigate", "schedule", "weather"]


def read_split(path: Path, context_turns: int = 30) -> tuple[list[Example], int]:
    data = read_json(path, "SMD file")
    if not isinstance(data, list):
        raise DataError("expected a JSON list of dialogues", path)
    domain_ids = {d: i for i, d in enumerate(DOMAIN_NAMES)}
    examples: list[Example] = []
    for n, dialog in enumerate(data):
        where = f"dialogue #{n}"
        try:
            turns = dialog["dialogue"]
            domain = dialog["scenario"]["task"]["intent"]
        except (KeyError, TypeError):
            raise DataError(f"{where}: missing 'dialogue' or 'scenario.task.intent'", path) from None
        if domain not in domain_ids:
            raise DataError(f"{where}: unknown domain {domain!r} (known: {', '.join(DOMAIN_NAMES)})", path)
        if not isinstance(turns, list):
            raise DataError(f"{where}: 'dialogue' must be a list", path)
        dialogue = []
        for k, turn in enumerate(turns):
            try:
                speaker = SPEAKERS[turn["turn"]]
                utt = turn["data"]["utterance"]
            except (KeyError, TypeError):
                raise DataError(
                    f"{where}, turn {k}: expected 'turn' (driver/assistant) and 'data.utterance'", path
                ) from None
            if not isinstance(utt, str):
                raise DataError(f"{where}, turn {k}: utterance is not a string", path)
            labels = {"domain": domain_ids[domain], "speaker": 0 if speaker == USR else 1}
            dialogue.append(((speaker, *chat_tokenize(utt)), labels))
        examples += dialogue_examples(dialogue, context_turns)
    if not examples:
        raise DataError("no dialogue turns found", path)
    return examples, len(data)


def load_smd(data_dir: str | Path, context_turns: int = 30) -> Corpus:
    root = require_dir(Path(data_dir) / "stanford", "SMD (KVRET)", ", ".join(FILES.values()))
    return load_dialogue_corpus(
        "smd", lambda split: read_split(root / FILES[split], context_turns), context_turns,
        label_names={"domain": list(DOMAIN_NAMES), "speaker": list(SPEAKER_NAMES)},
        specials=(USR, SYS, OPENING),
        description="Stanford multi-domain dialogues (KVRET): one turn per example, speaker token first",
    )
