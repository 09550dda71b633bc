"""``demvae eval``: every metric of the paper for a run folder, written to ``metrics-<split>.json``.

Metric groups (``--metrics``) of a sentence model: ``posterior`` (rec, KL(z), KL(c), dispersion, Var,
MI, ...), ``nll`` (importance-sampled), ``bleu`` (reconstruction), ``prior`` (samples → wKL and rPPL),
``clusters`` (homogeneity etc. of the codes with every gold label, supervised accuracies, and of the lexical
baseline's clusters, :mod:`.baseline`), ``control``
(sentences generated from each code by a generation procedure: code recovery, label agreement against its
ceiling and chance; :mod:`.control`). Of a dialog
model: ``responses`` (the paper's Table 3: BLEU of the generated responses with the speaker-token
convention, sacreBLEU, the embedding metrics; every response written to ``responses-<split>.tsv``
beside the metrics file) and ``clusters`` (the stage-1 codes of the responses).

The sampling budget fits the device unless given: the paper's 500 importance samples, 40,000 prior
samples and a 4,000-step rPPL language model on a GPU (or with ``paper=True``), a budget of seconds
to minutes on a CPU. Every group runs in one precision (``precision``: fp32, bf16 autocast, or auto, the
training's ``train.amp: auto`` decision; recorded in the results). Each group is seeded on its own, so a
number does not depend on which others ran.

The metrics file records the SHA-256 of the ``model.safetensors`` it measured (``model_sha256``) and which
keys each group wrote (``groups``). It is rewritten atomically after every group, each finished group
replacing its own entries of the file: an evaluation interrupted (even by SIGKILL) keeps what it finished and
the earlier evaluation's other groups, provided that one measured the same model on the same split with the
same settings (else the file holds this evaluation's groups alone).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from demvae.config import RunConfig, replace
from demvae.data.corpora import resolve_data_dir
from demvae.data.fingerprint import locate
from demvae.data.prepare import check_split, prepare
from demvae.device import autocast, resolve_device, resolve_precision
from demvae.errors import CheckpointError, ConfigError
from demvae.evaluation.baseline import split_baseline
from demvae.evaluation.codes import encode_codes, format_code, label_scores, supervised_accuracy
from demvae.evaluation.control import ControlOptions, control_scores
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
from demvae.evaluation.rppl import RPPL_RECIPE, real_data_anchor, reverse_perplexity
from demvae.evaluation.wkl import word_kl
from demvae.io import write_json, write_text
from demvae.metrics import METRIC_GROUPS
from demvae.models.generation import DEFAULT, Procedure
from demvae.training import load_run
from demvae.training.outputs import check_output
from demvae.training.run_folder import RunFolder, load_code_stats
from demvae.training.validation import posterior_stats

GROUPS = {"sentence": ("posterior", "nll", "bleu", "prior", "clusters", "control"), "dialog": ("responses", "clusters")}
"""The groups that apply to each kind of run (:attr:`~demvae.training.run_folder.RunFolder.kind`)."""

PAPER_BUDGET = {"is_samples": 500, "n_prior_samples": 40_000, "rppl_steps": RPPL_RECIPE["train"]["max_steps"]}
CPU_BUDGET = {"is_samples": 50, "n_prior_samples": 5_000, "rppl_steps": 500}
"""Defaults off a GPU: enough for a ranking of models in minutes; ``--paper`` gives the paper's."""


