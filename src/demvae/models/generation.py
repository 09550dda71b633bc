r"""Generation from a chosen discrete code: which z the decoder gets for code ``c`` (a named procedure).

* ``prior``: ``z ~ p(z|c)``, the code's prior component (the paper's generation and what
  ``demvae sample --code`` did before procedures existed); ``temperature`` scales its spread.
* ``mode``: the component's most probable z (its mean): one sentence per code with greedy decoding.
* ``aggregate`` (the default): ``z ~`` the code's **aggregate posterior**, per variable the
  moment-matched member of the family of its members' posteriors ``q(z_i|x)`` (x of the train split
  whose argmax ``q(c_i|x)`` is the code's value): for a Gaussian the mean and variance of the mixture
  ``1/|C| Σ_x q(z_i|x)``; for a categorical unit its average probabilities. ``temperature`` scales the
  spread (a Gaussian's standard deviation; a categorical's logits are divided by it); 0 gives the mean
  (the most probable value). A value no train sentence took falls back to its prior component.

Why not the prior: on the built-in corpus a component and the region of z its members' posteriors occupy
differ (the prior is wider and offset), so a z drawn from the prior often lands where the decoder learnt
another code's sentences; re-encoded, only 40-70 % of prior samples get their code back, 95-98 % of
``aggregate`` samples at temperature 0.5 (README, "Generation from a code").

The per-code statistics (:class:`CodeStats`) are computed by :func:`code_stats` on the train split; the run
folder caches them (:func:`demvae.training.run_folder.load_code_stats`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from demvae.data.batching import BucketBatchSampler, EncodedSplit
from demvae.errors import ConfigError
from demvae.models.latents import Latent, MixtureLatent
from demvae.models.textvae import TextVAE

__all__ = ["PROCEDURES", "Procedure", "DEFAULT", "PAPER", "CodeStats", "code_stats", "generate_from_codes",
           "code_features"]

PROCEDURES = ("prior", "mode", "aggregate")
"""The names of the generation procedures (module docstring)."""


@dataclass(frozen=True)
class Procedure:
    """A generation procedure: a name in :data:`PROCEDURES` and a temperature (>= 0; ``mode`` ignores it)."""

    name: str = "aggregate"
    temperature: float = 0.5

    def __post_init__(self):
        if self.name not in PROCEDURES:
            raise ConfigError(f"unknown generation procedure {self.name!r}; known: {', '.join(PROCEDURES)}")
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            raise ConfigError(f"a generation temperature is a number >= 0, got {self.temperature}")

    @property
    def needs_stats(self) -> bool:
        return self.name == "aggregate"

    @property
    def label(self) -> str:
        """Short, for tables and file records: ``aggregate-t0.5``, ``prior``, ``mode``."""
        if self.name == "mode" or (self.name == "prior" and self.temperature == 1.0):
            return self.name
        return f"{self.name}-t{self.temperature:g}"

    def describe(self) -> str:
        """One line for the command line's output."""
        what = {"prior": "z ~ p(z|code), the code's prior component",
                "mode": "z = the mean of the code's prior component",
                "aggregate": "z ~ the code's aggregate posterior on the train split"}[self.name]
        temperature = "" if self.name == "mode" else f", temperature {self.temperature:g}"
        return f"generation procedure: {self.name} ({what}{temperature})"


DEFAULT = Procedure("aggregate", 0.5)
"""What ``demvae sample --code``, ``demvae clusters``, the demo and the ``control`` eval group use."""
PAPER = Procedure("prior", 1.0)
"""The paper's generation (prior samples); wKL/rPPL's random-code samples always use it."""


@dataclass
class CodeStats:
    """Per variable and value, the average of its train members' posterior mean parameters ``E_q[T(z)]``."""

    mean_params: Tensor
    """[M, K, U, P'] (a Gaussian: E[z], E[z²]; a categorical: the probabilities of its first D-1 values)."""
    counts: Tensor
    """[M, K] members (x with argmax q(c_i|x) = k)."""
    family: str
    """The latent family's name (``gaussian``, ``categorical``)."""

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "counts": self.counts.tolist(), "mean_params": self.mean_params.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CodeStats:
        return cls(torch.tensor(d["mean_params"], dtype=torch.float32), torch.tensor(d["counts"], dtype=torch.long),
                   d["family"])


def _coded_block(model: TextVAE) -> Latent | None:
    return next((b for b in model.latents if b.has_code), None) if model.has_latent else None


