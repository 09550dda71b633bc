"""The ``demvae`` command line (one console script, one sub-command per job)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from demvae.errors import DemvaeError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Dispersed exponential-family mixture VAEs for interpretable text generation.")
data_app = typer.Typer(no_args_is_help=True, help="Corpora: statistics.")
app.add_typer(data_app, name="data")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Folder of the paper corpora (or $DEMVAE_DATA).")]
Sets = Annotated[list[str] | None, typer.Option("--set", help="Override: section.key=value (repeatable).")]


def _overrides(corpus: str | None, data_dir: Path | None, sets: list[str] | None, device: str | None = None) -> dict:
    from demvae.config import merge, parse_overrides

    values: dict = {}
    if corpus is not None:
        values = merge(values, {"data": {"corpus": corpus}})
    if data_dir is not None:
        values = merge(values, {"data": {"data_dir": str(data_dir)}})
    if device is not None:
        values = merge(values, {"train": {"device": device}})
    return merge(values, parse_overrides(sets or []))


@data_app.command("stats")
def data_stats(
    corpus: Annotated[str, typer.Argument(help="builtin, ptb, dailydialog, smd, or a .txt/.jsonl path")] = "builtin",
    data_dir: DataDir = None,
    max_vocab: int = 10000,
    max_len: int = 40,
    batch_size: int = 30,
):
    """Examples, tokens, vocabulary, OOV rate, lengths, truncation, labels and padding per split."""
    from demvae.data.stats import describe

    typer.echo(describe(corpus, data_dir, max_vocab=max_vocab, max_len=max_len, batch_size=batch_size))


@app.command()
def models():
    """List the model names accepted by --model."""
    from demvae.models import PRESETS

    for name, values in PRESETS.items():
        typer.echo(f"{name:20s} {values}")


@app.command()
def train(
    config: Annotated[str | None, typer.Option(help="YAML file or packaged config (e.g. ptb/dgm-vae).")] = None,
    model: Annotated[str | None, typer.Option(help="Model name (see `demvae models`).")] = None,
    corpus: Annotated[str | None, typer.Option(help="builtin, ptb, dailydialog, smd, or a .txt/.jsonl path.")] = None,
    data_dir: DataDir = None,
    set_: Sets = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (default runs/<model>-<corpus>-<time>).")] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue the interrupted run in this folder.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, or auto.")] = None,
):
    """Train a model; the run folder is all that eval/sample/encode need."""
    from demvae import runs

    if resume is not None:
        run_dir = runs.resume(resume, _overrides(None, None, set_, device))
    else:
        cfg = runs.compose(model, config, _overrides(corpus, data_dir, set_, device))
        run_dir = runs.train(cfg, out)
    typer.echo(f"run folder: {run_dir}")


@app.command()
def sample(
    run_dir: Path,
    n: Annotated[int, typer.Option("--n", min=1, help="Number of sentences.")] = 10,
    code: Annotated[str | None, typer.Option(help="Discrete code c1,c2,... (one value per variable).")] = None,
    sample_words: Annotated[bool, typer.Option("--sample-words", help="Sample words, not greedy decoding.")] = False,
    seed: int = 0,
    device: str = "cpu",
):
    """Generate sentences from the prior, optionally for a chosen discrete code."""
    import torch

    from demvae.training import load_run

    run = load_run(run_dir, device)
    codes = None
    if code is not None:
        shape = run.model.code_shape()
        if shape is None:
            raise DemvaeError(f"model {run.config.model_name!r} has no discrete code")
        try:
            values = [int(v) for v in code.split(",")]
        except ValueError:
            raise DemvaeError(f"--code expects integers separated by commas, got {code!r}") from None
        if len(values) != shape[0] or not all(0 <= v < shape[1] for v in values):
            raise DemvaeError(f"--code needs {shape[0]} values in 0..{shape[1] - 1}, got {code!r}")
        codes = torch.tensor([values] * n)
    torch.manual_seed(seed)
    ids = run.model.sample_prior(n, codes=codes, greedy=None if not sample_words else False)
    for row in ids.tolist():
        typer.echo(" ".join(run.vocab.decode(row)))


@app.command()
def encode(
    run_dir: Path,
    file: Annotated[Path, typer.Argument(help="Text file, one sentence per line (whitespace tokens).")],
    device: str = "cpu",
):
    """Print each sentence's discrete code and its probability q(code|x)."""
    from demvae.data.batching import EncodedSplit
    from demvae.data.corpora._io import read_lines
    from demvae.data.types import Example
    from demvae.evaluation.codes import encode_codes
    from demvae.training import load_run

    run = load_run(run_dir, device)
    if run.model.code_shape() is None:
        raise DemvaeError(f"model {run.config.model_name!r} has no discrete code")
    lines = [line.strip() for line in read_lines(file) if line.strip()]
    examples = [Example(tuple(line.split())) for line in lines]
    split = EncodedSplit.from_examples(examples, run.vocab, run.config.data.max_len)
    codes = encode_codes(run.model, split)
    for line, code, p in zip(lines, codes.codes, codes.confidence):
        typer.echo(f"{','.join(map(str, code))}\t{p:.3f}\t{line}")