@dataclass
class EvalOptions:
    split: str = "test"
    metrics: tuple[str, ...] | None = None
    """Metric groups; None: every group that applies to the run (sentence or dialog model)."""
    is_samples: int | None = None
    """Importance samples per sentence (None: the budget's)."""
    is_max_memory: float | None = None
    """MiB of decoder working memory per importance-sampling call (None: 8192 rows per call)."""
    n_prior_samples: int | None = None
    """Prior samples for wKL and rPPL (None: the budget's, at most twice the training split)."""
    rppl_steps: int | None = None
    """Cap on the rPPL language model's steps (None: the budget's)."""
    paper: bool = False
    """The paper's budget (500 / 40,000 / the full rPPL recipe) on any device."""
    device: str = "auto"
    precision: str = "auto"
    """fp32, bf16 (autocast: the encoder and decoder in bf16; latent terms, log-weights and their logsumexp
    in float32/float64) or auto (``train.amp: auto``'s decision for the device)."""
    corpus: str | None = None
    """Read the run's corpus from here instead (a moved file or folder)."""
    data_dir: str | None = None
    force: bool = False
    """Evaluate even if the corpus changed since training (a warning instead of an error)."""
    seed: int = 0
    max_examples: dict[str, int] | None = None
    """Replace the run's ``data.max_examples`` for evaluation (e.g. ``{}``: every test example)."""
    vectors: str | None = None
    """A word-vector text file (GloVe format): adds embedding average/extrema/greedy of reconstructions, or of
    a dialog model's responses (which otherwise use the data folder's ``glove/glove.6B.50d.smd.txt``)."""
    lowercase_vectors: bool = False
    """Look words up lower-cased in ``vectors`` (an uncased file); the original looks them up as they are. The
    responses group's own stand-in vectors (uncased GloVe 6B) are always looked up lower-cased."""
    out: str | None = None
    """Where to write the metrics file (default: the run folder; needed when it is read-only). Never another
    run's file; an existing file that is not a metrics file only with ``force`` (:mod:`demvae.training.outputs`)."""
    save: bool = True
    """Write the metrics file (the report computes what a read-only run lacks without writing it)."""
    procedure: str = DEFAULT.name
    """The ``control`` group's generation procedure (:data:`demvae.models.generation.PROCEDURES`)."""
    temperature: float | None = None
    """Its temperature (None: :meth:`~demvae.models.generation.Procedure.named`'s default for the procedure)."""
    top_p: float | None = None
    """Its top-p, for a procedure that samples words (None: 0.9)."""
    n_per_code: int = 20
    """Sentences the ``control`` group generates per code."""
    baseline: bool = True
    """The ``clusters`` group also scores the lexical baseline (k-means on TF-IDF + LSA, :mod:`.baseline`)."""
    progress: bool = False
    notes: list[str] = field(default_factory=list)


def budget(opts: EvalOptions, device: torch.device, n_train: int) -> dict[str, int]:
    """The sampling budget: explicit options win, then the paper's (GPU or ``paper``), then the CPU's."""
    if opts.paper or device.type == "cuda":
        base = PAPER_BUDGET
    else:  # prior samples: at most twice the training split; the rPPL LM: about 5 epochs of them
        n_prior = opts.n_prior_samples or min(CPU_BUDGET["n_prior_samples"], max(1000, 2 * n_train))
        epochs5 = 5 * n_prior // RPPL_RECIPE["train"]["batch_size"]
        base = {**CPU_BUDGET, "n_prior_samples": n_prior,
                "rppl_steps": min(CPU_BUDGET["rppl_steps"], max(100, epochs5))}
    chosen = {k: getattr(opts, k) if getattr(opts, k) is not None else v for k, v in base.items()}
    for key in ("is_samples", "n_prior_samples"):
        if chosen[key] < 1:
            raise ConfigError(f"{key.replace('_', '-')} must be >= 1, got {chosen[key]}")
    return chosen


