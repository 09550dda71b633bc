r"""The pieces of the ELBO for one batch: what latent blocks and the model return, what the
objective, the trainer's meter and the posterior statistics read.

Two kinds of term, kept apart because they average differently:

* per example — a value for every sentence, ``[B]`` or ``[B, M]`` (one column per discrete
  variable); averaged over sentences: ``rec``, ``kl_c``, ``kl_z_avg``, ``dispersion``,
  ``param_var``, ``supervision``;
* per batch — a statistic of the whole batch, ``[M]``: ``mutual_info``, which needs the batch's
  aggregate posterior ``q̄(c) = mean_b q(c|x_b)`` and is therefore not a mean of per-example values.

``kl_z_avg + dispersion`` is the exact KL of z (paper §3.2); ``rec + kl_c + kl_z_avg + dispersion``
is −ELBO.

:class:`DialogTerms` are the stage-2 terms of the dialog model (paper §4.4): the response's NLL, the
policy's and the attribute loss's cross-entropies against the stage-1 code, and their error rates.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import torch
from torch import Tensor

EXAMPLE, BATCH = "example", "batch"


def _term(level: str, doc: str):
    return field(default=None, metadata={"level": level, "doc": doc})


@dataclass
class Terms:
    rec: Tensor | None = _term(EXAMPLE, "[B] −log p(x|z), averaged over the posterior samples")
    kl_c: Tensor | None = _term(EXAMPLE, "[B, M] KL(q(c_i|x) ‖ U(K))")
    kl_z_avg: Tensor | None = _term(EXAMPLE, "[B, M] KL(q(z_i|x) ‖ p̂_i) to the average prior")
    dispersion: Tensor | None = _term(EXAMPLE, "[B, M] L_d = E_q(c|x) A(η_c) − A(η̄) ≥ 0")
    param_var: Tensor | None = _term(EXAMPLE, "[B] the tables' Var (a statistic, not in the loss)")
    supervision: Tensor | None = _term(EXAMPLE, "[B] cross-entropy of supervised variables")
    mutual_info: Tensor | None = _term(BATCH, "[M] I(x; c_i) of the batch's aggregate posterior")

    @classmethod
    def names(cls, level: str | None = None) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls) if level is None or f.metadata["level"] == level)

    def present(self) -> dict[str, Tensor]:
        return {name: getattr(self, name) for name in self.names() if getattr(self, name) is not None}

    def __add__(self, other: Terms) -> Terms:
        """Merge the terms of two latent blocks: per-variable columns are concatenated, per-example
        totals added (a term only one side has is kept as is)."""
        merged = {}
        for name in self.names():
            a, b = getattr(self, name), getattr(other, name)
            if a is None or b is None:
                merged[name] = a if b is None else b
            elif a.dim() == 1 and name != "mutual_info":
                merged[name] = a + b
            else:
                merged[name] = torch.cat((a, b), dim=-1)
        return Terms(**merged)

    def neg_elbo(self) -> Tensor:
        """``−ELBO = rec + Σ_i (kl_c + kl_z_avg + dispersion)`` per example: [B]."""
        assert self.rec is not None, "−ELBO needs the reconstruction term"
        total = self.rec
        for t in (self.kl_c, self.kl_z_avg, self.dispersion):
            if t is not None:
                total = total + t.sum(-1)
        return total

    def example_totals(self) -> dict[str, Tensor]:
        """Every per-example term summed over its variables: ``{name: [B]}``."""
        out = {}
        for name in self.names(EXAMPLE):
            t = getattr(self, name)
            if t is not None:
                out[name] = t.sum(-1) if t.dim() > 1 else t
        return out

    def batch_totals(self) -> dict[str, Tensor]:
        """Every per-batch statistic summed over its variables: ``{name: scalar}``."""
        return {name: getattr(self, name).sum() for name in self.names(BATCH) if getattr(self, name) is not None}

    def detach(self) -> Terms:
        return replace(self, **{k: v.detach() for k, v in self.present().items()})


@dataclass
class DialogTerms:
    """Stage-2 terms of a dialog batch, per example; ĉ = argmax q(c|r) is the frozen stage 1's code of the
    response r, the policy's target."""

    nll: Tensor
    """[B] −log p(r | code latent, context), summed over the response's predicted tokens."""
    n_tokens: Tensor
    """[B] predicted tokens (``</s>`` included), float."""
    policy: Tensor
    """[B, M] −log p(c_i = ĉ_i | context)."""
    attribute: Tensor
    """[B, M] −log q(c_i = ĉ_i | the decoder's soft output): the frozen stage-1 posterior read on the expected
    embeddings of the decoder's output distributions (the original's attribute loss)."""
    policy_error: Tensor
    """[B, M] 1 where argmax p(c_i | context) ≠ ĉ_i."""
    attribute_error: Tensor
    """[B, M] 1 where argmax q(c_i | soft output) ≠ ĉ_i."""

    def detach(self) -> DialogTerms:
        return replace(self, **{f.name: getattr(self, f.name).detach() for f in fields(self)})

    def batch_means(self) -> dict[str, Tensor]:
        """What the trainer logs: the per-token NLL and the means over the batch's B·M code variables."""
        return {
            "nll": self.nll.sum() / self.n_tokens.sum(),
            "policy": self.policy.mean(),
            "attribute": self.attribute.mean(),
            "policy_error": self.policy_error.mean(),
            "attribute_error": self.attribute_error.mean(),
        }
