"""``demvae respond``: the paper's Table 5 for any context: the policy's most probable codes for a typed
context, with their probabilities, and the response the dialog model writes with each.

A context is typed as its turns, oldest first, separated by ``|``. A turn may start with its speaker token,
``<usr>`` or ``<sys>``; a turn without one takes the other speaker of the turn before it, and the first turn is the
user's (``<usr>``: SMD dialogues open with the driver), so an untagged context alternates user, system, user, ...
Each turn is tokenised as the corpus (the chat tokenizer, case kept); the dialogue's opening ``<d>`` turn is added
before it, as in training. Words the vocabulary lacks become ``<unk>`` (reported in a note).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from demvae.data.corpora.smd import SYS, USR
from demvae.data.dialog import DialogSplit
from demvae.data.tokenize import chat_tokenize
from demvae.data.types import Example
from demvae.errors import DataError
from demvae.evaluation.codes import format_code
from demvae.evaluation.generation import contexts
from demvae.models import DialogModel, top_codes
from demvae.training.run_folder import LoadedRun

_SPEAKER = re.compile(rf"^\s*({re.escape(USR)}|{re.escape(SYS)})")


@dataclass
class Reply:
    code: tuple[int, ...]
    probability: float
    """p(code | context) under the policy."""
    response: list[str]


@dataclass
class Responses:
    """What :func:`respond` found for one context; ``str()`` is ``demvae respond``'s table."""

    replies: list[Reply]
    turns: list[list[str]]
    """The context's turns as the model reads them."""
    unknown: list[str]
    """Words of the context not in the vocabulary (read as ``<unk>``)."""

    def __str__(self) -> str:
        return format_replies(self.replies, self.turns)


def parse_context(text: str) -> tuple[tuple[str, ...], ...]:
    """Turns (speaker token first) of a typed context; see the module's docstring for the speaker rule."""
    pieces = text.split("|")
    if not text.strip() or all(not p.strip() for p in pieces):
        raise DataError("the context is empty: type its turns, oldest first, separated by ' | '")
    turns, speaker = [], SYS  # so that the first untagged turn is the user's
    for n, piece in enumerate(pieces, start=1):
        tagged = _SPEAKER.match(piece)
        if tagged:
            speaker, piece = tagged.group(1), piece[tagged.end():]
        else:
            speaker = USR if speaker == SYS else SYS
        words = chat_tokenize(piece)
        if not words:
            raise DataError(f"turn {n} of the context is empty (turns are separated by ' | ')")
        turns.append((speaker, *words))
    return tuple(turns)


RESPONDS = "`demvae respond` needs a dialog run"
"""Who needs which kind of run (:meth:`~demvae.training.run_folder.RunFolder.expect`)."""


def respond(run: LoadedRun, context: str, code: list[int] | None = None, n: int = 5, z_choice: str = "mean",
            beam_size: int = 0, seed: int = 0) -> Responses:
    """The policy's ``n`` most probable codes (or the given ``code``) for ``context``, each with one response
    (z = the component's mean or a sample, greedy decoding or a beam of ``beam_size``)."""
    run.folder.expect("dialog", RESPONDS)
    model, vocab, dialog = run.model, run.vocab, run.config.dialog
    turns = parse_context(context)
    unknown = sorted({w for turn in turns for w in turn if w not in vocab})
    split = DialogSplit.from_examples([Example((SYS,), {}, turns)], vocab, run.config.data.max_len,
                                      context_turns=dialog.context_turns, turn_len=dialog.turn_len,
                                      opening="<d>" if "<d>" in vocab else None)
    assert isinstance(model, DialogModel)  # expect("dialog")
    log_policy = model.policy_probs(split.batch([0]).to(model.device))[0].log()  # [M, K]
    if code is None:
        codes, probs = top_codes(log_policy, n)
    else:
        codes = torch.tensor([code], device=log_policy.device)
        probs = log_policy.gather(1, codes.t()).sum().exp().reshape(1)
    torch.manual_seed(seed)
    out = model.respond(split.batch([0] * codes.shape[0]).to(model.device), codes=codes, z_choice=z_choice,
                        decoding="beam" if beam_size > 0 else "greedy", beam_size=max(1, beam_size))
    replies = [Reply(tuple(c), float(p), vocab.decode(ids))
               for c, p, ids in zip(codes.tolist(), probs.tolist(), out.ids.cpu().tolist())]
    return Responses(replies, contexts(split, vocab)[0], unknown)


def format_replies(replies: list[Reply], turns: list[list[str]]) -> str:
    lines = ["context:", *[f"  {' '.join(t)}" for t in turns], "", f"{'code':<10}{'p(code|context)':>16}  response"]
    lines += [f"{format_code(r.code):<10}{r.probability:>16.4f}  {' '.join(r.response)}" for r in replies]
    return "\n".join(lines)


__all__ = ["Reply", "Responses", "format_replies", "parse_context", "respond"]
