r"""Generation from a chosen discrete code: which z the decoder gets for code ``c`` and how it writes (a named
procedure).

* ``prior``: ``z ~ p(z|c)``, the code's prior component (the paper's generation and what
  ``demvae sample --code`` did before procedures existed); ``temperature`` scales its spread.
* ``mode``: the component's most probable z (its mean): one sentence per code with greedy decoding.
* ``aggregate``: ``z ~`` the code's **aggregate posterior**, the moment-matched member of the family of
  its train members' posteriors ``1/|C| Σ_{x ∈ C} q(z|x)`` (members: the train sentences whose argmax
  joint code it is): for a continuous latent (not ``family.discrete``) with at most :data:`MAX_JOINT_DIM`
  dimensions, a Gaussian over the whole z with a full covariance (``E[Var(z|x)] + Var(E[z|x])``, from the
  family's ``moments``); otherwise, and for a joint code no train sentence has, per variable and value
  (the members of ``c_i = k``: their average mean parameters, e.g. a categorical unit's average
  probabilities), drawn by the family's ``tempered_sample``. ``temperature`` scales the spread (a
  Gaussian's Cholesky factor; a discrete unit's log-probabilities are divided by it); 0 gives the mean
  (the most probable value). A value no train sentence took falls back to its prior component.
* ``nucleus``: ``aggregate``'s z (by default at temperature 0: its mean), then words sampled from the top-p
  nucleus of the decoder's distribution (Holtzman et al., 2020) instead of greedy decoding.
* ``rerank`` (the default, temperature 0, top-p 0.9): :data:`RERANK_CANDIDATES` ``nucleus`` sentences per
  sentence asked for, keeping the one with the highest ``q(c|x)``. The judge is the model's own encoder, so its
  code recovery is circular; the unfiltered recovery (``nucleus``'s) and a label classifier's agreement are the
  figures to compare.

Why not the prior: on the built-in corpus a component and the region of z its members' posteriors occupy
differ (the prior is wider and offset), so a z drawn from the prior often lands where the decoder learnt
another code's sentences; re-encoded, only 40-70 % of prior samples get their code back, 95-98 % of
``aggregate`` samples at temperature 0.5. Why sample words: nearby z decode greedily to the same sentence
(``aggregate`` writes 0.2 distinct sentences of 20 per code); sampling words from the nucleus keeps 0.7 of them
distinct at about the same recovery, but a code's sentences then drift from its majority intent on some seeds
(0.83-0.87 of the ceiling); keeping the best of 4 by ``q(c|x)`` brings the intent agreement back to 0.93-0.95 of
the ceiling with 0.62-0.64 distinct, on each of 3 seeds (README, "Generation from a code").

The per-code statistics (:class:`CodeStats`) are computed by :func:`code_stats` on the train split; the run
folder caches them (:func:`demvae.training.run_folder.load_code_stats`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

from demvae.data.batching import BucketBatchSampler, EncodedSplit
from demvae.data.types import Batch
from demvae.errors import ConfigError
from demvae.expfam import ExponentialFamily
from demvae.models.latents import Latent, MixtureLatent
from demvae.models.textvae import TextVAE

__all__ = ["PROCEDURES", "Procedure", "DEFAULT", "PAPER", "CodeStats", "code_stats", "generate_from_codes",
           "code_features", "uses_stats"]

MAX_JOINT_DIM = 64
"""Full-covariance statistics per joint code for a Gaussian z of at most this many dimensions (M·U)."""
MAX_JOINT_CODES = 4096
"""At most this many joint codes (the largest) get their own statistics."""

STATS_VERSION = 2
"""Bumped when :func:`code_stats` changes: a cached file of another version is recomputed."""

PROCEDURES = ("prior", "mode", "aggregate", "nucleus", "rerank")
"""The names of the generation procedures (module docstring)."""

NUCLEUS_TOP_P = 0.9
"""The ``nucleus`` and ``rerank`` procedures' default top-p."""
RERANK_CANDIDATES = 4
"""``rerank`` writes this many ``nucleus`` candidates per sentence and keeps the one its code fits best."""


