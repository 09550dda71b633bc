"""``demvae eval``: every metric of the paper for a run folder, written to ``metrics.json``.

Metric groups (``--metrics``): ``posterior`` (rec, KL(z), KL(c), dispersion, Var, MI, ...),
``nll`` (importance-sampled), ``bleu`` (reconstruction), ``prior`` (samples → wKL and rPPL),
``clusters`` (homogeneity etc. of the codes with every gold label, supervised accuracies),
``control`` (sentences generated from each code: code recovery, label agreement; :mod:`.control`).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from demvae.config import replace
from demvae.data.prepare import check_split, prepare
from demvae.errors import ConfigError
from demvae.evaluation.codes import encode_codes, label_scores, supervised_accuracy
from demvae.evaluation.control import ControlOptions, control_scores
from demvae.evaluation.embedding import embedding_scores, load_word_vectors
from demvae.evaluation.generation import bleu_scores, prior_samples, reconstructions, references
from demvae.evaluation.likelihood import importance_sampled_nll
from demvae.evaluation.posterior import posterior_stats
from demvae.evaluation.rppl import reverse_perplexity
from demvae.evaluation.wkl import word_kl
from demvae.training import load_run
from demvae.training.checkpoint import write_text
from demvae.training.trainer import resolve_device

METRIC_GROUPS = ("posterior", "nll", "bleu", "prior", "clusters", "control")


@dataclass
class EvalOptions:
    split: str = "test"
    metrics: tuple[str, ...] = METRIC_GROUPS
    is_samples: int = 500
    n_prior_samples: int = 40000
    rppl_steps: int | None = None
    device: str = "auto"
    data_dir: str | None = None
    seed: int = 0
    max_examples: dict[str, int] | None = None
    """Replace the run's ``data.max_examples`` for evaluation (e.g. ``{}``: every test example)."""
    vectors: str | None = None
    """A word-vector text file (GloVe format): adds embedding average/extrema/greedy of reconstructions."""


def evaluate_run(run_dir: str | Path, opts: EvalOptions | None = None) -> dict[str, Any]:
    opts = opts or EvalOptions()
    unknown = sorted(set(opts.metrics) - set(METRIC_GROUPS))
    if unknown:
        raise ConfigError(f"unknown metric group(s) {', '.join(unknown)}; valid: {', '.join(METRIC_GROUPS)}")
    device = resolve_device(opts.device)
    run = load_run(run_dir, str(device))
    cfg = run.config
    if opts.data_dir is not None:
        cfg = replace(cfg, data={"data_dir": opts.data_dir})
    if opts.max_examples is not None:
        cfg = replace(cfg, data={"max_examples": opts.max_examples})
    check_split(opts.split)
    data = prepare(cfg.data, run.vocab)
    split = data.splits[opts.split]
    model = run.model
    torch.manual_seed(opts.seed)
    results: dict[str, Any] = {"model": cfg.model_name, "run": str(run_dir), "split": opts.split}
    timings: dict[str, float] = {}

    def timed(name, fn):
        torch.manual_seed(opts.seed)  # each group's draws are independent of which groups ran
        t = time.perf_counter()
        value = fn()
        timings[name] = time.perf_counter() - t
        return value

    if "posterior" in opts.metrics:
        results.update(timed("posterior", lambda: posterior_stats(model, split, cfg.objective)))
    if "nll" in opts.metrics and not cfg.model.deterministic:
        nll = timed("nll", lambda: importance_sampled_nll(model, split, opts.is_samples))
        results.update({f"is_{k}" if k != "nll" else "nll": v for k, v in nll.items()})
    if "bleu" in opts.metrics and model.has_latent:
        hyps = timed("bleu", lambda: reconstructions(model, split, run.vocab))
        refs = references(split, run.vocab)
        results.update(bleu_scores(hyps, refs))
        if opts.vectors:
            lower = [[[w.lower() for w in sent] for sent in side] for side in (hyps, refs)]
            vocabulary = {t.lower() for t in run.vocab.tokens}
            vectors = load_word_vectors(opts.vectors, vocabulary=vocabulary, lowercase=True)
            results["embedding"] = embedding_scores(lower[0], lower[1], vectors)
    if "prior" in opts.metrics:
        samples = timed("sampling", lambda: prior_samples(model, run.vocab, opts.n_prior_samples, seed=opts.seed))
        train_refs = references(data.splits["train"], run.vocab)
        results["wkl"] = word_kl(samples, train_refs, variant="smoothed")
        results["wkl_paper"] = word_kl(samples, train_refs, variant="paper")
        results["prior_examples"] = [" ".join(s) for s in samples[:10]]
        rppl = timed("rppl", lambda: reverse_perplexity(samples, split, run.vocab, max_steps=opts.rppl_steps,
                                                        device=str(device), seed=opts.seed))
        results.update(rppl)
    if "clusters" in opts.metrics:
        codes = encode_codes(model, split)
        if codes is not None:
            results["homogeneity"] = {k: v for k, v in label_scores(codes, split).items()}
            results["codes_used"] = len(set(codes.joint.tolist()))
        acc = supervised_accuracy(model, split)
        if acc:
            results["accuracy"] = acc
    if "control" in opts.metrics and model.code_shape() is not None:
        control = timed("control", lambda: control_scores(model, run.vocab, split, data.splits["train"],
                                                          ControlOptions(seed=opts.seed)))
        results["control"] = control.to_dict()
    results["seconds"] = timings
    results["options"] = asdict(opts)
    write_text(Path(run_dir) / f"metrics-{opts.split}.json", json.dumps(results, indent=1, default=str))
    return results


TABLE_COLUMNS = ["model", "rppl", "bleu", "wkl", "nll", "kl_z", "kl_c", "param_var", "mutual_info"]


def flat_row(results: dict[str, Any]) -> dict[str, Any]:
    """One table row: scalar metrics plus homogeneity/accuracy per label."""
    row = {k: v for k, v in results.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    row["model"] = results.get("model")
    for label, scores in results.get("homogeneity", {}).items():
        row[f"homog_{label}"] = scores["homogeneity"]
        row[f"v_measure_{label}"] = scores["v_measure"]
    for name, value in results.get("embedding", {}).items():
        row[f"emb_{name}"] = value
    if "control" in results:
        row["control_recovery"] = results["control"]["recovery"]
        for label, scores in results["control"]["labels"].items():
            row[f"control_agree_{label}"] = scores["agreement"]
            row[f"control_ceiling_{label}"] = scores["ceiling"]
    for label, acc in results.get("accuracy", {}).items():
        row[f"acc_{label}"] = acc["accuracy"]
        row[f"majority_{label}"] = acc["majority"]
    return row
