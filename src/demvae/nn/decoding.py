r"""What every autoregressive decoder here shares: picking the real targets of a padded batch, the per-token NLL
(output layer and cross-entropy fused, chunked), and the decoding loops (greedy or sampled, and beam search), driven
by a one-step function.

A step function maps ``(word [R, 1], state) -> (logits [R, V], state)`` for R sequences decoded side by side; the
state is a GRU hidden state ``[layers, R, H]`` (the beam search reorders it along dim 1). How a sentence is written
(its special ids, its length, greedy or sampled) is one :class:`Decoding`, which models hold and callers vary with
``dataclasses.replace``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from demvae.nn.fused import linear_cross_entropy

Step = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class Decoding:
    """How a sentence is written: from ``bos_id`` until ``eos_id`` (then ``pad_id``), at most ``max_len`` − 1
    tokens; each token the argmax (``greedy``) or a draw from the softmax (from its top-``top_p`` nucleus, with
    ``generator``'s random state). The beam search reads only the ids and the length."""

    bos_id: int
    eos_id: int
    max_len: int = 40
    greedy: bool = True
    top_p: float = 1.0
    generator: torch.Generator | None = None
    pad_id: int = 0


def real_targets(host_lengths: Tensor, steps: int, replicas: int = 1) -> tuple[Tensor, Tensor]:
    """The real targets of a teacher-forced batch, from CPU lengths (no device sync for boolean indexing).

    Targets are ``tokens[:, 1:]`` ([rows, steps]); a row of length n (``<s>`` and ``</s>`` included) has n − 1 real
    targets. With ``replicas`` each length covers that many consecutive rows. Returns (flat positions [N_real] into
    the flattened [rows, steps] grid, their rows [N_real]), both on the CPU.
    """
    host = host_lengths.cpu().repeat_interleave(replicas)
    flat = (torch.arange(steps) < (host - 1).unsqueeze(1)).flatten().nonzero().squeeze(1)
    return flat, flat // steps


def token_nll(hidden: Tensor, weight: Tensor, bias: Tensor | None, targets: Tensor, chunk: int = 1024) -> Tensor:
    """−log softmax(h Wᵀ + b)[target] per position: hidden [N, H], the output layer's W [V, H] and b [V] (or None:
    a layer tied to the embedding), targets [N] -> [N].

    The output layer and the cross-entropy are fused (:func:`~demvae.nn.fused.linear_cross_entropy`): the
    vocabulary-sized logits are made ``chunk`` positions at a time, in the forward and in the backward pass, so
    memory does not grow with the batch × vocabulary.
    """
    return linear_cross_entropy(hidden, weight, bias, targets, chunk)


def sample_decode(step: Step, state: Tensor, rows: int, decoding: Decoding) -> Tensor:
    """Decode ``rows`` sequences from ``<s>``, one token per step (argmax, or a draw from the softmax; with
    ``top_p`` < 1 from its nucleus, :func:`nucleus`).

    Returns ids [rows, ≤ max_len − 1]: the generated tokens, ``</s>`` then ``pad_id`` once a row has finished; a row
    that has not finished after max_len − 1 tokens is cut there.
    """
    device, top_p = state.device, decoding.top_p
    word = torch.full((rows, 1), decoding.bos_id, dtype=torch.long, device=device)
    finished = torch.zeros(rows, dtype=torch.bool, device=device)
    out = []
    for t in range(decoding.max_len - 1):
        logits, state = step(word, state)
        if decoding.greedy:
            word = logits.argmax(-1, keepdim=True)
        else:
            probs = torch.softmax(logits.float(), -1)
            word = torch.multinomial(probs if top_p >= 1 else nucleus(probs, top_p), 1, generator=decoding.generator)
        word = word.masked_fill(finished.unsqueeze(1), decoding.pad_id)
        out.append(word)
        finished |= word.squeeze(1) == decoding.eos_id
        if t % 8 == 7 and bool(finished.all()):  # a host sync only every 8 steps
            break
    return torch.cat(out, dim=1)


def nucleus(probs: Tensor, top_p: float) -> Tensor:
    """Top-p (nucleus) sampling's distribution (Holtzman et al., 2020): per row of ``probs`` [R, V], the most
    probable tokens whose mass first reaches ``top_p`` (the most probable always), the rest zeroed; unnormalised
    (``torch.multinomial`` normalises)."""
    sorted_probs, order = probs.sort(-1, descending=True)
    keep = (sorted_probs.cumsum(-1) - sorted_probs) < top_p  # the mass before a token is below p
    return torch.zeros_like(probs).scatter(-1, order, sorted_probs * keep)


def beam_search(
    step: Step, state: Tensor, rows: int, decoding: Decoding, beam_size: int = 5, length_penalty: float = 0.0
) -> tuple[Tensor, Tensor]:
    r"""Batched beam search: ``beam_size`` hypotheses per row, all rows' beams decoded side by side.

    ``state`` [layers, rows·K, H] holds row b's K beams at rows b·K … b·K + K − 1 (repeat the caller's state with
    ``repeat_interleave(K, dim=1)``, and whatever the step reads per row, such as an attention memory, with
    ``repeat_interleave(K, dim=0)``: beams never move to another row).

    Length handling: the beam keeps the K prefixes with the highest sum of token log-probabilities. A hypothesis that
    emits ``</s>`` is finished: it stays in the beam with its score frozen (it continues with ``pad_id`` at no cost)
    and competes with the live prefixes; a hypothesis still live after max_len − 1 tokens is cut there, as greedy
    decoding cuts it. The returned hypothesis of each row maximises score / length^α (α = ``length_penalty``;
    length counts the tokens generated, ``</s>`` included): α = 0 is the plain log-probability, which favours short
    responses, α = 1 the per-token mean. With K = 1 this is greedy decoding.

    Returns (ids [rows, ≤ max_len − 1] as :func:`sample_decode`, scores [rows]: the chosen hypotheses' summed
    log-probabilities, unnormalised).
    """
    if beam_size < 1:
        raise ValueError("beam_size must be >= 1")
    k = beam_size
    n = rows * k
    device = state.device
    word = torch.full((n, 1), decoding.bos_id, dtype=torch.long, device=device)
    scores = torch.full((rows, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # one live start per row, so the first step does not fill the beam with copies
    finished = torch.zeros(n, dtype=torch.bool, device=device)
    length = torch.zeros(n, device=device)
    row_start = torch.arange(rows, device=device).unsqueeze(1) * k  # [rows, 1]
    words, parents = [], []
    for t in range(decoding.max_len - 1):
        logits, state = step(word, state)
        logp = torch.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), -1)  # [n, V]
        if t == 0:
            scores = scores.to(logp.dtype)
            frozen = torch.full_like(logp[0], float("-inf"))
            frozen[decoding.pad_id] = 0.0
        logp = torch.where(finished.unsqueeze(1), frozen, logp)
        vocab = logp.shape[1]
        scores, best = (scores.reshape(n, 1) + logp).reshape(rows, k * vocab).topk(k, dim=1)  # [rows, K]
        parent = (row_start + torch.div(best, vocab, rounding_mode="floor")).reshape(n)
        word = (best % vocab).reshape(n, 1)
        state = state.index_select(1, parent)
        length = length.index_select(0, parent) + (~finished.index_select(0, parent)).to(length.dtype)
        finished = finished.index_select(0, parent) | (word.squeeze(1) == decoding.eos_id)
        words.append(word.squeeze(1))
        parents.append(parent)
        if t % 8 == 7 and bool(finished.all()):
            break
    ranked = scores / length.reshape(rows, k).clamp(min=1).pow(length_penalty) if length_penalty else scores
    pick = row_start.squeeze(1) + ranked.argmax(1)  # [rows]
    chosen = scores.reshape(n).index_select(0, pick)
    out = []
    for w, p in zip(reversed(words), reversed(parents)):  # follow the back-pointers from the last step
        out.append(w.index_select(0, pick))
        pick = p.index_select(0, pick)
    return torch.stack(out[::-1], dim=1), chosen


__all__ = ["Step", "Decoding", "real_targets", "token_nll", "sample_decode", "nucleus", "beam_search"]