@app.command()
def clusters(
    run_dir: Path,
    split: str = "test",
    top: int = 5,
    generated: int = 3,
    max_clusters: int = 30,
    data_dir: DataDir = None,
    device: str = "cpu",
):
    """Per discovered code: size, majority labels with purity, typical and generated sentences."""
    from demvae.config import replace
    from demvae.data.prepare import check_split, prepare
    from demvae.evaluation.codes import encode_codes
    from demvae.report.clusters import cluster_report
    from demvae.training import load_run

    run = load_run(run_dir, device)
    data_values = {"max_examples": {}}  # the whole split, whatever subset the run trained on
    if data_dir:
        data_values["data_dir"] = str(data_dir)
    data = prepare(replace(run.config, data=data_values).data, run.vocab)
    codes = encode_codes(run.model, data.splits[check_split(split)])
    if codes is None:
        raise DemvaeError(f"model {run.config.model_name!r} has no discrete code")
    typer.echo(cluster_report(run, data.corpus, split, codes, data.splits[split], top, generated, max_clusters))


@app.command("eval")
def eval_(
    run_dirs: Annotated[list[Path], typer.Argument(help="One or more run folders.")],
    metrics: Annotated[str, typer.Option(help="Comma-separated groups: posterior,nll,bleu,prior,clusters.")] =
    "posterior,nll,bleu,prior,clusters",
    split: str = "test",
    is_samples: Annotated[int, typer.Option(help="Importance samples per sentence.")] = 500,
    max_memory: Annotated[float | None, typer.Option(
        help="MiB of decoder working memory per importance-sampling call (default: 8192 rows).")] = None,
    n_prior: Annotated[int, typer.Option(help="Prior samples for wKL and rPPL.")] = 40000,
    rppl_steps: Annotated[int | None, typer.Option(help="Cap on the rPPL language model's steps.")] = None,
    data_dir: DataDir = None,
    vectors: Annotated[Path | None, typer.Option(help="GloVe-format word vectors: adds embedding metrics.")] = None,
    device: str = "auto",
):
    """Evaluate run folders (writes metrics-<split>.json in each) and print one row per model."""
    from demvae.evaluation.run import EvalOptions, evaluate_run, flat_row
    from demvae.evaluation.tables import format_table

    opts = EvalOptions(split=split, metrics=tuple(m.strip() for m in metrics.split(",") if m.strip()),
                       is_samples=is_samples, is_max_memory=max_memory, n_prior_samples=n_prior,
                       rppl_steps=rppl_steps, device=device,
                       data_dir=str(data_dir) if data_dir else None, vectors=str(vectors) if vectors else None)
    rows = [flat_row(evaluate_run(d, opts)) for d in run_dirs]
    preferred = ["model", "rppl", "bleu", "wkl", "nll", "ppl", "kl_z", "kl_c", "param_var", "mutual_info",
                 "homog_act", "homog_emotion", "homog_intent", "acc_act", "majority_act", "acc_emotion",
                 "majority_emotion", "emb_average", "emb_extrema", "emb_greedy"]
    columns = [c for c in preferred if any(c in r for r in rows)]
    typer.echo(format_table(rows, columns, title=f"{split} split"))


@app.command()
def reproduce(
    table: Annotated[str, typer.Argument(help="ptb-table1, ptb-table7, dd-table2 or dd-table6.")],
    data_dir: DataDir = None,
    scale: Annotated[str, typer.Option(help="smoke (seconds), mini (2 CPU cores), paper (GPU).")] = "mini",
    seeds: int = 1,
    jobs: Annotated[int, typer.Option(help="Rows trained concurrently.")] = 1,
    out: Path | None = None,
    corpus: Annotated[str | None, typer.Option(help="Run the rows on another corpus (e.g. builtin).")] = None,
    set_: Sets = None,
    figure: Annotated[bool, typer.Option(help="Also draw the table's figure (PTB: Figure 5; DD: Figure 4).")] = False,
    beta_grid: Annotated[str | None, typer.Option(
        help="Choose β of the dispersed rows on validation BLEU among these values, e.g. 0.7,0.9.")] = None,
    device: str = "auto",
):
    """Train and evaluate every row of a paper table; write results.md side by side with the paper."""
    from demvae.config import parse_overrides
    from demvae.reproduce.run import reproduce as run_reproduce

    data = str(data_dir) if data_dir else None
    try:
        grid = tuple(float(b) for b in beta_grid.split(",")) if beta_grid else ()
    except ValueError:
        raise DemvaeError(f"--beta-grid expects numbers separated by commas, got {beta_grid!r}") from None
    path = run_reproduce(table, scale, seeds, jobs, out, data, corpus, parse_overrides(set_ or []), device, grid)
    typer.echo(path.read_text())
    if figure:
        from demvae.reproduce.figures import draw_figure

        for png in draw_figure(table, scale, path.parent, data, corpus, device, jobs):
            typer.echo(f"figure: {png}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the runs.")] = Path("runs/demo"),
    compare: Annotated[bool, typer.Option(help="Also train GM-VAE (no dispersion) and compare.")] = True,
    steps: Annotated[int | None, typer.Option(help="Training steps per model.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, or auto.")] = None,
):
    """The main job: train a small DGM-VAE on the built-in corpus and show what its codes found."""
    from demvae.report.demo import run_demo

    typer.echo(run_demo(out, compare=compare, steps=steps, device=device))


def main() -> None:
    try:
        app()
    except DemvaeError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted; the last checkpoint is kept (resume with `demvae train --resume DIR`)", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
