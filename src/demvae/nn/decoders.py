r"""GRU decoder fed by a latent vector: ``h_0 = W z`` and, optionally, ``[emb(w_{t−1}); z]`` at every step.

``log p(x | z) = Σ_{t ≥ 1} log softmax(W_o h_t)[x_t]`` over the real tokens after ``<s>``, ``</s>``
included. Only real positions are projected onto the vocabulary (padding costs nothing there), and the
output layer + cross-entropy run fused and chunked (:func:`~demvae.nn.decoding.token_nll`): the
[positions × V] logits never exist in full, in training or in evaluation.

The recurrence runs one of two ways (``recurrence``), which give the same numbers: ``shared`` (the
input projection computed once per token and shared by the S posterior replicas of a sentence, a
hand-written scan over packed, length-sorted rows: :func:`~demvae.nn.fused.shared_input_gru`) or
``gru`` (``nn.GRU``, cuDNN on a GPU, on every replica's own copy of the inputs). ``auto``: when gradients
flow (training), ``nn.GRU``, whose replicas draw their own embedding-dropout masks as the original's do (the
scan, which shares them, measured 25 % slower on an AVX-512 CPU and 10 % faster on an AVX2 one, at the paper's
PTB configuration); without gradients on a CPU (IS-NLL, validation), the scan, which skips the padding and
the input projection of every importance sample (IS-NLL, 500 samples: 1.35 s/sentence and 0.9 GiB peak RSS
against 2.20 s and 3.1 GiB; ``results/speed-cpu.md``). On a GPU ``auto`` is cuDNN's ``nn.GRU``.
Generation always steps ``nn.GRU`` (the same parameters).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from demvae.nn.decoding import Decoding, real_targets, sample_decode, token_nll
from demvae.nn.fused import shared_input_gru

RECURRENCES = ("auto", "gru", "shared")


class LatentDecoder(nn.Module):
    def __init__(
        self,
        embedding: nn.Embedding,
        hidden_size: int,
        init_dim: int = 0,
        input_dim: int = 0,
        dropout: float = 0.3,
        tie_output: bool = True,
        recurrence: str = "auto",
        chunk_rows: int = 1024,
    ):
        super().__init__()
        if recurrence not in RECURRENCES:
            raise ValueError(f"recurrence must be one of {RECURRENCES}, got {recurrence!r}")
        if chunk_rows < 1:
            raise ValueError("chunk_rows must be >= 1")
        self.recurrence = recurrence
        """``auto``, ``gru`` or ``shared`` (module docstring); a plain attribute, so it can change after loading."""
        self.chunk_rows = chunk_rows
        """Positions per chunk of vocabulary-sized logits in :meth:`log_likelihood`."""
        vocab_size, embed_dim = embedding.weight.shape
        self.embedding = embedding
        self.hidden_size = hidden_size
        self.input_dim = input_dim
        self.init = nn.Linear(init_dim, hidden_size, bias=False) if init_dim > 0 else None
        self.rnn = nn.GRU(embed_dim + input_dim, hidden_size, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        if tie_output:
            if embed_dim != hidden_size:
                raise ValueError("a tied output layer needs embed_dim == hidden_size")
            self.out = None
        else:
            self.out = nn.Linear(hidden_size, vocab_size)

    def logits(self, hidden: Tensor) -> Tensor:
        if self.out is None:
            return hidden @ self.embedding.weight.t()
        return self.out(hidden)

    def _initial_state(self, init: Tensor | None, rows: int, ref: Tensor) -> Tensor:
        if self.init is None or init is None:
            return ref.new_zeros(1, rows, self.hidden_size)
        return self.init(init).unsqueeze(0)

    def _inputs(self, emb: Tensor, latent_input: Tensor | None) -> Tensor:
        emb = self.dropout(emb)
        if self.input_dim == 0:
            return emb
        assert latent_input is not None, "this decoder reads the latent at every step"
        return torch.cat((emb, latent_input.unsqueeze(1).expand(-1, emb.shape[1], -1)), dim=-1)

    def log_likelihood(
        self,
        tokens: Tensor,
        lengths: Tensor,
        init: Tensor | None = None,
        latent_input: Tensor | None = None,
        replicas: int = 1,
    ) -> Tensor:
        """``log p(x | z)`` per row, teacher forced.

        tokens [B, T] and lengths [B] (best on the CPU) are shared by ``replicas`` consecutive rows of
        ``init`` / ``latent_input`` ([B·replicas, F]); returns [B·replicas].
        """
        host = lengths.cpu()
        hidden_of = self._shared_hidden if self._shared_recurrence(torch.is_grad_enabled()) else self._gru_hidden
        hidden, targets, row = hidden_of(tokens, host, init, latent_input, replicas)
        weight, bias = (self.embedding.weight, None) if self.out is None else (self.out.weight, self.out.bias)
        hidden = self.dropout(hidden)
        if not torch.is_grad_enabled() and hidden.dtype in (torch.bfloat16, torch.float16):
            # evaluation under bf16 autocast (nn.GRU's bf16 states): the softmax and the NLL in float32, the
            # product still in bf16. Training keeps its bf16 softmax (the measured speed of a bf16 step).
            hidden = hidden.float()
        nll = token_nll(hidden, weight, bias, targets, self.chunk_rows)
        rows = tokens.shape[0] * replicas
        # a sentence's NLL summed in float32 at least: in bf16 a sum near 100 nats rounds to steps of 0.5
        total = torch.zeros(rows, device=nll.device, dtype=torch.promote_types(nll.dtype, torch.float32))
        return -total.index_add_(0, row, nll.to(total.dtype))

    def _shared_recurrence(self, grad: bool) -> bool:
        """Whether the scan runs (``grad``: gradients flow); ``auto`` as the module docstring says."""
        if self.recurrence == "auto":
            return not grad and self.embedding.weight.device.type == "cpu"
        return self.recurrence == "shared"

    def _gru_hidden(
        self, tokens: Tensor, host: Tensor, init: Tensor | None, latent_input: Tensor | None, replicas: int,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``nn.GRU`` over the padded batch, every replica fed its own copy of the inputs. Returns the
        states at the real positions [N, H], their targets [N] and rows [N] (row-major order)."""
        tokens = tokens[:, : int(host.max())] if host.numel() else tokens  # no step on a padding-only column
        inputs, targets = tokens[:, :-1], tokens[:, 1:]
        emb = self.embedding(inputs)
        if replicas > 1:
            emb = emb.repeat_interleave(replicas, dim=0)
            targets = targets.repeat_interleave(replicas, dim=0)
        rows, steps = targets.shape
        flat, row = real_targets(host, steps, replicas)
        flat, row = flat.to(tokens.device, non_blocking=True), row.to(tokens.device, non_blocking=True)
        hidden, _ = self.rnn(self._inputs(emb, latent_input), self._initial_state(init, rows, emb))
        return hidden.flatten(0, 1).index_select(0, flat), targets.flatten().index_select(0, flat), row

    def _shared_hidden(
        self, tokens: Tensor, host: Tensor, init: Tensor | None, latent_input: Tensor | None, replicas: int,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The same as :meth:`_gru_hidden` with the input projection shared by the replicas
        (:func:`~demvae.nn.fused.shared_input_gru`); packed (step-major) order. The replicas of a
        sentence therefore share its embedding-dropout mask (``nn.GRU`` draws one per replica): the
        same expected gradient, with the noise correlated across the S posterior samples."""
        steps = host - 1  # predicted tokens per sentence
        order = torch.argsort(steps, descending=True, stable=True)  # longest first
        span = int(steps.max()) if steps.numel() else 0
        active = torch.arange(span).unsqueeze(1) < steps[order].unsqueeze(0)  # [T, B], step-major
        sizes = active.sum(1).tolist()
        step, sentence = active.nonzero(as_tuple=True)
        sentence = order[sentence]
        replica = torch.arange(replicas)
        row = (sentence.unsqueeze(1) * replicas + replica).flatten()  # the row of every packed position
        target_pos = (sentence * tokens.shape[1] + step + 1).repeat_interleave(replicas)
        row_order = (order.unsqueeze(1) * replicas + replica).flatten()
        device = tokens.device
        row, target_pos, row_order = (t.to(device, non_blocking=True) for t in (row, target_pos, row_order))

        emb = self.dropout(self.embedding(tokens.index_select(0, order.to(device))[:, :span]))  # [B, T, E]
        w_ih, w_hh, b_ih, b_hh = self.rnn.all_weights[0]  # (typed, unlike self.rnn.weight_ih_l0)
        x_tok = F.linear(emb, w_ih[:, : emb.shape[-1]], b_ih)  # [B, T, 3H], once per token
        x_row = None
        if self.input_dim > 0:  # once per row
            assert latent_input is not None, "this decoder reads the latent at every step"
            x_row = F.linear(latent_input.index_select(0, row_order), w_ih[:, emb.shape[-1]:])
        h0 = self._initial_state(init, row_order.shape[0], w_hh)[0].index_select(0, row_order).to(w_hh.dtype)
        hidden = shared_input_gru(x_tok, x_row, h0, w_hh, b_hh, sizes, replicas)
        return hidden, tokens.flatten().index_select(0, target_pos), row

    def eval_bytes(self, rows: int, steps: int) -> int:
        """Working memory (bytes, an upper estimate) of :meth:`log_likelihood` without gradients on
        ``rows`` rows of ≤ ``steps`` predicted tokens, on this model's device: the decoder's activations,
        not its parameters. Per row: the states of every step and the step's gate temporaries (shared
        recurrence), or the repeated inputs, their projection and the outputs over the padded steps
        (``nn.GRU``); besides: one chunk of vocabulary-sized logits and log-probabilities."""
        item = self.embedding.weight.element_size()
        emb, hid, vocab = self.embedding.embedding_dim, self.hidden_size, self.embedding.num_embeddings
        if self._shared_recurrence(grad=False):
            per_row = item * (steps * hid + 10 * hid + 2 * self.input_dim) + 28 * steps  # + int64 indices
        else:
            per_row = item * steps * (2 * emb + self.input_dim + 5 * hid) + 28 * steps
        return 2 * item * self.chunk_rows * vocab + rows * per_row

    @torch.no_grad()
    def generate(self, init: Tensor | None, latent_input: Tensor | None, rows: int, decoding: Decoding) -> Tensor:
        """Decode ``rows`` sequences as ``decoding`` says; returns ids [rows, ≤ max_len−1] (``</s>`` then
        ``<pad>``)."""

        def step(word: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
            hidden, state = self.rnn(self._inputs(self.embedding(word), latent_input), state)
            return self.logits(hidden[:, -1]), state

        state = self._initial_state(init, rows, self.embedding.weight)
        return sample_decode(step, state, rows, decoding)
