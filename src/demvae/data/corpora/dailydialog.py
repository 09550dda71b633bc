"""DailyDialog (``daily_dialog/{train,validation,test}/dialogues{,_act,_emotion}.txt``).

Each line of ``dialogues.txt`` is one dialogue whose turns end with ``__eou__``; the matching lines of
``dialogues_act.txt`` and ``dialogues_emotion.txt`` hold one label per turn. Every turn is one example: the utterance
lower-cased and chat-tokenized, labels ``act`` (file value 1..4 stored as class 0..3) and ``emotion`` (0..6), and up
to ``context_turns`` previous utterances of the same dialogue as context.
"""

from __future__ import annotations

from pathlib import Path

from demvae.data.corpora._dialogue import dialogue_examples, load_dialogue_corpus
from demvae.data.corpora._io import read_lines, require_dir
from demvae.data.tokenize import chat_tokenize
from demvae.data.types import Corpus, Example
from demvae.errors import DataError

SPLIT_DIRS = {"train": "train", "valid": "validation", "test": "test"}
ACT_NAMES = ["inform", "question", "directive", "commissive"]
EMOTION_NAMES = ["no emotion", "anger", "disgust", "fear", "happiness", "sadness", "surprise"]
EOU = "__eou__"


def _parse_labels(line: str, path: Path, lineno: int, low: int, high: int) -> list[int]:
    try:
        values = [int(v) for v in line.split()]
    except ValueError:
        raise DataError(f"labels must be integers, got {line.strip()!r}", path, lineno) from None
    for v in values:
        if not low <= v <= high:
            raise DataError(f"label {v} out of range {low}..{high}", path, lineno)
    return values


def read_split(folder: Path, context_turns: int = 5) -> tuple[list[Example], int]:
    """Examples of one split folder and its number of dialogues."""
    text_path = folder / "dialogues.txt"
    act_path = folder / "dialogues_act.txt"
    emo_path = folder / "dialogues_emotion.txt"
    dialogues = read_lines(text_path, "DailyDialog file")
    acts = read_lines(act_path, "DailyDialog act file")
    emotions = read_lines(emo_path, "DailyDialog emotion file")
    if not (len(dialogues) == len(acts) == len(emotions)):
        raise DataError(
            f"line counts differ: dialogues.txt {len(dialogues)}, dialogues_act.txt {len(acts)}, "
            f"dialogues_emotion.txt {len(emotions)}",
            folder,
        )
    examples: list[Example] = []
    n_dialogues = 0
    for i, (line, act_line, emo_line) in enumerate(zip(dialogues, acts, emotions), start=1):
        turns = line.split(EOU)[:-1]
        act = _parse_labels(act_line, act_path, i, 1, 4)
        emo = _parse_labels(emo_line, emo_path, i, 0, 6)
        if not (len(turns) == len(act) == len(emo)):
            raise DataError(
                f"{len(turns)} turns but {len(act)} act labels ({act_path.name}) and {len(emo)} emotion labels "
                f"({emo_path.name}) on this line",
                text_path,
                i,
            )
        if not turns:
            if line.strip():
                raise DataError(f"dialogue without any {EOU} marker", text_path, i)
            continue
        n_dialogues += 1
        dialogue = [(tuple(chat_tokenize(t.lower())), {"act": a - 1, "emotion": e}) for t, a, e in zip(turns, act, emo)]
        examples += dialogue_examples(dialogue, context_turns)
    if not examples:
        raise DataError("no dialogues found", text_path)
    return examples, n_dialogues


def load_dailydialog(data_dir: str | Path, context_turns: int = 5) -> Corpus:
    root = require_dir(
        Path(data_dir) / "daily_dialog", "DailyDialog", "train/, validation/, test/ with dialogues{,_act,_emotion}.txt"
    )
    return load_dialogue_corpus(
        "dailydialog", lambda split: read_split(root / SPLIT_DIRS[split], context_turns), context_turns,
        label_names={"act": list(ACT_NAMES), "emotion": list(EMOTION_NAMES)},
        description="DailyDialog: one utterance per example (lower-cased, chat-tokenized), act and emotion labels",
    )