@dataclass(frozen=True)
class Procedure:
    """A generation procedure: a name in :data:`PROCEDURES`, a temperature (>= 0; ``mode`` ignores it) and, for
    ``nucleus`` and ``rerank``, the top-p of their word sampling (0 < top_p <= 1; the others decode greedily and
    ignore it)."""

    name: str = "aggregate"
    temperature: float = 0.5
    top_p: float = NUCLEUS_TOP_P

    def __post_init__(self):
        if self.name not in PROCEDURES:
            raise ConfigError(f"unknown generation procedure {self.name!r}; known: {', '.join(PROCEDURES)}")
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            raise ConfigError(f"a generation temperature is a number >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"a top-p is a number in (0, 1], got {self.top_p}")

    @classmethod
    def named(cls, name: str, temperature: float | None = None, top_p: float | None = None) -> Procedure:
        """The procedure ``name``; without a temperature, 0.5 for ``aggregate``, 0 for ``nucleus`` and
        ``rerank`` (z = the aggregate posterior's mean: their variety comes from the words), 1 otherwise; without
        a top-p, :data:`NUCLEUS_TOP_P`."""
        if temperature is None:
            temperature = {"aggregate": 0.5, "nucleus": 0.0, "rerank": 0.0}.get(name, 1.0)
        return cls(name, temperature, NUCLEUS_TOP_P if top_p is None else top_p)

    @property
    def needs_stats(self) -> bool:
        return self.name in ("aggregate", "nucleus", "rerank")

    @property
    def samples_words(self) -> bool:
        """Whether the decoder samples words (from the top-p nucleus) instead of decoding greedily."""
        return self.name in ("nucleus", "rerank")

    @property
    def unfiltered(self) -> Procedure | None:
        """For a procedure that filters candidates by the model's own ``q(c|x)`` (``rerank``), the procedure that
        writes the candidates (``nucleus``); None for the others."""
        return Procedure("nucleus", self.temperature, self.top_p) if self.name == "rerank" else None

    @property
    def label(self) -> str:
        """Short, for tables and file records: ``aggregate-t0.5``, ``nucleus-t0.5-p0.9``, ``prior``, ``mode``."""
        if self.name == "mode" or (self.name == "prior" and self.temperature == 1.0):
            return self.name
        if self.samples_words:
            return f"{self.name}-t{self.temperature:g}-p{self.top_p:g}"
        return f"{self.name}-t{self.temperature:g}"

    def describe(self) -> str:
        """One line for the command line's output."""
        what = {"prior": "z ~ p(z|code), the code's prior component",
                "mode": "z = the mean of the code's prior component",
                "aggregate": "z ~ the code's aggregate posterior on the train split",
                "nucleus": "z ~ the code's aggregate posterior on the train split, words sampled from the "
                           "top-p nucleus",
                "rerank": f"the best of {RERANK_CANDIDATES} nucleus sentences by q(code|x)"}[self.name]
        temperature = "" if self.name == "mode" else f", temperature {self.temperature:g}"
        top_p = f", top-p {self.top_p:g}" if self.samples_words else ""
        return f"generation procedure: {self.name} ({what}{temperature}{top_p})"


DEFAULT = Procedure("rerank", 0.0, NUCLEUS_TOP_P)
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
    """The latent family's registry name (``gaussian``, ``categorical``, ``poisson``), a record."""
    joint: dict[tuple[int, ...], tuple[Tensor, Tensor, int]] = field(default_factory=dict)
    """Joint code -> (mean [M·U], Cholesky factor of the covariance [M·U, M·U], members) of a continuous z."""

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "counts": self.counts.tolist(), "mean_params": self.mean_params.tolist(),
                "joint": [{"code": list(code), "members": n, "mean": mean.tolist(), "chol": chol.tolist()}
                          for code, (mean, chol, n) in self.joint.items()]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CodeStats:
        joint = {tuple(j["code"]): (torch.tensor(j["mean"], dtype=torch.float32),
                                    torch.tensor(j["chol"], dtype=torch.float32), int(j["members"]))
                 for j in d.get("joint", [])}
        return cls(torch.tensor(d["mean_params"], dtype=torch.float32), torch.tensor(d["counts"], dtype=torch.long),
                   d["family"], joint)


def uses_stats(model, procedure: Procedure) -> bool:
    """Whether ``procedure`` needs :class:`CodeStats` for ``model`` (a DI-VAE's code is all its decoder sees: no
    procedure needs them)."""
    latents = getattr(model, "latents", None)
    return procedure.needs_stats and (latents is None or any(b.has_code and isinstance(b, MixtureLatent)
                                                             for b in latents))


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
    full = not block.family.discrete and m * u <= MAX_JOINT_DIM
    sums, counts = None, torch.zeros(m, k, dtype=torch.float64)
    all_codes, all_mp = [], []
    for indices in BucketBatchSampler(split.lengths, batch_size, shuffle=False).batches():
        h = model.encode(split.batch(indices).to(model.device)).float()
        q = block.code_probs(h)
        assert q is not None  # a coded block
        codes = q.argmax(-1).cpu()  # [B, M]
        members = torch.nn.functional.one_hot(codes, k).double()  # [B, M, K]
        mp = block.family.mean_params(block.posterior_natural(h)).reshape(len(indices), m, u, -1).double().cpu()
        part = torch.einsum("bmk,bmup->mkup", members, mp)
        sums = part if sums is None else sums + part
        counts += members.sum(0)
        if full:
            all_codes.append(codes)
            all_mp.append(mp)
    if sums is None:
        raise ConfigError("the aggregate posterior needs a non-empty train split")
    means = sums / counts.clamp(min=1)[..., None, None]
    stats = CodeStats(means.float(), counts.long(), block.family.name)
    if full:
        stats.joint = _joint_stats(block.family, torch.cat(all_codes), torch.cat(all_mp))
    return stats


def _joint_stats(family: ExponentialFamily, codes: Tensor,
                 mean_params: Tensor) -> dict[tuple[int, ...], tuple[Tensor, Tensor, int]]:
    """Per joint code (the largest :data:`MAX_JOINT_CODES`), the mean and Cholesky factor of the covariance of
    its members' posterior mixture: codes [N, M], a scalar family's mean parameters [N, M, U, P] (float64)."""
    n = codes.shape[0]
    mean, var = (v.reshape(n, -1) for v in family.moments(mean_params))  # [N, F] each
    values, inverse, sizes = torch.unique(codes, dim=0, return_inverse=True, return_counts=True)
    order = torch.argsort(-sizes, stable=True)[:MAX_JOINT_CODES]
    out = {}
    for j in order.tolist():
        rows = inverse == j
        mu = mean[rows].mean(0)
        centred = mean[rows] - mu
        cov = centred.T @ centred / int(sizes[j]) + torch.diag(var[rows].mean(0))  # law of total variance
        chol = torch.linalg.cholesky(cov + 1e-8 * torch.eye(cov.shape[0], dtype=cov.dtype))
        out[tuple(int(v) for v in values[j])] = (mu.float(), chol.float(), int(sizes[j]))
    return out


def _draw(block: MixtureLatent, codes: Tensor, procedure: Procedure, stats: CodeStats | None) -> Tensor:
    """z for codes [N, M] under ``procedure``: [N, M, U, *event]."""
    prior, family = block.prior, block.family
    if procedure.name == "mode":
        return prior.mode(codes)
    if procedure.name == "prior" and procedure.temperature == 1.0:
        return prior.sample(codes)  # bit for bit the paper's (and the library's earlier) prior samples
    chosen = family.mean_params(prior.chosen(codes))  # [N, M, U, P']
    aggregate = procedure.needs_stats  # aggregate, nucleus: z from the code's aggregate posterior
    if aggregate:
        if stats is None:
            raise ConfigError(f"the {procedure.name} procedure needs the codes' posterior statistics (CodeStats)")
        variables = torch.arange(block.n_variables, device=codes.device)
        agg = stats.mean_params.to(chosen.device, chosen.dtype)[variables.unsqueeze(0), codes]  # [N, M, U, P']
        seen = stats.counts.to(codes.device)[variables.unsqueeze(0), codes] > 0  # [N, M]
        chosen = torch.where(seen[..., None, None], agg, chosen)  # a value no train sentence took: its prior
    t = procedure.temperature
    z = family.tempered_sample(chosen, t)
    if aggregate and stats is not None and stats.joint:  # codes with their own statistics: the whole z at once
        rows = [i for i, c in enumerate(codes.tolist()) if tuple(c) in stats.joint]
        if rows:
            mu = torch.stack([stats.joint[tuple(codes[i].tolist())][0] for i in rows]).to(z)
            chol = torch.stack([stats.joint[tuple(codes[i].tolist())][1] for i in rows]).to(z)
            eps = torch.randn(mu.shape, device=z.device, dtype=z.dtype)
            joint = mu + t * (chol @ eps.unsqueeze(-1)).squeeze(-1)
            z = z.clone()
            z[rows] = joint.view(len(rows), *z.shape[1:])
    return z


def code_features(block: Latent, codes: Tensor, procedure: Procedure, stats: CodeStats | None) -> Tensor:
    """The decoder features of one latent block for codes [N, M]."""
    if not isinstance(block, MixtureLatent):  # the code itself is the feature (DI-VAE): nothing to choose
        return block.prior_features(codes.shape[0], codes)
    return block.features(_draw(block, codes, procedure, stats), codes)


@torch.no_grad()
def generate_from_codes(model: TextVAE, codes: Tensor, procedure: Procedure = DEFAULT,
                        stats: CodeStats | None = None, greedy: bool = True) -> Tensor:
    """One sentence per row of ``codes`` [N, M] (token ids [N, L], ``</s>`` then ``<pad>``). ``prior`` at
    temperature 1 equals :meth:`TextVAE.sample_prior` with the same codes and random state."""
    if model.code_shape() is None:
        raise ConfigError("generation from a code needs a model with a discrete code")
    codes = codes.to(model.device)
    if procedure.name == "rerank":
        return _rerank(model, codes, procedure, stats)
    return _decode(model, codes, procedure, stats, greedy)


def _decode(model: TextVAE, codes: Tensor, procedure: Procedure, stats: CodeStats | None, greedy: bool) -> Tensor:
    n, features = codes.shape[0], []
    for block in model.latents:  # as sample_prior: every block with a code gets the codes
        features.append((code_features(block, codes, procedure, stats) if block.has_code
                         else block.prior_features(n, None)).to(model.device))
    init, inputs = model.decoder_inputs(features)
    if procedure.samples_words:
        return model.decoder.generate(init, inputs, n, replace(model.decoding, greedy=False, top_p=procedure.top_p))
    return model.decoder.generate(init, inputs, n, replace(model.decoding, greedy=greedy))


def _rerank(model: TextVAE, codes: Tensor, procedure: Procedure, stats: CodeStats | None) -> Tensor:
    """Per row of ``codes``, the ``nucleus`` candidate (of :data:`RERANK_CANDIDATES`) with the highest
    ``log q(code|x)``. The encoder that judges is the model's own, so the code recovery of these sentences is
    circular: the candidates' (``nucleus``'s) recovery and a label's agreement are the honest figures."""
    n, k = codes.shape[0], RERANK_CANDIDATES
    rows = codes.repeat_interleave(k, 0)
    candidates = procedure.unfiltered
    assert candidates is not None  # a rerank procedure has one
    ids = _decode(model, rows, candidates, stats, False)
    q = model.code_probs(_as_batch(model, ids))
    assert q is not None  # generate_from_codes checked the model has a code
    score = torch.gather(q.clamp(min=1e-30).log(), -1, rows.unsqueeze(-1)).squeeze(-1).sum(-1)  # [n·k] Σ_i log q(c_i|x)
    best = score.view(n, k).argmax(1)
    return ids.view(n, k, -1)[torch.arange(n, device=ids.device), best]


def _as_batch(model: TextVAE, ids: Tensor) -> Batch:
    """Generated ids [R, L] (``</s>`` then ``<pad>``, or cut without ``</s>``) as an encoder batch:
    ``<s>`` + ids, a ``</s>`` closing a cut row."""
    rows, width = ids.shape
    is_eos = ids == model.decoding.eos_id
    ended = is_eos.any(1)
    tokens = torch.cat([torch.full((rows, 1), model.decoding.bos_id, dtype=ids.dtype, device=ids.device), ids,
                        torch.zeros(rows, 1, dtype=ids.dtype, device=ids.device)], 1)
    tokens[~ended, width + 1] = model.decoding.eos_id
    lengths = torch.where(ended, is_eos.int().argmax(1) + 2, torch.full_like(ended, width + 2, dtype=torch.long))
    return Batch(tokens, lengths)
