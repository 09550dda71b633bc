"""The Python API: every job of the command line as one function (``demvae CMD`` is argument parsing, one call
here, and printing).

```python
from demvae import api

run = api.train("builtin/dgm-vae", out="runs/mine", overrides={"train": {"max_steps": 200}})
results = api.evaluate(run, metrics=["posterior", "clusters"])
print(next(api.sample(run, n=3, code=[0, 0, 0])))
```

(A package of the same name, :mod:`demvae.report`, is why these live in ``demvae.api`` and not on ``demvae``
itself: importing the package would replace a ``demvae.report`` function.)
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from demvae import runs
from demvae.config import RunConfig, compose, from_dict, merge
from demvae.data.corpora.text import iter_sentences
from demvae.data.prepare import check_split
from demvae.data.tokenize import whitespace_tokenize
from demvae.device import resolve_device
from demvae.errors import DemvaeError, DemvaeWarning
from demvae.training.outputs import check_output
from demvae.training.run_folder import LoadedRun, load_code_stats, load_run, run_data

if TYPE_CHECKING:
    from demvae.evaluation.respond import Responses

PathLike = str | os.PathLike[str]
"""(The evaluation, report and generation modules, which bring scikit-learn and more, are imported by the
functions that use them: ``demvae train`` does not pay for them at start-up.)"""


def train(config: str | RunConfig | None = None, model: str | None = None, out: PathLike | None = None, *,
          overrides: dict[str, Any] | None = None, corpus: str | None = None, data_dir: PathLike | None = None,
          device: str | None = None, force: bool = False, until_step: int | None = None) -> Path:
    """Train a model and return its run folder (default ``runs/<model>-<corpus>-<time>``).

    ``config``: a packaged config (``builtin/dgm-vae``), a YAML file or a composed :class:`RunConfig`;
    ``model``: a preset (``demvae models``); ``overrides``: nested sections, e.g. ``{"train": {"max_steps": 200}}``
    (``corpus``, ``data_dir`` and ``device`` are shorthands for ``data.*`` and ``train.device``). ``force``: replace
    a run already in ``out``. A configuration too large for a CPU warns (:class:`DemvaeWarning`)."""
    values = settings(corpus, data_dir, overrides, device)
    if isinstance(config, RunConfig):  # (a model preset applies to a config being composed, not to a composed one)
        cfg = from_dict(merge(config.to_dict(), values)) if values else config
    else:
        cfg = compose(model, config, values)
    out = check_output(Path(out), folder=True) if out is not None else runs.default_run_dir(cfg)
    warning = runs.size_warning(cfg, resolve_device(cfg.train.device).type)
    if warning:
        warnings.warn(warning, DemvaeWarning, stacklevel=2)
    return runs.train(cfg, out, until_step=until_step, force=force)


def resume(run_dir: PathLike, *, overrides: dict[str, Any] | None = None, corpus: str | None = None,
           data_dir: PathLike | None = None, device: str | None = None, force: bool = False,
           until_step: int | None = None) -> Path:
    """Continue an interrupted run as it was configured (``overrides`` may change only ``train.*``; ``corpus`` /
    ``data_dir``: where its corpus is now; ``force``: go on although the corpus changed since training)."""
    return runs.resume(Path(run_dir), settings(None, None, overrides, device), until_step=until_step, corpus=corpus,
                       data_dir=str(data_dir) if data_dir else None, force=force)


def evaluate(run_dir: PathLike, *, metrics: Sequence[str] | None = None, **options: Any) -> dict[str, Any]:
    """Every metric of the paper for a run folder (``metrics``: the groups, default every group that applies),
    written to ``metrics-<split>.json`` in it (or ``out``); returns that file's record. ``options``: the fields of
    :class:`~demvae.evaluation.run.EvalOptions` (``split``, ``is_samples``, ``paper``, ``device``, ...). What the
    evaluation had to assume (a moved corpus, ...) is a :class:`DemvaeWarning`."""
    from demvae.evaluation.run import EvalOptions, evaluate_run

    fields: dict[str, Any] = {k: str(v) if isinstance(v, os.PathLike) else v for k, v in options.items()}
    opts = EvalOptions(metrics=tuple(metrics) if metrics is not None else None, **fields)
    results = evaluate_run(Path(run_dir), opts)
    for note in opts.notes:
        warnings.warn(note, DemvaeWarning, stacklevel=2)
    return results


def sample(run_dir: PathLike, n: int = 10, *, code: str | Sequence[int] | None = None, procedure: str = "rerank",
           temperature: float | None = None, top_p: float | None = None, sample_words: bool = False, seed: int = 0,
           corpus: str | None = None, data_dir: PathLike | None = None, force: bool = False,
           device: str = "cpu") -> Iterator[str]:
    """``n`` sentences (words separated by spaces), from the prior or, with ``code`` (one value per variable, e.g.
    ``[3, 0, 4]`` or ``"3,0,4"``), by a generation procedure (:meth:`Procedure.named`; ``corpus``/``data_dir``/
    ``force``: the run's corpus, for the codes' statistics if not yet saved). Generated a batch at a time as the
    iterator is read; the run is loaded and every argument checked at the call."""
    from demvae.models.generation import Procedure
    from demvae.report.stream import sample_batches

    chosen = Procedure.named(procedure, temperature, top_p)  # a bad name fails before the model loads
    run = _sentence_run(run_dir, device, "sample")
    values = stats = None
    if code is not None:
        values = _code(run, code)
        stats = load_code_stats(run, None, corpus, _str(data_dir), force) if chosen.needs_stats else None

    def lines() -> Iterator[str]:
        import torch

        torch.manual_seed(seed)  # (set at the first read: the draws do not depend on what ran in between)
        greedy = False if sample_words else None  # None: the model's default decoding
        for batch in sample_batches(run.sentence_model(), run.vocab, n, values, chosen, stats, greedy):
            yield from batch

    return lines()


def encode(run_dir: PathLike, sentences: PathLike | Iterable[str], *, device: str = "cpu") -> Iterator[str]:
    """Each sentence's discrete code and q(code|x): one line ``CODE<tab>PROBABILITY<tab>SENTENCE`` per sentence
    (an empty line for a blank one). ``sentences``: a .txt/.jsonl file (a path), or the sentences themselves (words
    separated by spaces). Encoded a batch at a time as the iterator is read."""
    from demvae.report.stream import encode_batches

    run = _sentence_run(run_dir, device, "encode")
    _code(run, None)
    tokens = (iter_sentences(Path(sentences)) if isinstance(sentences, str | os.PathLike)
              else (tuple(whitespace_tokenize(s)) for s in sentences))
    batches = encode_batches(run.sentence_model(), run.vocab, run.config.data.max_len, tokens)
    return itertools.chain.from_iterable(batches)


def clusters(run_dir: PathLike, split: str = "test", *, top: int = 5, generated: int = 3, max_clusters: int = 30,
             corpus: str | None = None, data_dir: PathLike | None = None, force: bool = False,
             device: str = "cpu") -> str:
    """The codes of a run on the whole ``split`` as text: per code its size, majority labels with purity, ``top``
    typical and ``generated`` generated sentences (a dialog run: its stage-1 codes of the responses)."""
    from demvae.evaluation.codes import encode_codes
    from demvae.report.clusters import cluster_report

    check_split(split)
    run = load_run(Path(run_dir), resolve_device(device))
    _code(run, None)
    data = run_data(run, corpus, _str(data_dir), force, max_examples={})  # whole splits
    codes = encode_codes(run.model, data.splits[split])
    assert codes is not None  # _code: the model has a discrete code
    return cluster_report(run, data.corpus, split, codes, data.splits[split], top, generated, max_clusters,
                          data=None if run.config.data.max_examples else data, train=data.splits["train"])


def respond(run_dir: PathLike, context: str, *, code: str | Sequence[int] | None = None, n: int = 5,
            z: str = "mean", beam: int = 0, seed: int = 0, device: str = "cpu") -> Responses:
    """A dialog run's answers to ``context`` (turns oldest first, separated by ``' | '``): the policy's ``n`` most
    probable codes (or ``code``) with p(code|context) and one response each (``z``: its component's mean or a
    sample; ``beam``: beam size, 0 greedy). ``str()`` of the result is ``demvae respond``'s table."""
    from demvae.config import Z_CHOICES
    from demvae.evaluation.respond import RESPONDS
    from demvae.evaluation.respond import respond as replies_for

    if z not in Z_CHOICES:
        raise DemvaeError(f"z must be one of {', '.join(Z_CHOICES)}, got {z!r}")
    run = load_run(Path(run_dir), resolve_device(device))
    run.folder.expect("dialog", RESPONDS)  # before the code is read as the model's
    values = _code(run, code) if code is not None else None
    return replies_for(run, context, values, n, z, beam, seed)