def is_metrics_file(path: Path) -> bool:
    """Whether ``path`` holds what :func:`evaluate_run` writes (so ``eval --out`` may replace it)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8")) if path.stat().st_size < 2**24 else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(record, dict) and {"model", "run", "split", "budget"} <= set(record)


def metrics_path(folder: RunFolder, opts: EvalOptions) -> Path:
    """Where the results go; a read-only run folder needs ``out`` (checked before any work)."""
    own = folder.metrics_file(opts.split)
    if opts.out is not None:
        out = Path(opts.out)
        path = out / own.name if out.is_dir() or not out.suffix else out
        if path.resolve() != own.resolve():  # the run's own metrics file is no foreign output
            check_output(path, opts.force, own=is_metrics_file)
        return path
    if not os.access(folder.path, os.W_OK):
        raise CheckpointError(f"{folder.path} is read-only: pass --out DIR to write the metrics elsewhere")
    return own


def _groups(opts: EvalOptions, folder: RunFolder) -> tuple[str, ...]:
    """The requested groups (None: every group that applies), checked against the kind of run."""
    applicable = GROUPS[folder.kind]
    groups = applicable if opts.metrics is None else tuple(opts.metrics)
    wrong = [g for g in groups if g not in applicable]
    if wrong:
        raise ConfigError(f"metric group(s) {', '.join(wrong)} do not apply to {folder.name}: use "
                          f"{', '.join(applicable)}; {folder.elsewhere}")
    return groups


def evaluate_run(run_dir: str | Path, opts: EvalOptions | None = None) -> dict[str, Any]:
    opts = opts or EvalOptions()
    run_dir = Path(run_dir)
    unknown = sorted(set(opts.metrics or ()) - set(METRIC_GROUPS))
    if unknown:  # a typo fails before the model loads
        raise ConfigError(f"unknown metric group(s) {', '.join(unknown)}; valid: {', '.join(METRIC_GROUPS)}")
    check_split(opts.split)
    procedure = Procedure.named(opts.procedure, opts.temperature, opts.top_p)  # fails before the model loads
    device = resolve_device(opts.device)
    precision = resolve_precision(opts.precision, device, fix="--precision fp32 (or auto)")
    run = load_run(run_dir, device)
    wanted = _groups(opts, run.folder)
    path = metrics_path(run.folder, opts) if opts.save else None
    data_cfg, notes = locate(run.config.data, run.folder.corpus_record(), opts.corpus, opts.data_dir, opts.force)
    opts.notes.extend(notes)
    cfg = replace(run.config, data=data_cfg.__dict__)
    if opts.max_examples is not None:
        cfg = replace(cfg, data={"max_examples": opts.max_examples})
    data = prepare(cfg.data, run.vocab, cfg.dialog)
    split, model = data.splits[opts.split], run.model
    sizes = budget(opts, device, len(data.splits["train"]))
    header: dict[str, Any] = {"model": cfg.model_name, "run": str(run_dir), "split": opts.split,
                              "model_sha256": run.folder.model_sha256(), "budget": sizes, "precision": precision}
    done, timings = _earlier_groups(path, header, asdict(opts)) if path is not None else ({}, {})
    max_memory = None if opts.is_max_memory is None else int(opts.is_max_memory * 2**20)  # MiB -> bytes

    need = "the posterior and nll groups need a sentence run"
    groups: dict[str, Callable[[], dict[str, Any]]] = {
        "posterior": lambda: posterior_stats(run.sentence_model(need), split, cfg.objective).record(),
        "nll": lambda: {("nll" if k == "nll" else f"is_{k}"): v for k, v in importance_sampled_nll(
            run.sentence_model(need), split, sizes["is_samples"], max_memory=max_memory).items()},
        "bleu": lambda: _bleu(model, split, run.vocab, opts),
        "prior": lambda: _prior(model, data, split, run.vocab, sizes, device, opts.seed, precision),
        "clusters": lambda: _clusters(model, split, train=data.splits["train"] if opts.baseline else None,
                                      vocab=run.vocab, seed=opts.seed),
        "control": lambda: _control(run, data, split, procedure, opts),
        "responses": lambda: _responses(model, split, run.vocab, cfg, opts, path.parent if path else None),
    }
    skipped = {"nll": cfg.model.deterministic, "bleu": not model.has_latent, "control": model.code_shape() is None}
    chosen = [g for g in METRIC_GROUPS if g in wanted and not skipped.get(g, False)]
    for group in tqdm(chosen, desc="eval", disable=not opts.progress, leave=False):
        torch.manual_seed(opts.seed)  # each group's draws are independent of which groups ran
        t = time.perf_counter()
        with autocast(device, precision == "bf16"):  # every group's encoder and decoder passes
            done[group] = groups[group]()
        timings[group] = time.perf_counter() - t
        if path is not None:  # a complete file after every group
            write_json(path, _record(header, done, timings, opts))
    results = _record(header, done, timings, opts)
    if path is not None:
        write_json(path, results)
    return results


_NOT_SETTINGS = ("metrics", "out", "progress", "notes")
"""Options that do not change a group's numbers (which groups ran, where the file went, what was printed)."""


def _settings(options: Any) -> Any:
    if not isinstance(options, dict):
        return None
    return json.loads(json.dumps({k: v for k, v in options.items() if k not in _NOT_SETTINGS}, default=str))


def _earlier_groups(path: Path, header: dict[str, Any],
                    options: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    """The groups (their entries and seconds) of the evaluation already in ``path``, if it measured the same
    model on the same split with the same budget and settings; none otherwise."""
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}, {}
    if (not isinstance(old, dict) or header["model_sha256"] is None
            or any(old.get(k) != header[k] for k in ("model_sha256", "split", "budget"))
            or _settings(old.get("options")) != _settings(options) or not isinstance(old.get("groups"), dict)):
        return {}, {}
    done = {g: {k: old[k] for k in keys if k in old} for g, keys in old["groups"].items() if g in METRIC_GROUPS}
    return done, {g: s for g, s in old.get("seconds", {}).items() if g in done}


def _record(header: dict[str, Any], done: dict[str, dict[str, Any]], timings: dict[str, float],
            opts: EvalOptions) -> dict[str, Any]:
    """The metrics file: the header, every finished group's entries (in the groups' order), which keys each
    group wrote, the seconds per group and the options."""
    out = dict(header)
    for group in (g for g in METRIC_GROUPS if g in done):
        out.update(done[group])
    out.update(groups={g: list(done[g]) for g in METRIC_GROUPS if g in done}, seconds=timings, options=asdict(opts))
    return out


