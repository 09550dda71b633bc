"""The dialog networks: masked attention, the hierarchical context encoder, the policy and the attention decoder.

Every module is checked against an independent computation (the formula written out, or the GRU run on one
unpadded sequence), and padding -- more padded turns, longer padded turns or responses, filled with garbage ids
and values -- must never change an encoding, a weight on a real position or a log-likelihood.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from demvae.nn import attention_decoder
from demvae.nn.attention import AdditiveAttention, AttentionPooling, masked_softmax
from demvae.nn.attention_decoder import AttentionDecoder
from demvae.nn.context import ContextEncoder, PolicyNetwork, UtteranceEncoder
from demvae.nn.decoding import Decoding, real_targets, token_nll

V, E = 11, 6
BOS, EOS = 2, 3
TOL = {"atol": 1e-10, "rtol": 1e-10}


@pytest.fixture(autouse=True)
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def garbage_padded(tokens: torch.Tensor, lengths: torch.Tensor, extra: int, seed: int) -> torch.Tensor:
    """``tokens`` [..., L] widened by ``extra`` positions, every position past each length a random real id."""
    g = torch.Generator().manual_seed(seed)
    wide = torch.randint(4, V, (*tokens.shape[:-1], tokens.shape[-1] + extra), generator=g)
    real = torch.arange(wide.shape[-1]) < lengths.unsqueeze(-1)
    wide[..., : tokens.shape[-1]] = torch.where(real[..., : tokens.shape[-1]], tokens, wide[..., : tokens.shape[-1]])
    return wide


# ------------------------------------------------------------------------------------------------ attention


def test_masked_softmax_is_the_softmax_of_the_real_positions():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(3, 5, generator=g) * 4
    mask = torch.tensor([[1, 0, 1, 1, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    w = masked_softmax(scores, mask)
    for b in range(3):
        real = mask[b].nonzero().squeeze(1)
        if real.numel():
            torch.testing.assert_close(w[b, real], torch.softmax(scores[b, real], 0), **TOL)
        assert bool((w[b, ~mask[b]] == 0).all())
    assert bool((w[1] == 0).all())  # no real position: zero weights, not NaN


def test_additive_attention_formula_and_masking():
    torch.manual_seed(0)
    att = AdditiveAttention(query_size=4, key_size=3, attn_size=5)
    q, keys = torch.randn(2, 6, 4), torch.randn(2, 7, 3)
    mask = torch.tensor([[True] * 4 + [False] * 3, [True] * 7])
    mix, w = att(q, keys, mask)
    assert mix.shape == (2, 6, 3) and w.shape == (2, 6, 7)
    Wk, bk, Wq, v = att.key_proj.weight, att.key_proj.bias, att.query_proj.weight, att.score.weight[0]
    for b, s in itertools.product(range(2), range(6)):
        n = int(mask[b].sum())
        score = torch.stack([v @ torch.tanh(Wk @ keys[b, t] + bk + Wq @ q[b, s]) for t in range(n)])
        ref = torch.softmax(score, 0)
        torch.testing.assert_close(w[b, s, :n], ref, **TOL)
        torch.testing.assert_close(mix[b, s], ref @ keys[b, :n], **TOL)
    assert bool((w[0, :, 4:] == 0).all())
    # one query per row is the S = 1 case
    mix1, w1 = att(q[:, 2], keys, mask)
    torch.testing.assert_close(mix1, mix[:, 2], **TOL)
    torch.testing.assert_close(w1, w[:, 2], **TOL)
    # more padded keys, holding garbage, change nothing
    wide = torch.cat((keys, torch.randn(2, 3, 3) * 100), 1)
    wide_mask = torch.cat((mask, torch.zeros(2, 3, dtype=torch.bool)), 1)
    mix2, w2 = att(q, wide, wide_mask)
    torch.testing.assert_close(mix2, mix, **TOL)
    torch.testing.assert_close(w2[:, :, :7], w, **TOL)
    assert bool((w2[:, :, 7:] == 0).all())


def test_attention_pooling_formula():
    torch.manual_seed(1)
    pool = AttentionPooling(4, 3)
    states, mask = torch.randn(2, 5, 4), torch.tensor([[True, True, False, False, False], [True] * 5])
    pooled, w = pool(states, mask)
    for b in range(2):
        n = int(mask[b].sum())
        score = torch.stack([pool.score.weight[0] @ torch.tanh(pool.proj.weight @ h + pool.proj.bias)
                             for h in states[b, :n]])
        torch.testing.assert_close(pooled[b], torch.softmax(score, 0) @ states[b, :n], **TOL)
        assert bool((w[b, n:] == 0).all())


# ------------------------------------------------------------------------------------------------ context


def utterance_reference(enc: UtteranceEncoder, tokens: torch.Tensor) -> torch.Tensor:
    """One unpadded turn through the bi-GRU (no packing) and the pooling formula."""
    states, _ = enc.rnn(enc.embedding(tokens.unsqueeze(0)))  # [1, n, 2H]
    p = enc.pool
    score = p.score(torch.tanh(p.proj(states[0]))).squeeze(-1)
    return torch.softmax(score, 0) @ states[0]


@pytest.fixture
def context_encoder():
    torch.manual_seed(2)
    return ContextEncoder(UtteranceEncoder(nn.Embedding(V, E), hidden_size=4), hidden_size=5).eval()


def context_batch():
    """Three dialogues with 2, 4 and 1 real turns of varied lengths (0 on padded turns)."""
    g = torch.Generator().manual_seed(3)
    lengths = torch.tensor([[3, 6, 0, 0], [4, 2, 5, 3], [6, 0, 0, 0]])
    tokens = torch.randint(4, V, (3, 4, 6), generator=g)
    tokens = tokens * (torch.arange(6) < lengths.unsqueeze(-1))  # <pad> = 0 after each turn
    return tokens, lengths, (lengths > 0).sum(1)


def test_utterance_encoder_matches_one_unpadded_turn_and_ignores_padding(context_encoder):
    enc = context_encoder.utterance
    tokens, lengths, _ = context_batch()
    tokens, lengths = tokens.reshape(12, 6)[lengths.reshape(-1) > 0], lengths.reshape(-1)[lengths.reshape(-1) > 0]
    out = enc(tokens, lengths)
    assert out.shape == (7, 8)
    for i in range(7):
        torch.testing.assert_close(out[i], utterance_reference(enc, tokens[i, : lengths[i]]), **TOL)
    torch.testing.assert_close(enc(garbage_padded(tokens, lengths, 5, seed=4), lengths), out, **TOL)


def test_context_encoder_matches_the_turn_gru_on_real_turns(context_encoder):
    tokens, lengths, n_turns = context_batch()
    enc = context_encoder(tokens, lengths, n_turns)
    assert enc.outputs.shape == (3, 4, 5) and enc.last.shape == (3, 5)
    assert enc.mask.tolist() == [[True, True, False, False], [True] * 4, [True, False, False, False]]
    for b in range(3):
        n = int(n_turns[b])
        turns = torch.stack([utterance_reference(context_encoder.utterance, tokens[b, j, : lengths[b, j]])
                             for j in range(n)])
        out, h = context_encoder.rnn(turns.unsqueeze(0))
        torch.testing.assert_close(enc.outputs[b, :n], out[0], **TOL)
        torch.testing.assert_close(enc.last[b], h[0, 0], **TOL)
        assert bool((enc.outputs[b, n:] == 0).all())


def test_context_padding_never_changes_an_encoding(context_encoder):
    tokens, lengths, n_turns = context_batch()
    ref = context_encoder(tokens, lengths, n_turns)
    # two more padded turns and four more padded positions, all filled with garbage ids
    wide_len = torch.cat((lengths, torch.zeros(3, 2, dtype=torch.long)), 1)
    wide = garbage_padded(torch.cat((tokens, torch.zeros(3, 2, 6, dtype=torch.long)), 1), wide_len, 4, seed=5)
    enc = context_encoder(wide, wide_len, n_turns, host_context_lengths=wide_len, host_n_turns=n_turns)
    torch.testing.assert_close(enc.outputs[:, :4], ref.outputs, **TOL)
    torch.testing.assert_close(enc.last, ref.last, **TOL)
    assert bool((enc.outputs[:, 4:] == 0).all()) and not bool(enc.mask[:, 4:].any())
    # a row's encoding does not depend on the other rows of its batch
    alone = context_encoder(tokens[2:], lengths[2:], n_turns[2:])
    torch.testing.assert_close(alone.last[0], ref.last[2], **TOL)


def test_a_row_without_turns_encodes_to_zeros(context_encoder):
    tokens, lengths, n_turns = context_batch()
    tokens = torch.cat((tokens, torch.zeros(1, 4, 6, dtype=torch.long)))
    lengths, n_turns = torch.cat((lengths, torch.zeros(1, 4, dtype=torch.long))), torch.cat((n_turns, torch.zeros(1)))
    enc = context_encoder(tokens, lengths, n_turns.long())
    ref = context_encoder(tokens[:3], lengths[:3], n_turns[:3].long())
    torch.testing.assert_close(enc.last[:3], ref.last, **TOL)
    assert bool((enc.last[3] == 0).all()) and bool((enc.outputs[3] == 0).all()) and not bool(enc.mask[3].any())
    empty = context_encoder(tokens[:, :0, :0], lengths[:, :0], torch.zeros(4, dtype=torch.long))
    assert empty.outputs.shape == (4, 0, 5) and bool((empty.last == 0).all())


def test_policy_network_is_m_softmaxes_of_linear_tanh_linear():
    torch.manual_seed(6)
    policy = PolicyNetwork(input_size=5, n_variables=3, n_values=4, hidden_size=7)
    x = torch.randn(2, 5)
    logits = policy(x)
    assert logits.shape == (2, 3, 4)
    first, last = policy.net[0], policy.net[2]
    flat = last.weight @ torch.tanh(first.weight @ x[1] + first.bias) + last.bias
    torch.testing.assert_close(logits[1], flat.reshape(3, 4), **TOL)


# ------------------------------------------------------------------------------------------------ decoder


def make_decoder(vocab: int = V, seed: int = 7) -> AttentionDecoder:
    torch.manual_seed(seed)
    dec = AttentionDecoder(nn.Embedding(vocab, E), hidden_size=5, memory_size=4, attn_size=3).eval()
    with torch.no_grad():  # sharper distributions than the default init, so decoding choices matter
        dec.out.weight.mul_(6.0)
    return dec


def memory_batch(rows: int, seed: int = 8):
    g = torch.Generator().manual_seed(seed)
    n_turns = torch.randint(1, 4, (rows,), generator=g)
    mask = torch.arange(3) < n_turns.unsqueeze(1)
    memory = torch.randn(rows, 3, 4, generator=g) * mask.unsqueeze(-1)
    return memory, mask, torch.randn(rows, 5, generator=g)


def decoder_reference(dec: AttentionDecoder, tokens, n, memory, mask, init) -> torch.Tensor:
    """log p of one row written out step by step with a GRUCell holding the decoder's weights."""
    cell = nn.GRUCell(E, dec.hidden_size)
    cell.load_state_dict({k.replace("_l0", ""): v for k, v in dec.rnn.state_dict().items()})
    att, keys = dec.attention, memory[mask]
    h, total = init, torch.zeros(())
    for t in range(n - 1):
        h = cell(dec.embedding(tokens[t]).unsqueeze(0), h.unsqueeze(0))[0]
        score = torch.stack([att.score.weight[0] @ torch.tanh(att.key_proj(k) + att.query_proj(h)) for k in keys])
        mix = torch.softmax(score, 0) @ keys
        o = torch.tanh(dec.combine(torch.cat((mix, h))))
        total = total + torch.log_softmax(dec.out(o), 0)[tokens[t + 1]]
    return total