@torch.no_grad()
def code_stats(model: TextVAE, split: EncodedSplit, batch_size: int = 200) -> CodeStats | None:
    """The aggregate posterior statistics of every code value over ``split`` (None: the model has no mixture
    code, e.g. DI-VAE, whose code is all the decoder sees)."""
    block = _coded_block(model)
    if not isinstance(block, MixtureLatent):
        return None
    model.eval()
    m, k, u = block.n_variables, block.n_values, block.n_units
    sums, counts = None, torch.zeros(m, k, dtype=torch.float64)
    for indices in BucketBatchSampler(split.lengths, batch_size, shuffle=False).batches():
        h = model.encode(split.batch(indices).to(model.device)).float()
        members = torch.nn.functional.one_hot(block.code_probs(h).argmax(-1), k).double().cpu()  # [B, M, K]
        mp = block.family.mean_params(block.posterior_natural(h)).reshape(len(indices), m, u, -1).double().cpu()
        part = torch.einsum("bmk,bmup->mkup", members, mp)
        sums = part if sums is None else sums + part
        counts += members.sum(0)
    if sums is None:
        raise ConfigError("the aggregate posterior needs a non-empty train split")
    means = sums / counts.clamp(min=1)[..., None, None]
    return CodeStats(means.float(), counts.long(), block.family.name)


def _moments(mean_params: Tensor) -> tuple[Tensor, Tensor]:
    """A Gaussian's (mean, variance) from its mean parameters (E[z], E[z²])."""
    mean = mean_params[..., 0]
    return mean, (mean_params[..., 1] - mean.square()).clamp(min=1e-8)


def _draw(block: MixtureLatent, codes: Tensor, procedure: Procedure, stats: CodeStats | None) -> Tensor:
    """z for codes [N, M] under ``procedure``: [N, M, U, *event]."""
    prior, family = block.prior, block.family
    if procedure.name == "mode":
        return prior.mode(codes)
    if procedure.name == "prior" and procedure.temperature == 1.0:
        return prior.sample(codes)  # bit for bit the paper's (and the library's earlier) prior samples
    chosen = family.mean_params(prior.chosen(codes))  # [N, M, U, P']
    if procedure.name == "aggregate":
        if stats is None:
            raise ConfigError("the aggregate procedure needs the codes' posterior statistics (CodeStats)")
        variables = torch.arange(block.n_variables, device=codes.device)
        agg = stats.mean_params.to(chosen.device, chosen.dtype)[variables.unsqueeze(0), codes]  # [N, M, U, P']
        seen = stats.counts.to(codes.device)[variables.unsqueeze(0), codes] > 0  # [N, M]
        chosen = torch.where(seen[..., None, None], agg, chosen)  # a value no train sentence took: its prior
    t = procedure.temperature
    if family.name == "gaussian":
        mean, var = _moments(chosen)
        return mean + t * var.sqrt() * torch.randn(mean.shape, device=mean.device, dtype=mean.dtype)
    if family.name == "categorical":
        probs = torch.cat([chosen, (1 - chosen.sum(-1, keepdim=True)).clamp(min=0)], -1).clamp(min=1e-12)
        if t == 0:
            index = probs.argmax(-1)
        else:
            flat = torch.softmax(probs.log() / t, -1).reshape(-1, probs.shape[-1])
            index = torch.multinomial(flat, 1).view(probs.shape[:-1])
        return family.from_index(index).to(probs.dtype)
    raise ConfigError(f"the {procedure.name} procedure with a temperature is defined for gaussian and categorical "
                      f"latents, not {family.name}: use --procedure mode or prior at temperature 1")


def code_features(block: Latent, codes: Tensor, procedure: Procedure, stats: CodeStats | None) -> Tensor:
    """The decoder features of one latent block for codes [N, M]."""
    if not isinstance(block, MixtureLatent):  # the code itself is the feature (DI-VAE): nothing to choose
        return block.prior_features(codes.shape[0], codes)
    return block._flat(_draw(block, codes, procedure, stats))


@torch.no_grad()
def generate_from_codes(model: TextVAE, codes: Tensor, procedure: Procedure = DEFAULT,
                        stats: CodeStats | None = None, greedy: bool = True) -> Tensor:
    """One sentence per row of ``codes`` [N, M] (token ids [N, L], ``</s>`` then ``<pad>``). ``prior`` at
    temperature 1 equals :meth:`TextVAE.sample_prior` with the same codes and random state."""
    if model.code_shape() is None:
        raise ConfigError("generation from a code needs a model with a discrete code")
    codes = codes.to(model.device)
    n, features = codes.shape[0], []
    for block in model.latents:  # as sample_prior: every block with a code gets the codes
        features.append((code_features(block, codes, procedure, stats) if block.has_code
                         else block.prior_features(n, None)).to(model.device))
    init, inputs = model.decoder_inputs(features)
    return model.decoder.generate(init, inputs, n, model.bos_id, model.eos_id, model.max_len, greedy)
