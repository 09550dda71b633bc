"""Aggressive inference-network training (He et al., ICLR 2019), built from the paper's description.

While the aggressive phase lasts, every outer step first updates only the inference side (encoder,
q(z|x), q(c|x)) on fresh batches until the objective on those batches stops improving (the mean
over a window of ``WINDOW`` batches is no lower than the previous window's, or ``max_inner``
batches), then the trainer makes one update of the generative side (decoder and prior) alone. The
phase ends when the validation mutual information I(x; c) stops rising, or after
``aggressive_max_steps`` steps; training then continues normally. (The original script takes one
step every 15 batches and crashes by default; see reference §3.6.)

The trainer drives it through a narrow interface: ``encoder_phase(step, batches)`` with the
trainer's own update as ``step(batch, frozen) -> loss``, and ``after_validation(state, mi, step)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from demvae.config import TrainConfig
from demvae.data.types import Batch
from demvae.models.textvae import TextVAE

WINDOW = 10


@dataclass
class AggressiveState:
    active: bool = True
    best_mi: float = -math.inf


def split_parameters(model: TextVAE) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(inference side, generative side): the encoder and each latent block except its prior,
    vs. everything else. A shared embedding belongs to the decoder, so it is never frozen in the
    decoder step."""
    decoder_ids = {id(p) for p in model.decoder.parameters()}
    inference = [] if model.encoder is None else list(model.encoder.parameters())
    for block in model.latents:
        prior = getattr(block, "prior", None)
        prior_ids = {id(p) for p in prior.parameters()} if prior is not None else set()
        inference += [p for p in block.parameters() if id(p) not in prior_ids]
    inference = [p for p in inference if id(p) not in decoder_ids]
    inference_ids = {id(p) for p in inference}
    return inference, [p for p in model.parameters() if id(p) not in inference_ids]


class AggressiveSchedule:
    def __init__(self, cfg: TrainConfig, model: TextVAE):
        self.max_inner = cfg.aggressive_max_inner
        self.max_steps = cfg.aggressive_max_steps
        self.inference, self.generative = split_parameters(model)

    def encoder_phase(self, step: Callable[[Batch, list[nn.Parameter]], Tensor], batches: Iterator[Batch]) -> int:
        """Inference-side updates (generative side frozen) until the inner objective stops
        improving; returns how many were made."""
        window: list[Tensor] = []
        previous = math.inf
        for n in range(1, self.max_inner + 1):
            window.append(step(next(batches), self.generative))
            if len(window) == WINDOW:
                current = float(torch.stack(window).mean())
                if current >= previous:
                    return n
                previous, window = current, []
        return self.max_inner

    def after_validation(self, state: AggressiveState, mi: float, step: int) -> None:
        """The phase goes on while the validation MI keeps rising (and before ``max_steps``)."""
        rising = mi > state.best_mi
        state.best_mi = max(state.best_mi, mi)
        state.active = rising and step < self.max_steps
