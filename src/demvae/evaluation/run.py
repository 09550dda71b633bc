"""``demvae eval``: every metric of the paper for a run folder, written to ``metrics.json``.

Metric groups (``--metrics``) of a sentence model: ``posterior`` (rec, KL(z), KL(c), dispersion, Var,
MI, ...), ``nll`` (importance-sampled), ``bleu`` (reconstruction), ``prior`` (samples → wKL and rPPL),
``clusters`` (homogeneity etc. of the codes with every gold label, supervised accuracies). Of a dialog
model: ``responses`` (the paper's Table 3: BLEU of the generated responses with the speaker-token
convention, sacreBLEU, the embedding metrics; every response written to ``responses-<split>.tsv``)
and ``clusters`` (the stage-1 codes of the responses).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from demvae.config import RunConfig, replace
from demvae.data.corpora import resolve_data_dir
from demvae.data.prepare import check_split, prepare
from demvae.device import resolve_device
from demvae.errors import ConfigError
from demvae.evaluation.codes import encode_codes, label_scores, supervised_accuracy
from demvae.evaluation.generation import (
    bleu_scores,
    contexts,
    dialog_responses,
    prior_samples,
    reconstructions,
    references,
)
from demvae.evaluation.likelihood import importance_sampled_nll
from demvae.evaluation.responses import (
    SMD_VECTORS,
    VECTORS_LABEL,
    load_response_vectors,
    response_bleu,
    response_embedding_scores,
)
from demvae.evaluation.rppl import reverse_perplexity
from demvae.evaluation.wkl import word_kl
from demvae.io import write_json, write_text
from demvae.training import load_run
from demvae.training.validation import posterior_stats

SENTENCE_GROUPS = ("posterior", "nll", "bleu", "prior", "clusters")
DIALOG_GROUPS = ("responses", "clusters")
METRIC_GROUPS = ("posterior", "nll", "bleu", "prior", "clusters", "responses")


@dataclass
class EvalOptions:
    split: str = "test"
    metrics: tuple[str, ...] | None = None
    """Metric groups; None: every group that applies to the run (sentence or dialog model)."""
    is_samples: int = 500
    n_prior_samples: int = 40000
    rppl_steps: int | None = None
    device: str = "auto"
    data_dir: str | None = None
    seed: int = 0
    max_examples: dict[str, int] | None = None
    """Replace the run's ``data.max_examples`` for evaluation (e.g. ``{}``: every test example)."""
    vectors: str | None = None
    """A word-vector text file (GloVe format): adds embedding average/extrema/greedy of reconstructions, or of
    a dialog model's responses (which otherwise use the data folder's ``glove/glove.6B.50d.smd.txt``)."""
    lowercase_vectors: bool = False
    """Look words up lower-cased in ``vectors`` (an uncased file); the original looks them up as they are. The
    responses group's own stand-in vectors (uncased GloVe 6B) are always looked up lower-cased."""


def _groups(opts: EvalOptions, dialog: bool, run_dir: str | Path) -> tuple[str, ...]:
    applicable = DIALOG_GROUPS if dialog else SENTENCE_GROUPS
    groups = applicable if opts.metrics is None else tuple(opts.metrics)
    unknown = sorted(set(groups) - set(METRIC_GROUPS))
    if unknown:
        raise ConfigError(f"unknown metric group(s) {', '.join(unknown)}; valid: {', '.join(METRIC_GROUPS)}")
    wrong = [g for g in groups if g not in applicable]
    if wrong:
        kind = "a dialog run" if dialog else "a sentence model (the responses group needs a dialog run)"
        hint = f"; its stage-1 sentence VAE is {Path(run_dir) / 'stage1'}" if dialog else ""
        raise ConfigError(f"metric group(s) {', '.join(wrong)} do not apply to {kind}: use "
                          f"{', '.join(applicable)}{hint}")
    return groups


def _response_vectors(opts: EvalOptions, cfg: RunConfig) -> tuple[Path, bool, str] | None:
    """(file, look up lower-cased, label) of the word vectors for the responses' embedding metrics, if any."""
    if opts.vectors:
        how = "lower-cased" if opts.lowercase_vectors else "case-sensitive"
        return Path(opts.vectors), opts.lowercase_vectors, f"{opts.vectors} ({how} look-up)"
    root = resolve_data_dir(cfg.data.data_dir)
    if root is not None and (root / SMD_VECTORS).is_file():
        return root / SMD_VECTORS, True, f"{VECTORS_LABEL}, lower-cased look-up"
    return None