def _bleu(model, split, vocab, opts: EvalOptions) -> dict[str, Any]:
    hyps, refs = reconstructions(model, split, vocab), references(split, vocab)
    out = bleu_scores(hyps, refs)
    if opts.vectors:
        vectors = load_response_vectors(opts.vectors, vocab.tokens, opts.lowercase_vectors)
        out["embedding"] = response_embedding_scores(hyps, refs, vectors, opts.lowercase_vectors)
    return out


def _prior(model, data, split, vocab, sizes, device, seed, precision: str) -> dict[str, Any]:
    samples = prior_samples(model, vocab, sizes["n_prior_samples"], seed=seed)
    train_refs = references(data.splits["train"], vocab)
    out = {"wkl": word_kl(samples, train_refs, variant="smoothed"), "wkl_paper": word_kl(samples, train_refs, "paper"),
           "prior_examples": [" ".join(s) for s in samples[:10]]}
    lm = {"max_steps": sizes["rppl_steps"], "device": str(device), "seed": seed, "amp": precision == "bf16"}
    out.update(reverse_perplexity(samples, split, vocab, **lm))
    out.update(real_data_anchor(train_refs, len(samples), split, vocab, **lm))  # what real sentences score
    return out


def _response_vectors(opts: EvalOptions, cfg: RunConfig) -> tuple[Path, bool, str] | None:
    """(file, look up lower-cased, label) of the word vectors for the responses' embedding metrics, if any."""
    if opts.vectors:
        how = "lower-cased" if opts.lowercase_vectors else "case-sensitive"
        return Path(opts.vectors), opts.lowercase_vectors, f"{opts.vectors} ({how} look-up)"
    root = resolve_data_dir(cfg.data.data_dir)
    if root is not None and (root / SMD_VECTORS).is_file():
        return root / SMD_VECTORS, True, f"{VECTORS_LABEL}, lower-cased look-up"
    return None


def _responses(model, split, vocab, cfg: RunConfig, opts: EvalOptions, folder: Path | None) -> dict[str, Any]:
    """The dialog model's response to every context (its ``dialog.gen_*`` settings), scored against the true
    ones; every (context, reference, response, code) written to ``folder/responses-<split>.tsv`` (None: not
    written)."""
    hyps, codes = dialog_responses(model, split, vocab, cfg.dialog)
    refs = references(split, vocab)
    out = {f"response_{k}": v for k, v in response_bleu(hyps, refs).items()}
    vectors = _response_vectors(opts, cfg)
    if vectors is not None:
        file, lowercase, label = vectors
        scores = response_embedding_scores(hyps, refs, load_response_vectors(file, vocab.tokens, lowercase),
                                           lowercase)
        out.update({f"response_embedding_{k}": v for k, v in scores.items()})
        out["response_embedding_vectors"] = label
    rows = ["\t".join((" | ".join(" ".join(t) for t in ctx), " ".join(r), " ".join(h), format_code(c)))
            for ctx, r, h, c in zip(contexts(split, vocab), refs, hyps, codes.tolist())]
    if folder is not None:
        write_text(folder / f"responses-{opts.split}.tsv",
                   "\n".join(["context\treference\tresponse\tcode", *rows]) + "\n")
    out["response_examples"] = rows[:5]
    return out


def _control(run, data, split, procedure: Procedure, opts: EvalOptions) -> dict[str, Any]:
    """Generation from each code (:mod:`.control`); the statistics come from the run's own train split."""
    stats = None
    if procedure.needs_stats:
        stats = load_code_stats(run, data if opts.max_examples is None else None, opts.corpus, opts.data_dir,
                                opts.force)
    result = control_scores(run.model, run.vocab, split, data.splits["train"],
                            ControlOptions(n_per_code=opts.n_per_code, procedure=procedure, stats=stats,
                                           seed=opts.seed))
    return {"control": result.to_dict()}


def _clusters(model, split, train=None, vocab=None, seed: int = 0) -> dict[str, Any]:
    """The codes' scores; with ``train``, the lexical baseline's (as many clusters as the model's codes)."""
    out: dict[str, Any] = {}
    codes = encode_codes(model, split)
    if codes is not None:
        out["homogeneity"] = label_scores(codes, split)
        out["codes_used"] = len(set(codes.joint.tolist()))
        if train is not None:
            found = split_baseline(train, split, vocab, model.code_shape(), seed)
            if found is not None:
                out["baseline"] = found.to_dict()
    accuracy = supervised_accuracy(model, split)
    if accuracy:
        out["accuracy"] = accuracy
    return out