def test_decoder_log_likelihood_is_the_step_by_step_formula(monkeypatch):
    dec = make_decoder()
    memory, mask, init = memory_batch(4)
    g = torch.Generator().manual_seed(9)
    lengths = torch.tensor([5, 2, 7, 4])
    tokens = torch.randint(4, V, (4, 7), generator=g)
    tokens[:, 0] = BOS
    tokens = tokens * (torch.arange(7) < lengths.unsqueeze(1))
    projected = []

    def recording(hidden, *args, **kwargs):
        projected.append(hidden.shape[0])
        return token_nll(hidden, *args, **kwargs)

    monkeypatch.setattr(attention_decoder, "token_nll", recording)
    ll = dec.log_likelihood(tokens, lengths, init, memory, mask)
    monkeypatch.undo()
    assert projected == [int((lengths - 1).sum())]  # only the real targets reach the vocabulary layer
    for b in range(4):
        torch.testing.assert_close(ll[b], decoder_reference(dec, tokens[b], int(lengths[b]), memory[b], mask[b],
                                                            init[b]), **TOL)
    # garbage after each response and two more masked memory turns of garbage change nothing
    wide_memory = torch.cat((memory, torch.randn(4, 2, 4) * 50), 1)
    wide_mask = torch.cat((mask, torch.zeros(4, 2, dtype=torch.bool)), 1)
    wide = garbage_padded(tokens, lengths, 3, seed=10)
    torch.testing.assert_close(dec.log_likelihood(wide, lengths, init, wide_memory, wide_mask), ll, **TOL)
    # and a row's value does not depend on its batch
    torch.testing.assert_close(dec.log_likelihood(tokens[2:3], lengths[2:3], init[2:3], memory[2:3], mask[2:3]),
                               ll[2:3], **TOL)


