"""Why does generation drift from its code? Diagnostics and candidate generation procedures (issue 13).

For trained runs with a Gaussian mixture latent (GM-VAE / DGM-VAE):

    python benchmarks/control_study.py RUN_DIR [RUN_DIR ...] [--split test] [--procedures prior,mode,...]
        [--diagnose] [--json OUT.json]

prints, per run, the demo's homogeneity, the diagnostics (``--diagnose``) and the ``control`` scores of
every procedure. Everything is built from the model's public objects (the mixture block's prior and
posterior maps, the decoder); the procedures are experiments. The library's ``aggregate`` procedure
(``demvae.models.generation``) is ``agg`` with per-variable statistics for joint codes without members
(``benchmarks/control_procedures.py`` scores the library's procedures).

Procedures (z for a joint code c = (c_1..c_G), then greedy decoding):

* ``prior``            z ~ p(z|c) (the paper's; ``demvae sample --code --procedure prior``)
* ``prior-t<τ>``       z = μ_c + τ σ_c ε (``prior-t0`` = ``mode``: the component means)
* ``agg``              z ~ N(m_c, S_c): the code's aggregate posterior on the train split, moment matched over
                       the members x_i (argmax code c): m_c = mean_i E[z|x_i], S_c = Cov_i E[z|x_i] + mean_i Var[z|x_i]
* ``agg-t<τ>``         the same with S_c scaled by τ² (``agg-t0``: z = m_c)
* ``agg-group``        per variable g and value k: a diagonal N(m_gk, s_gk) of the members with c_g = k (the prior's
                       shape, refitted to the posteriors), z_g drawn independently
* ``agg-soft[-t<τ>]``   as ``agg`` with every train sentence weighted by q(c|x) instead of the argmax members
* ``members[-t<τ>]``    the exact aggregate posterior: a random train member x_i of c, z = E[z|x_i] + τ·sd[z|x_i]·ε
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from demvae.data.batching import BucketBatchSampler, EncodedSplit
from demvae.data.prepare import prepare
from demvae.evaluation.clustering import joint_code, per_variable_homogeneity
from demvae.evaluation.codes import encode_codes, label_scores
from demvae.evaluation.control import ControlOptions, ControlResult, control_scores, control_table, text_classifier
from demvae.evaluation.generation import references
from demvae.evaluation.tables import format_table
from demvae.expfam import Gaussian
from demvae.models import MixtureLatent, TextVAE
from demvae.training import load_run

# --- the model's posteriors over a split ---------------------------------------------------------

@dataclass
class Posteriors:
    mean: torch.Tensor
    """E[z|x] [N, G, U]."""
    var: torch.Tensor
    """Var[z|x] [N, G, U]."""
    q_c: torch.Tensor
    """q(c|x) [N, G, K]."""

    @property
    def codes(self) -> torch.Tensor:
        return self.q_c.argmax(-1)


def mixture_block(model: TextVAE) -> MixtureLatent:
    block = model.latents[0]
    if not isinstance(block, MixtureLatent) or not isinstance(block.family, Gaussian) or not block.has_code:
        raise SystemExit("error: the study needs a Gaussian mixture latent (gm-vae / dgm-vae)")
    return block


@torch.no_grad()
def posteriors(model: TextVAE, split: EncodedSplit, batch_size: int = 500) -> Posteriors:
    model.eval()
    block = mixture_block(model)
    n, g, k, u = len(split), block.n_variables, block.n_values, block.n_units
    mean, var, q_c = torch.zeros(n, g, u), torch.zeros(n, g, u), torch.zeros(n, g, k)
    for indices in BucketBatchSampler(split.lengths, batch_size, shuffle=False).batches():
        h = model.encode(split.batch(indices).to(model.device))
        m, v = Gaussian.moments_from_natural(block.posterior_natural(h))
        mean[indices], var[indices], q_c[indices] = m.cpu(), v.cpu(), block.code_probs(h).cpu()
    return Posteriors(mean, var, q_c)


def prior_moments(model: TextVAE) -> tuple[torch.Tensor, torch.Tensor]:
    """Component means and variances [G, K, U]."""
    with torch.no_grad():
        m, v = Gaussian.moments_from_natural(mixture_block(model).prior.natural_params())
    return m.cpu(), v.cpu()


@torch.no_grad()
def decode(model: TextVAE, z: torch.Tensor) -> torch.Tensor:
    """Greedy sentences from z [n, G, U] (the decoder's h0 and, if concatenated, every input)."""
    block = mixture_block(model)
    flat = z.reshape(z.shape[0], -1).to(model.device)
    return model.decoder.generate(flat, flat if block.concat_latent else None, z.shape[0], model.decoding)


@torch.no_grad()
def log_likelihood(model: TextVAE, split: EncodedSplit, z: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """log p(x|z) per sentence, z [N, G, U] in the split's order."""
    model.eval()
    block = mixture_block(model)
    out = torch.zeros(len(split))
    for indices in BucketBatchSampler(split.lengths, batch_size, shuffle=False).batches():
        batch = split.batch(indices).to(model.device)
        flat = z[indices].reshape(len(indices), -1).to(model.device)
        ll = model.decoder.log_likelihood(batch.tokens, batch.host_lengths, flat,
                                          flat if block.concat_latent else None)
        out[indices] = ll.cpu()
    return out


# --- generation procedures: codes [n, G] -> token ids ------------------------------------------------

def named(name: str, fn):
    fn.__name__ = name
    return fn


def tempered_prior(tau: float):
    def sample(model: TextVAE, codes: torch.Tensor) -> torch.Tensor:
        mean, var = prior_moments(model)
        g = torch.arange(codes.shape[1])
        m, v = mean[g, codes.cpu()], var[g, codes.cpu()]  # [n, G, U]
        return decode(model, m + tau * v.sqrt() * torch.randn(m.shape))

    return named("mode" if tau == 0 else f"prior-t{tau:g}", sample)


@dataclass
class CodeStats:
    """Moment-matched aggregate posterior per joint code (full covariance), with hard (argmax members) or soft
    (every train sentence weighted by q(c|x)) membership, and per (variable, value) (diagonal, hard)."""

    k: int
    joint: dict[str, dict[int, tuple[torch.Tensor, torch.Tensor]]]  # hard/soft -> joint id -> (mean, chol)
    group_mean: torch.Tensor  # [G, K, U]
    group_std: torch.Tensor  # [G, K, U]
    members: dict[int, torch.Tensor]  # joint id -> member indices
    post: Posteriors


def _moments(mean: torch.Tensor, var: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and Cholesky factor of Σ_i w_i q(z|x_i) / Σ w: law of total variance, means [N, F], var [N, F]."""
    w = w / w.sum()
    m = w @ mean
    centred = mean - m
    cov = (centred * w.unsqueeze(1)).T @ centred + torch.diag(w @ var)
    return m.float(), torch.linalg.cholesky(cov).float()


def code_stats(post: Posteriors, k: int) -> CodeStats:
    codes = post.codes
    n, g, u = post.mean.shape
    joint = torch.as_tensor(joint_code(codes.numpy(), k))
    flat_mean, flat_var = post.mean.reshape(n, -1).double(), post.var.reshape(n, -1).double()
    hard, soft, members = {}, {}, {}
    for j in joint.unique().tolist():  # keyed by the code itself: joint ids are ranks within one set of rows
        idx = (joint == j).nonzero().squeeze(1)
        c = tuple(codes[idx[0]].tolist())
        members[c] = idx
        hard[c] = _moments(flat_mean[idx], flat_var[idx], torch.ones(len(idx), dtype=torch.float64))
        code = codes[idx[0]]
        w = post.q_c[:, torch.arange(g), code].double().prod(-1)  # q(c|x_i) for every train sentence [N]
        soft[c] = _moments(flat_mean, flat_var, w)
    group_mean, group_std = torch.zeros(g, k, u), torch.ones(g, k, u)
    for gi in range(g):
        for ki in range(k):
            sel = codes[:, gi] == ki
            if sel.sum() > 1:
                m = post.mean[sel, gi]
                group_mean[gi, ki] = m.mean(0)
                group_std[gi, ki] = (m.var(0) + post.var[sel, gi].mean(0)).sqrt()
    return CodeStats(k, {"hard": hard, "soft": soft}, group_mean, group_std, members, post)


def aggregate(stats: CodeStats, tau: float = 1.0, kind: str = "hard"):
    def sample(model: TextVAE, codes: torch.Tensor) -> torch.Tensor:
        ids = [tuple(c) for c in codes.cpu().tolist()]
        g, u = stats.group_mean.shape[0], stats.group_mean.shape[2]
        table = stats.joint[kind]
        z = torch.stack([table[c][0] + tau * table[c][1] @ torch.randn(g * u) for c in ids])
        return decode(model, z.view(-1, g, u))

    name = "agg" if kind == "hard" else "agg-soft"
    return named(name if tau == 1 else f"{name}-t{tau:g}", sample)


def aggregate_group(stats: CodeStats):
    def sample(model: TextVAE, codes: torch.Tensor) -> torch.Tensor:
        g = torch.arange(codes.shape[1])
        m, s = stats.group_mean[g, codes.cpu()], stats.group_std[g, codes.cpu()]
        return decode(model, m + s * torch.randn(m.shape))

    return named("agg-group", sample)


def members(stats: CodeStats, tau: float = 1.0):
    def sample(model: TextVAE, codes: torch.Tensor) -> torch.Tensor:
        ids = [tuple(c) for c in codes.cpu().tolist()]
        pick = torch.stack([stats.members[c][torch.randint(len(stats.members[c]), ())] for c in ids])
        m, v = stats.post.mean[pick], stats.post.var[pick]
        return decode(model, m + tau * v.sqrt() * torch.randn(m.shape))

    return named("members" if tau == 1 else f"members-t{tau:g}", sample)


def procedure(name: str, stats: CodeStats):
    if name == "prior" or name == "mode":
        return tempered_prior(1.0 if name == "prior" else 0.0)
    if name.startswith("prior-t"):
        return tempered_prior(float(name[len("prior-t"):]))
    if name in ("agg", "agg-soft"):
        return aggregate(stats, kind="hard" if name == "agg" else "soft")
    if name.startswith("agg-t"):
        return aggregate(stats, float(name[len("agg-t"):]))
    if name.startswith("agg-soft-t"):
        return aggregate(stats, float(name[len("agg-soft-t"):]), "soft")
    if name == "agg-group":
        return aggregate_group(stats)
    if name == "members":
        return members(stats)
    if name.startswith("members-t"):
        return members(stats, float(name[len("members-t"):]))
    raise SystemExit(f"error: unknown procedure {name!r}")


# --- diagnostics ---------------------------------------------------------------------------------

def holes(model: TextVAE, post: Posteriors) -> tuple[list[dict], dict]:
    """Per component with members: where its members' posterior means lie, in units of the component's std
    (offset: Mahalanobis distance of their mean; the rest: rms over units of the std ratios)."""
    mean, var = prior_moments(model)
    g, k, _ = mean.shape
    rows = []
    for gi in range(g):
        for ki in range(k):
            sel = post.codes[:, gi] == ki
            if sel.sum() < 2:
                continue
            m = post.mean[sel, gi]  # [n, U]
            std = var[gi, ki].sqrt()
            rows.append({
                "component": f"{gi}:{ki}", "members": int(sel.sum()),
                "offset/std": float((((m.mean(0) - mean[gi, ki]) / std).square().sum()).sqrt()),
                "spread/std": float((m.std(0) / std).square().mean().sqrt()),
                "post std/std": float((post.var[sel, gi].mean(0).sqrt() / std).square().mean().sqrt()),
                "prior std": float(std.square().mean().sqrt()),
            })
    w = np.array([r["members"] for r in rows], dtype=float)
    summary = {key: float(np.average([r[key] for r in rows], weights=w))
               for key in ("offset/std", "spread/std", "post std/std", "prior std")}
    return rows, summary


def bhattacharyya(m1: torch.Tensor, v1: torch.Tensor, m2: torch.Tensor, v2: torch.Tensor) -> float:
    """Bhattacharyya coefficient of two diagonal Gaussians (1: identical, 0: disjoint)."""
    v = (v1 + v2) / 2
    d = (m1 - m2).square() / (8 * v) + 0.5 * torch.log(v / (v1 * v2).sqrt())
    return float(torch.exp(-d.sum()))


def joint_holes(model: TextVAE, post: Posteriors, min_members: int = 30) -> dict[str, float]:
    """The prior of a joint code, Π_g p(z_g|c_g), against its members' aggregate posterior (moment matched,
    diagonal), and the same for each variable's component alone; weighted by members. Also how confident
    q(c|x) is."""
    mean, var = prior_moments(model)
    g, k, u = mean.shape
    codes = post.codes
    joint = torch.as_tensor(joint_code(codes.numpy(), k))
    # each variable's own aggregate centre: E[z_g | c_g = k] over the members of value k  [G, K, U]
    centre = torch.zeros(g, k, u)
    for gi in range(g):
        for ki in range(k):
            sel = codes[:, gi] == ki
            if sel.any():
                centre[gi, ki] = post.mean[sel, gi].mean(0)
    rows = []
    for c in joint.unique().tolist():
        idx = (joint == c).nonzero().squeeze(1)
        if len(idx) < min_members:
            continue
        cg = codes[idx[0]]
        pm, pv = mean[torch.arange(g), cg].reshape(-1), var[torch.arange(g), cg].reshape(-1)  # [G·U]
        m = post.mean[idx].reshape(len(idx), -1)
        am, av = m.mean(0), m.var(0) + post.var[idx].reshape(len(idx), -1).mean(0)
        interaction = (am - centre[torch.arange(g), cg].reshape(-1)) / pv.sqrt()
        rows.append((len(idx), float((((am - pm) / pv.sqrt()).square().sum()).sqrt()),
                     float((av / pv).mean().sqrt()), bhattacharyya(pm, pv, am, av),
                     float(interaction.square().sum().sqrt())))
    w = np.array([r[0] for r in rows], dtype=float)
    per_var = []
    for gi in range(g):
        for ki in range(k):
            sel = codes[:, gi] == ki
            if sel.sum() >= min_members:
                m = post.mean[sel, gi]
                per_var.append((int(sel.sum()), bhattacharyya(mean[gi, ki], var[gi, ki], m.mean(0),
                                                              m.var(0) + post.var[sel, gi].mean(0))))
    wv = np.array([r[0] for r in per_var], dtype=float)
    return {
        "joint codes (>= 30 train members)": len(rows),
        "joint: offset (Mahalanobis, prior std)": float(np.average([r[1] for r in rows], weights=w)),
        "joint: aggregate std/prior std": float(np.average([r[2] for r in rows], weights=w)),
        "joint: Bhattacharyya(prior, aggregate)": float(np.average([r[3] for r in rows], weights=w)),
        "joint centre - its variables' centres (Mahalanobis)": float(np.average([r[4] for r in rows], weights=w)),
        "per variable: Bhattacharyya(prior, aggregate)": float(np.average([r[1] for r in per_var], weights=wv)),
        "max_k q(c_g=k|x), mean": float(post.q_c.max(-1).values.mean()),
        "q(joint code|x), mean": float(post.q_c.max(-1).values.prod(-1).mean()),
    }


def separation(model: TextVAE, post: Posteriors, n: int = 4000) -> dict[str, float]:
    """Overlap of the components in z (per variable): how often the prior mixture itself tells a component's
    draws apart (Bayes accuracy), the median distance between component means over their rms std, and whether
    a posterior mean's most likely component agrees with the sentence's argmax code."""
    block = mixture_block(model)
    mean, var = prior_moments(model)
    g, k, u = mean.shape
    torch.manual_seed(0)
    with torch.no_grad():
        codes = torch.randint(k, (n, g))
        z = block.prior.sample(codes.to(model.device)).cpu()
        bayes = (block.prior.component_log_prob(z.to(model.device)).argmax(-1).cpu() == codes).float().mean(0)
        post_comp = block.prior.component_log_prob(post.mean.to(model.device)).argmax(-1).cpu()
    consistent = (post_comp == post.codes).float().mean(0)
    ratios = []
    iu = torch.triu_indices(k, k, 1)
    for gi in range(g):
        pooled = (var[gi].unsqueeze(0) + var[gi].unsqueeze(1)) / 2  # [K, K, U]
        d = ((mean[gi].unsqueeze(0) - mean[gi].unsqueeze(1)).square() / pooled).sum(-1).sqrt()  # Mahalanobis
        ratios.append(d[iu[0], iu[1]])
    return {"bayes_acc": float(bayes.mean()),
            "component distance (Mahalanobis), median": float(torch.cat(ratios).median()),
            "component distance (Mahalanobis), min": float(torch.cat(ratios).min()),
            "posterior mean's component == code": float(consistent.mean()),
            "posterior code entropy (nats)": float(-(post.q_c * post.q_c.clamp_min(1e-12).log()).sum(-1).mean())}


def decoder_use(model: TextVAE, split: EncodedSplit, post: Posteriors) -> dict[str, float]:
    """Extra nats per sentence when z (all of it, one variable's block, or one unit) is shuffled across
    sentences: how much the decoder reads each part of z."""
    g, u = post.mean.shape[1:]
    gen = torch.Generator().manual_seed(0)
    base = log_likelihood(model, split, post.mean)
    perm = torch.randperm(len(split), generator=gen)
    out = {"-log p(x|E[z|x])": float(-base.mean()),
           "all z shuffled": float((base - log_likelihood(model, split, post.mean[perm])).mean()),
           "z zeroed": float((base - log_likelihood(model, split, torch.zeros_like(post.mean))).mean())}
    for gi in range(g):
        z = post.mean.clone()
        z[:, gi] = post.mean[perm, gi]
        out[f"z_{gi} shuffled"] = float((base - log_likelihood(model, split, z)).mean())
    units = []
    for gi in range(g):
        for ui in range(u):
            z = post.mean.clone()
            z[:, gi, ui] = post.mean[perm, gi, ui]
            units.append(float((base - log_likelihood(model, split, z)).mean()))
    out["units: max / median nats"] = f"{max(units):.2f} / {float(np.median(units)):.2f}"
    out["units reading < 0.1 nats"] = f"{sum(x < 0.1 for x in units)}/{len(units)}"
    return out


def swap_test(model: TextVAE, vocab, split: EncodedSplit, train: EncodedSplit, post: Posteriors) -> list[dict]:
    """Decode z whose variable g comes from sentence i and the rest from a random sentence j: does the
    decoded sentence carry i's intent / style (what variable g holds, as the decoder reads it)?
    Also reconstructions (z = E[z|x]): agreement with the sentence's own labels and code recovery."""
    clfs = {}
    train_texts = [" ".join(w) for w in references(train, vocab)]
    for label, y in train.labels.items():
        clfs[label] = text_classifier().fit(train_texts, y.numpy())
    gen = torch.Generator().manual_seed(1)
    perm = torch.randperm(len(split), generator=gen)
    rows = []

    def score(z: torch.Tensor, name: str, source: torch.Tensor | None):
        ids = decode(model, z)
        words = [vocab.decode(r) for r in ids.tolist()]
        texts = [" ".join(w) for w in words]
        row = {"z": name}
        for label, clf in clfs.items():
            pred = clf.predict(texts)
            y = split.labels[label].numpy()
            row[f"{label} = x_i's"] = float(np.mean(pred == y))
            if source is not None:
                row[f"{label} = x_j's"] = float(np.mean(pred == y[source.numpy()]))
        if source is None:
            from demvae.data.types import Example
            again = encode_codes(model, EncodedSplit.from_examples([Example(tuple(w)) for w in words], vocab,
                                                                    split.max_len))
            row["code recovered"] = float(np.mean((again.codes == post.codes.numpy()).all(1)))
        rows.append(row)

    score(post.mean, "E[z|x_i] (reconstruction)", None)
    g = post.mean.shape[1]
    for gi in range(g):
        z = post.mean[perm].clone()
        z[:, gi] = post.mean[:, gi]
        score(z, f"z_{gi} from x_i, rest from x_j", perm)
    return rows


def style_content(codes, split: EncodedSplit) -> list[dict]:
    rows = []
    for label, y in split.labels.items():
        per_var = per_variable_homogeneity(codes.codes, y.numpy())
        joint = label_scores(codes, split)[label]["homogeneity"]
        rows.append({"label": label, **{f"c_{i}": h for i, h in enumerate(per_var)}, "joint code": joint})
    return rows


# --- main ----------------------------------------------------------------------------------------

def study(run_dir: Path, split_name: str, names: list[str], diagnose: bool, n_per_code: int) -> dict:
    run = load_run(run_dir, "cpu")
    model, vocab = run.model, run.vocab
    data = prepare(run.config.data, vocab)
    split, train = data.splits[split_name], data.splits["train"]
    k = model.code_shape()[1]
    codes = encode_codes(model, split)
    homog = {lab: s["homogeneity"] for lab, s in label_scores(codes, split).items()}
    out: dict = {"run": str(run_dir), "model": run.config.model_name, "homogeneity": homog,
                 "codes_used": len(set(codes.joint.tolist()))}
    print(f"\n## {run_dir} ({run.config.model_name})\n")
    print(f"homogeneity on {split_name}: " + ", ".join(f"{lab} {h:.3f}" for lab, h in homog.items())
          + f"; codes used {out['codes_used']}\n")
    t = time.perf_counter()
    train_post = posteriors(model, train)
    stats = code_stats(train_post, k)
    if diagnose:
        rows, summary = holes(model, train_post)
        out["holes"], out["holes_summary"] = rows, summary
        print(format_table(rows, list(rows[0]), title="components vs their members' posteriors (train)"))
        print("weighted:", {key: round(v, 3) for key, v in summary.items()}, "\n")
        out["joint_holes"] = joint_holes(model, train_post)
        print("joint codes:", {key: round(v, 3) for key, v in out["joint_holes"].items()}, "\n")
        out["separation"] = separation(model, train_post)
        print("separation:", {key: round(v, 3) for key, v in out["separation"].items()}, "\n")
        test_post = posteriors(model, split)
        out["decoder_use"] = decoder_use(model, split, test_post)
        print("decoder use (extra nats/sentence when shuffled):", out["decoder_use"], "\n")
        out["style_content"] = style_content(codes, split)
        print(format_table(out["style_content"], list(out["style_content"][0]),
                           title="homogeneity of each variable alone", floatfmt=".3f"))
        out["swap"] = swap_test(model, vocab, split, train, test_post)
        print(format_table(out["swap"], list(dict.fromkeys(key for r in out["swap"] for key in r)),
                           title="what the decoder reads from each variable", floatfmt=".3f"))
        print(f"(diagnostics {time.perf_counter() - t:.0f}s)\n")
    results: dict[str, ControlResult] = {}
    for name in names:
        t = time.perf_counter()
        opts = ControlOptions(n_per_code=n_per_code, procedure=procedure(name, stats))
        results[name] = control_scores(model, vocab, split, train, opts)
        print(f"  {name}: {time.perf_counter() - t:.1f}s")
    print()
    print(control_table(results, title=f"control on {split_name}, {run.config.model_name}"))
    rows = []
    for name, r in results.items():
        row = {"procedure": name, "recovery": r.recovery, "distinct": r.distinct}
        for label, s in r.labels.items():
            row[f"{label} agreement"] = s.agreement
            row[f"{label} / ceiling"] = s.agreement / s.ceiling if s.ceiling else math.nan
        rows.append(row)
    print(format_table(rows, list(rows[0]), floatfmt=".3f"))
    for name in names[:3]:
        print(f"  {name} samples:", [c.samples[0] for c in results[name].codes[:4]])
    out["control"] = {name: r.to_dict() for name, r in results.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--procedures", default="prior,mode,prior-t0.5,agg,agg-t0.5,agg-t0,agg-group,members")
    parser.add_argument("--diagnose", action="store_true")
    parser.add_argument("--n-per-code", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    names = args.procedures.split(",")
    everything = [study(r, args.split, names, args.diagnose, args.n_per_code) for r in args.runs]
    if args.json:
        args.json.write_text(json.dumps(everything, indent=1, default=str))


if __name__ == "__main__":
    main()