def report(folders: Sequence[PathLike], out: PathLike = "report.html", *, split: str = "test", max_codes: int = 100,
           corpus: str | None = None, data_dir: PathLike | None = None, force: bool = False,
           device: str = "auto") -> Path:
    """One self-contained HTML page for run and reproduction folders (config, metrics side by side, training
    curves, codes, latent space); returns its path."""
    from demvae.report.html import write_report

    return write_report([Path(f) for f in folders], Path(out), split, device, _str(data_dir), max_codes,
                        corpus=corpus, force=force)


def settings(corpus: str | None, data_dir: PathLike | None, overrides: dict[str, Any] | None,
             device: str | None) -> dict[str, Any]:
    """Config overrides: ``overrides`` over what a corpus, a data folder and a device (each None: unset) stand for."""
    values: dict[str, Any] = {}
    if corpus is not None:
        values = merge(values, {"data": {"corpus": corpus}})
    if data_dir is not None:
        values = merge(values, {"data": {"data_dir": str(data_dir)}})
    if device is not None:
        values = merge(values, {"train": {"device": device}})
    return merge(values, overrides or {})


def _str(path: PathLike | None) -> str | None:
    return str(path) if path else None


def _sentence_run(run_dir: PathLike, device: str, job: str) -> LoadedRun:
    """The sentence model in ``run_dir``; a clear error for a dialog run."""
    run = load_run(Path(run_dir), resolve_device(device))
    run.sentence_model(f"`demvae {job}` reads a sentence model (`demvae respond` talks to a dialog model)")
    return run


def _code(run: LoadedRun, code: str | Sequence[int] | None) -> list[int] | None:
    """``code`` checked against the run's discrete variables (None: only that it has some)."""
    from demvae.evaluation.codes import parse_code

    shape = run.model.code_shape()
    if shape is None:
        raise DemvaeError(f"model {run.config.model_name!r} has no discrete code")
    if code is None:
        return None
    return parse_code(code if isinstance(code, str) else ",".join(str(v) for v in code), shape)


__all__ = ["clusters", "encode", "evaluate", "report", "resume", "respond", "sample", "train"]
