"""Aggressive inference-network training (He et al., ICLR 2019), built from the paper's description.

While the aggressive phase lasts, every outer step first updates only the encoder side (encoder,
q(z|x), q(c|x)) on fresh batches until the objective on those batches stops improving (the mean
over a window of ``WINDOW`` batches is no lower than the previous window's, or ``max_inner``
batches), then makes one update of the decoder side (decoder and prior) alone. The phase ends when
the validation mutual information I(x; c) stops rising, or after ``aggressive_max_steps`` steps;
training then continues normally. (The original script takes one step every 15 batches and crashes
by default; see reference §3.6.)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from demvae.config import TrainConfig

if TYPE_CHECKING:
    from demvae.training.trainer import Trainer

WINDOW = 10


def encoder_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Parameters of the inference side: the encoder and each latent block except its prior."""
    params = [] if model.encoder is None else list(model.encoder.parameters())
    for block in model.latents:
        prior = getattr(block, "prior", None)
        prior_ids = {id(p) for p in prior.parameters()} if prior is not None else set()
        params += [p for p in block.parameters() if id(p) not in prior_ids]
    # a shared embedding belongs to the decoder side too: never freeze it on either side
    decoder_ids = {id(p) for p in model.decoder.parameters()}
    return [p for p in params if id(p) not in decoder_ids]


class AggressiveSchedule:
    def __init__(self, cfg: TrainConfig):
        self.max_inner = cfg.aggressive_max_inner
        self.max_steps = cfg.aggressive_max_steps

    def encoder_phase(self, trainer: Trainer, batches, weight: float,
                      decoder_params: list[torch.nn.Parameter]) -> int:
        """Encoder-only updates until the inner objective stops improving; returns the count."""
        window: list[torch.Tensor] = []
        previous = math.inf
        for n in range(1, self.max_inner + 1):
            loss, _ = trainer._loss(next(batches), weight)
            trainer._update(loss, frozen=decoder_params)
            window.append(loss.detach())
            if len(window) == WINDOW:
                current = float(torch.stack(window).mean())
                if current >= previous:
                    return n
                previous, window = current, []
        return self.max_inner

    def keep_going(self, stats: dict[str, float], state: dict[str, Any]) -> bool:
        mi = stats.get("mutual_info", 0.0)
        rising = mi > state["aggressive_mi"]
        state["aggressive_mi"] = max(state["aggressive_mi"], mi)
        return rising and state["step"] < self.max_steps