def evaluate_run(run_dir: str | Path, opts: EvalOptions | None = None) -> dict[str, Any]:
    opts = opts or EvalOptions()
    device = resolve_device(opts.device)
    run = load_run(run_dir, str(device))
    groups = _groups(opts, run.is_dialog, run_dir)
    cfg = run.config
    if opts.data_dir is not None:
        cfg = replace(cfg, data={"data_dir": opts.data_dir})
    if opts.max_examples is not None:
        cfg = replace(cfg, data={"max_examples": opts.max_examples})
    check_split(opts.split)
    data = prepare(cfg.data, run.vocab, cfg.dialog)
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

    if "posterior" in groups:
        results.update(timed("posterior", lambda: posterior_stats(model, split, cfg.objective)))
    if "nll" in groups and not cfg.model.deterministic:
        nll = timed("nll", lambda: importance_sampled_nll(model, split, opts.is_samples))
        results.update({f"is_{k}" if k != "nll" else "nll": v for k, v in nll.items()})
    if "bleu" in groups and model.has_latent:
        hyps = timed("bleu", lambda: reconstructions(model, split, run.vocab))
        refs = references(split, run.vocab)
        results.update(bleu_scores(hyps, refs))
        if opts.vectors:
            vectors = load_response_vectors(opts.vectors, run.vocab.tokens, opts.lowercase_vectors)
            results["embedding"] = response_embedding_scores(hyps, refs, vectors, opts.lowercase_vectors)
    if "prior" in groups:
        samples = timed("sampling", lambda: prior_samples(model, run.vocab, opts.n_prior_samples, seed=opts.seed))
        train_refs = references(data.splits["train"], run.vocab)
        results["wkl"] = word_kl(samples, train_refs, variant="smoothed")
        results["wkl_paper"] = word_kl(samples, train_refs, variant="paper")
        results["prior_examples"] = [" ".join(s) for s in samples[:10]]
        rppl = timed("rppl", lambda: reverse_perplexity(samples, split, run.vocab, max_steps=opts.rppl_steps,
                                                        device=str(device), seed=opts.seed))
        results.update(rppl)
    if "responses" in groups:
        hyps, codes_used = timed("responses", lambda: dialog_responses(model, split, run.vocab, cfg.dialog))
        refs = references(split, run.vocab)
        results.update(response_bleu(hyps, refs))
        vectors = _response_vectors(opts, cfg)
        if vectors is not None:
            path, lowercase, label = vectors
            table = load_response_vectors(path, run.vocab.tokens, lowercase)
            scores = response_embedding_scores(hyps, refs, table, lowercase)
            results.update({f"embedding_{k}": v for k, v in scores.items()})
            results["embedding_vectors"] = label
        rows = ["\t".join((" | ".join(" ".join(t) for t in ctx), " ".join(r), " ".join(h), "-".join(map(str, c))))
                for ctx, r, h, c in zip(contexts(split, run.vocab), refs, hyps, codes_used.tolist())]
        write_text(Path(run_dir) / f"responses-{opts.split}.tsv",
                   "\n".join(["context\treference\tresponse\tcode", *rows]) + "\n")
        results["response_examples"] = rows[:5]
    if "clusters" in groups:
        codes = encode_codes(model, split)
        if codes is not None:
            results["homogeneity"] = {k: v for k, v in label_scores(codes, split).items()}
            results["codes_used"] = len(set(codes.joint.tolist()))
        acc = {} if run.is_dialog else supervised_accuracy(model, split)
        if acc:
            results["accuracy"] = acc
    results["seconds"] = timings
    results["options"] = asdict(opts)
    write_json(Path(run_dir) / f"metrics-{opts.split}.json", results)
    return results


def flat_row(results: dict[str, Any]) -> dict[str, Any]:
    """One table row: scalar metrics plus homogeneity/accuracy per label."""
    row = {k: v for k, v in results.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    row["model"] = results.get("model")
    for label, scores in results.get("homogeneity", {}).items():
        row[f"homog_{label}"] = scores["homogeneity"]
        row[f"v_measure_{label}"] = scores["v_measure"]
    for name, value in results.get("embedding", {}).items():
        row[f"emb_{name}"] = value
    for label, acc in results.get("accuracy", {}).items():
        row[f"acc_{label}"] = acc["accuracy"]
        row[f"majority_{label}"] = acc["majority"]
    return row
