"""Posterior statistics of a model over a whole split, in one pass: the trainer's validation, and
(on the test split, as the original did) the KL / MI / Var columns of the paper's tables.

Reported per sentence (means over the split): every per-example term of :class:`~demvae.terms.Terms`
summed over its variables (``rec``, ``kl_c``, ``kl_z_avg``, ``dispersion``, ``param_var``,
``supervision``), ``kl_z`` = ``kl_z_avg + dispersion`` (the exact KL), ``neg_elbo``, ``loss`` (the
training objective at w = 1) and ``ppl`` (of ``rec``); and over the split as a whole:
``mutual_info`` = I(x; c) per variable averaged over the variables (the paper's footnote 5),
computed from the split's aggregate posterior ``q̄(c) = mean_x q(c|x)`` (the original averaged
per-batch estimates, which are biased low), ``components_used`` (how many of the M·K components
receive at least 1% of the aggregate mass) and ``codes_used`` (how many joint codes argmax q(c|x) the split's
sentences fall into). :func:`collapse_warning` reads the last two and the MI: the collapse guard.

:func:`dialog_stats` is stage 2's validation of a dialog model: NLL per predicted token (and its
perplexity), the policy's and the attribute loss's cross-entropies and error rates against the
stage-1 code (means over the split's N·M code variables), ``loss`` (stage 2's objective over the
whole split), and the two selection statistics
``nll_policy`` = nll + policy (the original's for DGM-VAE) and ``errors`` = policy_error +
attribute_error (for DI-VAE).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch

from demvae.config import DialogConfig
from demvae.data.batching import BucketBatchSampler, EncodedSplit, iterate
from demvae.models import DialogModel, TextVAE
from demvae.objectives import ObjectiveConfig, entropy, objective, perplexity


@dataclass(frozen=True)
class ValidationStats:
    """The statistics of one validation, each field a metric key (:mod:`demvae.metrics`), in the order
    ``metrics.jsonl`` and ``metrics-<split>.json`` record them."""

    def value(self, key: str) -> float:
        """The statistic that a selection metric (``train.select_metric``'s key, ``dialog.select_metric``) names."""
        return self.record()[key]

    def record(self) -> dict[str, Any]:
        """The statistics as the files record them (a term the model lacks left out)."""
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}


@dataclass(frozen=True, kw_only=True)
class PosteriorStats(ValidationStats):
    """A sentence model's posterior statistics of a split (the module's docstring); None: the model has no such
    term (no code: no ``mutual_info`` and the code counts)."""

    rec: float
    kl_c: float | None = None
    kl_z_avg: float | None = None
    dispersion: float | None = None
    param_var: float | None = None
    supervision: float | None = None
    neg_elbo: float
    loss: float
    ppl: float
    kl_z: float | None = None
    mutual_info: float | None = None
    mutual_info_sum: float | None = None
    components_used: int | None = None
    codes_used: int | None = None


@dataclass(frozen=True)
class DialogStats(ValidationStats):
    """Stage 2's validation of a dialog model (the module's docstring)."""

    nll: float
    policy: float
    attribute: float
    policy_error: float
    attribute_error: float
    ppl: float
    loss: float
    nll_policy: float
    errors: float


@torch.no_grad()
def posterior_stats(
    model: TextVAE,
    split: EncodedSplit,
    objective_cfg: ObjectiveConfig,
    batch_size: int = 100,
    n_samples: int = 1,
) -> PosteriorStats:
    was_training = model.training
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    q_sum = q_entropy = None
    codes: list[torch.Tensor] = []
    n, n_targets = 0, 0
    for batch in iterate(split, BucketBatchSampler(split.lengths, batch_size, shuffle=False)):
        batch = batch.to(model.device)
        terms = model(batch, n_samples)
        values = {**terms.example_totals(), "neg_elbo": terms.neg_elbo()}
        values = {k: v.sum() for k, v in values.items()}
        values["loss"] = objective(terms, objective_cfg, 1.0) * batch.size
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + v.double()
        q = model.code_probs(batch)
        if q is not None:  # the aggregate posterior, for I(x; c) over the whole split
            q_sum = q.sum(0).double() if q_sum is None else q_sum + q.sum(0).double()
            h = entropy(q).sum(0).double()
            q_entropy = h if q_entropy is None else q_entropy + h
            powers = q.shape[-1] ** torch.arange(q.shape[1], device=q.device)  # [M]: the joint code's digits
            codes.append((q.argmax(-1) * powers).sum(-1))  # [B]
        n += batch.size
        n_targets += batch.n_targets
    out: dict[str, Any] = {k: float(v) / n for k, v in sums.items()}
    out["ppl"] = perplexity(out["rec"] * n, n_targets)
    if "kl_z_avg" in out:
        out["kl_z"] = out["kl_z_avg"] + out.get("dispersion", 0.0)
    if q_sum is not None and q_entropy is not None:
        q_bar = q_sum / n
        mi = entropy(q_bar) - q_entropy / n  # [M]
        out["mutual_info"] = float(mi.mean())
        out["mutual_info_sum"] = float(mi.sum())
        out["components_used"] = int((q_bar > 0.01).sum())
        out["codes_used"] = int(torch.cat(codes).unique().numel())
    model.train(was_training)
    return PosteriorStats(**out)


MIN_MUTUAL_INFO = 0.01
"""Nats per variable below which a model's codes say nothing about its sentences (the collapse guard)."""


def collapse_warning(mi: float, used: int | None, step: int) -> str | None:
    """Why the codes of the checkpoint selected at ``step`` are collapsed (``used``: one joint code in use, or
    ``mi``: I(x; c) < :data:`MIN_MUTUAL_INFO` per variable), with the usual cause and the fix; None if they are
    not. (``used`` None: not recorded.)"""
    if (used is None or used > 1) and mi >= MIN_MUTUAL_INFO:
        return None
    return (f"the codes of the selected checkpoint (step {step}) collapsed: {used} joint code(s) in use on the "
            f"validation split, MI {mi:.3f} nats per variable (< {MIN_MUTUAL_INFO} or one code), so they say "
            "nothing about the sentences and a second stage or a table built on them is meaningless. Usual cause: "
            "the KL weight w(t) reached 1 before the decoder used z (too few steps for the annealing schedule, or "
            "no dispersion term). Fix: train longer with the schedule scaled along (train.max_steps, "
            "objective.anneal_x0, objective.anneal_k), or raise objective.beta")


@torch.no_grad()
def dialog_stats(model: DialogModel, split: EncodedSplit, dialog: DialogConfig,
                 batch_size: int = 100) -> DialogStats:
    was_training = model.training
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    n = 0
    for batch in iterate(split, BucketBatchSampler(split.lengths, batch_size, shuffle=False)):
        terms = model(batch.to(model.device))
        values = {"nll": terms.nll.sum(), "n_tokens": terms.n_tokens.sum(),
                  **{k: getattr(terms, k).mean(1).sum() for k in
                     ("policy", "attribute", "policy_error", "attribute_error")}}
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + v.double()
        n += batch.size
    tokens = float(sums.pop("n_tokens"))
    out = {k: float(v) / n for k, v in sums.items()}
    out["nll"] = float(sums["nll"]) / tokens
    out["ppl"] = perplexity(float(sums["nll"]), int(tokens))
    out["loss"] = out["nll"] + out["policy"] + dialog.attribute_weight * out["attribute"]  # dialog_objective
    out["nll_policy"] = out["nll"] + out["policy"]
    out["errors"] = out["policy_error"] + out["attribute_error"]
    model.train(was_training)
    return DialogStats(**out)
