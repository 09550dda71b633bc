r"""Gumbel-softmax relaxation of categorical samples (Jang et al. 2017).

``y = softmax((logits + g) / τ)`` with ``g = −log(−log u)``; ``hard=True`` returns the one-hot of
the argmax in the forward pass with the soft gradient (straight-through). The noise comes from an
explicit :class:`~demvae.distributed.Noise` (dimension 0 of ``logits`` = the batch's examples).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from demvae.distributed import Noise


def gumbel_softmax(logits: Tensor, temperature: float = 1.0, hard: bool = False, noise: Noise | None = None) -> Tensor:
    u = (noise or Noise()).uniform(logits.shape, logits).clamp_(1e-20, 1.0 - 1e-7)
    y = torch.softmax((logits - torch.log(-torch.log(u))) / temperature, dim=-1)
    if not hard:
        return y
    one_hot = F.one_hot(y.argmax(-1), y.shape[-1]).to(y.dtype)
    return one_hot + y - y.detach()