def test_real_targets_positions():
    flat, row = real_targets(torch.tensor([3, 1, 4]), steps=3, replicas=2)
    grid = torch.zeros(6, 3, dtype=torch.bool)
    grid.view(-1)[flat] = True
    assert grid.tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 0], [0, 0, 0], [1, 1, 1], [1, 1, 1]]
    assert row.tolist() == [0, 0, 1, 1, 4, 4, 4, 5, 5, 5]


def as_tokens(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoded ids [B, T] -> (tokens [B, T + 1] with <s> first, lengths up to the first </s> or the end)."""
    rows, steps = ids.shape
    is_eos = ids == EOS
    first = torch.where(is_eos.any(1), is_eos.float().argmax(1) + 1, torch.full((rows,), steps))
    return torch.cat((torch.full((rows, 1), BOS), ids), 1), first + 1


def test_beam_of_one_is_greedy():
    dec = make_decoder()
    memory, mask, init = memory_batch(6, seed=11)
    greedy = dec.generate(init, memory, mask, Decoding(BOS, EOS, max_len=12))
    ids, scores = dec.beam_search(init, memory, mask, Decoding(BOS, EOS, max_len=12), beam_size=1)
    assert torch.equal(ids, greedy)
    tokens, lengths = as_tokens(ids)
    torch.testing.assert_close(scores, dec.log_likelihood(tokens, lengths, init, memory, mask), **TOL)


@pytest.mark.parametrize("seed", range(4))
def test_beam_scores_are_log_likelihoods_and_beat_greedy(seed):
    dec = make_decoder(seed=seed)
    memory, mask, init = memory_batch(8, seed=20 + seed)
    ids, scores = dec.beam_search(init, memory, mask, Decoding(BOS, EOS, max_len=10), beam_size=4)
    tokens, lengths = as_tokens(ids)
    torch.testing.assert_close(scores, dec.log_likelihood(tokens, lengths, init, memory, mask), **TOL)
    greedy_tokens, greedy_lengths = as_tokens(dec.generate(init, memory, mask, Decoding(BOS, EOS, max_len=10)))
    greedy = dec.log_likelihood(greedy_tokens, greedy_lengths, init, memory, mask)
    assert bool((scores >= greedy - 1e-9).all())
    # batched beams are the per-row beams
    for b in (0, 5):
        one_ids, one_score = dec.beam_search(init[b : b + 1], memory[b : b + 1], mask[b : b + 1],
                                             Decoding(BOS, EOS, max_len=10), 4)
        width = one_ids.shape[1]
        assert one_ids[0].tolist() == ids[b, :width].tolist() and bool((ids[b, width:] == 0).all())
        torch.testing.assert_close(one_score, scores[b : b + 1], **TOL)


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_a_beam_wide_enough_is_exhaustive_search(length_penalty):
    """Six tokens and at most three generated: a beam holding every hypothesis finds the brute-force optimum of
    score / length^α over all 156 responses (finished ones ending in </s>, unfinished ones cut at 3 tokens)."""
    vocab, max_len = 6, 4
    dec = make_decoder(vocab, seed=24)  # a model whose optima differ from greedy decoding, and with α
    memory, mask, init = memory_batch(3, seed=13)
    others = [t for t in range(vocab) if t != EOS]
    candidates = [(*body, EOS) for n in range(max_len - 1) for body in itertools.product(others, repeat=n)]
    candidates += list(itertools.product(others, repeat=max_len - 1))
    assert len(candidates) == 156
    tokens = torch.tensor([[BOS, *c] + [0] * (max_len - 1 - len(c)) for c in candidates])
    lengths = torch.tensor([len(c) + 1 for c in candidates])
    ids, scores = dec.beam_search(init, memory, mask, Decoding(BOS, EOS, max_len), beam_size=160,
                                  length_penalty=length_penalty)
    for b in range(3):
        row = [t[b : b + 1].expand(len(candidates), *t.shape[1:]) for t in (init, memory, mask)]
        ll = dec.log_likelihood(tokens, lengths, *row)
        best = int((ll / (lengths - 1).to(ll.dtype) ** length_penalty).argmax())
        torch.testing.assert_close(scores[b], ll[best], **TOL)
        assert ids[b, : len(candidates[best])].tolist() == list(candidates[best])
    greedy = dec.generate(init, memory, mask, Decoding(BOS, EOS, max_len))
    assert not torch.equal(ids, greedy[:, : ids.shape[1]])


def test_sampled_decoding_follows_the_generator():
    dec = make_decoder()
    memory, mask, init = memory_batch(5, seed=14)
    draw = lambda s: dec.generate(init, memory, mask, Decoding(  # noqa: E731
        BOS, EOS, max_len=8, greedy=False, generator=torch.Generator().manual_seed(s)))
    assert torch.equal(draw(1), draw(1))
    ids = draw(2)
    tokens, lengths = as_tokens(ids)
    assert bool(torch.isfinite(dec.log_likelihood(tokens, lengths, init, memory, mask)).all())
    after_eos = torch.cumsum((ids == EOS).long(), 1) - (ids == EOS).long() > 0
    assert bool((ids[after_eos] == 0).all())  # <pad> after </s>


@pytest.mark.parametrize("beam", [False, True])
def test_the_decoding_pad_id_fills_after_eos(beam):
    # the model's Decoding carries the vocabulary's pad id into both loops; only the filler changes
    dec = make_decoder()
    memory, mask, init = memory_batch(8, seed=16)  # rows that finish early and rows cut at max_len, both ways

    def decode(pad_id: int) -> torch.Tensor:  # a pad id the embedding has: the filler is fed back
        how = Decoding(BOS, EOS, max_len=12, pad_id=pad_id)
        return dec.beam_search(init, memory, mask, how, 3)[0] if beam else dec.generate(init, memory, mask, how)

    ids, other = decode(0), decode(1)
    after_eos = torch.cumsum((ids == EOS).long(), 1) - (ids == EOS).long() > 0
    assert bool(after_eos.any()) and not bool(after_eos.all())
    assert bool((other[after_eos] == 1).all()) and torch.equal(other[~after_eos], ids[~after_eos])
