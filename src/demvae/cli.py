"""The ``demvae`` command line (one console script, one sub-command per job).

Every expected failure (config, data, checkpoint, device, file system) ends as one ``error:`` line
naming the cause and what to do, exit 2; Ctrl-C exits 130 after saving; anything unexpected prints
a one-line summary and where the full traceback was written (``DEMVAE_DEBUG=1`` shows it).
"""

from __future__ import annotations

import errno
import itertools
import os
import sys
import tempfile
import traceback
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer

from demvae.errors import DemvaeError, DemvaeWarning, Interrupted, RunFinished

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Dispersed exponential-family mixture VAEs for interpretable text generation.")
data_app = typer.Typer(no_args_is_help=True, help="Corpora: statistics.")
config_app = typer.Typer(no_args_is_help=True, help="Configurations: every key with its documentation.")
app.add_typer(data_app, name="data")
app.add_typer(config_app, name="config")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Folder of the paper corpora (or $DEMVAE_DATA).")]
Sets = Annotated[list[str] | None, typer.Option("--set", help="Override: section.key=value (repeatable); "
                                                "`demvae config show NAME` lists every key.")]
Corpus = Annotated[str | None, typer.Option(help="Read the run's corpus from here (a moved file or folder).")]
Force = Annotated[bool, typer.Option(help="Use the corpus even if it changed since training; replace an existing "
                                     "--out file.")]
Device = Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto.")]
OUTPUT_RULE = ("Never a file of a run folder (config.yaml, model.safetensors, last/, ...); an existing file is "
               "replaced only with --force.")
TextOut = Annotated[Path | None, typer.Option("-o", "--out", help="Write the lines to this file (default: stdout). "
                                              + OUTPUT_RULE)]


def _overrides(corpus: str | None, data_dir: Path | None, sets: list[str] | None, device: str | None = None) -> dict:
    from demvae import api
    from demvae.config import parse_overrides

    return api.settings(corpus, data_dir, parse_overrides(sets or []), device)


@data_app.command("stats")
def data_stats(
    corpus: Annotated[str, typer.Argument(help="builtin, ptb, dailydialog, smd, or a .txt/.jsonl path")] = "builtin",
    data_dir: DataDir = None,
    max_vocab: Annotated[int, typer.Option(min=1)] = 10000,
    max_len: Annotated[int, typer.Option(min=2, help="Tokens per sentence, <s> and </s> included.")] = 40,
    batch_size: Annotated[int, typer.Option(min=1)] = 30,
):
    """Examples, tokens, vocabulary, OOV rate, lengths, truncation, labels and padding per split."""
    from demvae.data.stats import describe

    typer.echo(describe(corpus, data_dir, max_vocab=max_vocab, max_len=max_len, batch_size=batch_size))


@app.command()
def models():
    """List the model names accepted by --model (configs/presets.yaml)."""
    from demvae.config import presets

    for name, values in presets().items():
        typer.echo(f"{name:20s} {values}")


@config_app.command("show")
def config_show(
    name: Annotated[str, typer.Argument(help="A model (see `demvae models`) or a packaged config (ptb/dgm-vae).")],
    set_: Sets = None,
):
    """Print the full config a model or config file gives, every key with its documentation (valid YAML: the
    output works as a --config file)."""
    import yaml

    from demvae.config import compose, doc, packaged_configs, presets

    def scalar(value) -> str:  # one line of YAML that reads back as the same value (None: null, not 'None')
        return yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=2**31).removesuffix(
            "\n...\n").strip()

    by_model = name in presets() and name not in packaged_configs()
    cfg = compose(model=name if by_model else None, config=None if by_model else name,
                  overrides=_overrides(None, None, set_))
    source = name if name.endswith((".yaml", ".yml")) else f"{name}.yaml"
    lines = [f"# {name}: defaults < preset {cfg.model_name!r}" + ("" if by_model else f" < {source}"), ""]
    for section, values in cfg.to_dict().items():
        if not isinstance(values, dict):
            lines.append(f"{section}: {scalar(values)}")
            continue
        lines.append(f"{section}:")
        for key, value in values.items():
            lines.append(f"  {key}: {scalar(value):<24} # {doc(section, key)}")
    typer.echo("\n".join(lines))


@app.command()
def train(
    config: Annotated[str | None, typer.Option(help="YAML file or packaged config (e.g. builtin/dgm-vae).")] = None,
    model: Annotated[str | None, typer.Option(help="Model name (see `demvae models`); paper sizes: a GPU job.")] = None,
    corpus: Annotated[str | None, typer.Option(help="builtin, ptb, dailydialog, smd, or a .txt/.jsonl path; with "
                                               "--resume: where the run's corpus is now.")] = None,
    data_dir: DataDir = None,
    set_: Sets = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (default runs/<model>-<corpus>-<time>).")] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue the interrupted run in this folder.")] = None,
    force: Annotated[bool, typer.Option(help="Replace a run already in --out; with --resume: go on although "
                                        "the corpus changed since training.")] = False,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:N or auto.")] = None,
):
    """Train a model; the run folder is all that eval/sample/encode need. Every config key and its
    meaning: `demvae config show NAME`."""
    from demvae import api, runs
    from demvae.config import compose
    from demvae.training.run_folder import RunFolder

    target = resume or out  # where an interrupted run can be resumed from
    try:
        if resume is not None:
            clash = [flag for flag, v in (("--config", config), ("--model", model), ("--out", out)) if v]
            if clash:
                raise DemvaeError(f"--resume continues a run as it was configured; drop {', '.join(clash)} "
                                  "(only --set train.* and --device may change; --corpus/--data-dir point to "
                                  "its moved corpus)")
            run_dir = api.resume(resume, overrides=_overrides(None, None, set_), corpus=corpus, data_dir=data_dir,
                                 device=device, force=force)
        else:
            cfg = compose(model, config, _overrides(corpus, data_dir, set_, device))
            target = out if out is not None else runs.default_run_dir(cfg)  # named here for the Ctrl-C message
            run_dir = api.train(cfg, out=target, force=force)
        if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, rank 0 speaks for all
            typer.echo(runs.summary(run_dir))  # inside: a Ctrl-C while it is written still says how to resume
    except Interrupted as exc:  # the first Ctrl-C: the step finished and a checkpoint was written
        typer.echo(f"interrupted at step {exc.step}; the training state is saved in {exc.run_dir}/last\n"
                   f"resume with: demvae train --resume {exc.run_dir}", err=True)
        sys.exit(130)  # not typer.Exit(130): main() reads that as a Ctrl-C no command reported
    except KeyboardInterrupt:  # the second: stopped at once, the last checkpoint is the previous one
        where = target if target is not None else "DIR"
        typer.echo(f"interrupted; the last checkpoint (if one was written) is kept\n"
                   f"resume with: demvae train --resume {where}", err=True)
        sys.exit(130)
    except OSError as exc:  # a full disk: resume the run it interrupted (a resume without a checkpoint restarts it)
        if exc.errno not in _FULL or target is None or not RunFolder(target).config.is_file():
            raise
        again = f"resume with `demvae train --resume {target}`"
        raise DemvaeError(_os_message(exc, set(), again)) from None


def _emit(lines: Iterable[str], out: Path | None) -> None:
    """Write the lines a batch at a time as they come: to stdout, or into ``out`` (atomically: the file appears
    complete)."""
    from demvae.io import atomic_write
    from demvae.report.stream import BATCH

    source = iter(lines)
    batches = iter(lambda: list(itertools.islice(source, BATCH)), [])  # lists of BATCH lines until [] (the end)
    if out is None:
        try:
            for batch in batches:
                typer.echo("\n".join(batch))
        except BrokenPipeError:  # the reader has stopped (`| head`): so do we, quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return

    def write(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8") as file:
            for batch in batches:
                file.write("".join(line + "\n" for line in batch))

    atomic_write(out, write)


@app.command()
def sample(
    run_dir: Path,
    n: Annotated[int, typer.Option("--n", min=1, help="Number of sentences.")] = 10,
    code: Annotated[str | None, typer.Option(help="Discrete code: one value per variable, e.g. 3,0,4.")] = None,
    procedure: Annotated[str, typer.Option(help="How sentences are written for --code: rerank (the best of 4 "
                                           "nucleus sentences by q(code|x)), nucleus (z from the code's aggregate "
                                           "posterior on train, words sampled from the top-p nucleus), aggregate "
                                           "(its z, greedy words), prior (p(z|code), the paper's) or mode.")]
    = "rerank",
    temperature: Annotated[float | None, typer.Option(min=0, help="Spread of z for --code (0: the mean); default "
                                                      "0 for rerank and nucleus, 0.5 for aggregate, 1 for prior.")]
    = None,
    top_p: Annotated[float | None, typer.Option(min=0, max=1, help="Top-p of nucleus and rerank's word sampling "
                                                "(default 0.9).")] = None,
    sample_words: Annotated[bool, typer.Option("--sample-words", help="Sample words, not greedy decoding.")] = False,
    seed: int = 0,
    out: TextOut = None,
    corpus: Annotated[str | None, typer.Option(help="Read the run's corpus from here (a moved file or folder), for "
                                               "the codes' statistics of --procedure aggregate.")] = None,
    data_dir: DataDir = None,
    force: Force = False,
    device: Device = "cpu",
):
    """Generate sentences from the prior, or for a chosen discrete code by a generation procedure (printed on
    stderr). Output: one line per sentence, its words separated by spaces (an empty line for a sentence that
    ended at once), written a batch at a time."""
    from demvae import api
    from demvae.models.generation import Procedure
    from demvae.training.outputs import check_output

    if out is not None:
        check_output(out, force)
    lines = api.sample(run_dir, n, code=code, procedure=procedure, temperature=temperature, top_p=top_p,
                       sample_words=sample_words, seed=seed, corpus=corpus, data_dir=data_dir, force=force,
                       device=device)
    if code is not None:
        typer.echo(Procedure.named(procedure, temperature, top_p).describe(), err=True)
    _emit(lines, out)


@app.command()
def encode(
    run_dir: Path,
    file: Annotated[Path, typer.Argument(help="Text: one sentence per line; or .jsonl with a \"text\" field.")],
    out: TextOut = None,
    force: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
    device: Device = "cpu",
):
    """Print each sentence's discrete code and its probability q(code|x), reading and writing a batch at a time.

    Output: one line per input line, CODE<tab>PROBABILITY<tab>SENTENCE: CODE is the argmax value of each discrete
    variable (e.g. 3,0,4), PROBABILITY is q(CODE|sentence) to 3 decimals, SENTENCE the tokens read; a blank input
    line (or a JSONL record whose text is blank) gives an empty line, so output line i belongs to input line i."""
    from demvae import api
    from demvae.training.outputs import check_output

    if out is not None:
        check_output(out, force)
    _emit(api.encode(run_dir, file, device=device), out)


@app.command()
def clusters(
    run_dir: Path,
    split: str = "test",
    top: Annotated[int, typer.Option(min=0)] = 5,
    generated: Annotated[int, typer.Option(min=0)] = 3,
    max_clusters: Annotated[int, typer.Option(min=1)] = 30,
    out: TextOut = None,
    corpus: Corpus = None,
    data_dir: DataDir = None,
    force: Force = False,
    device: Device = "cpu",
):
    """Per discovered code: size, majority labels with purity, typical and generated sentences (for a dialog
    run: the stage-1 codes of the responses, and the dialog model's responses with each code; the paper found
    its Table 4 codes on the train split). The codes' homogeneity with the gold labels is shown beside a
    baseline's: k-means on TF-IDF + LSA sentence vectors fitted on train, as many clusters as codes."""
    from demvae import api
    from demvae.training.outputs import check_output

    if out is not None:
        check_output(out, force)
    _emit([api.clusters(run_dir, split, top=top, generated=generated, max_clusters=max_clusters, corpus=corpus,
                        data_dir=data_dir, force=force, device=device)], out)


@app.command()
def respond(
    run_dir: Path,
    context: Annotated[str, typer.Option(help=(
        "The dialogue so far: turns oldest first, separated by ' | '. A turn may start with <usr> or <sys>; "
        "untagged turns alternate, the first being the user's (<usr>)."))],
    code: Annotated[str | None, typer.Option(help="Respond with this code (e.g. 3,0,4) instead of the top ones.")]
    = None,
    n: Annotated[int, typer.Option("--n", min=1, help="How many of the policy's most probable codes.")] = 5,
    z: Annotated[str, typer.Option(help="z of the code: mean (of its component) or sample.")] = "mean",
    beam: Annotated[int, typer.Option(min=0, help="Beam size (0: greedy decoding).")] = 0,
    seed: int = 0,
    device: Device = "cpu",
):
    """Table 5 for any context: the policy's top codes with their probabilities and one response per code."""
    from demvae import api
    from demvae.config import Z_CHOICES

    if z not in Z_CHOICES:  # (the API checks it too, naming its argument; here the option's name)
        raise DemvaeError(f"--z must be one of {', '.join(Z_CHOICES)}, got {z!r}")
    found = api.respond(run_dir, context, code=code, n=n, z=z, beam=beam, seed=seed, device=device)
    if found.unknown:
        typer.echo(f"note: not in the vocabulary, read as <unk>: {' '.join(found.unknown)}", err=True)
    typer.echo(str(found))


@app.command("eval")
def eval_(
    run_dirs: Annotated[list[Path], typer.Argument(help="One or more run folders.")],
    metrics: Annotated[str | None, typer.Option(help="Comma-separated metric groups (default: every group that "
                                                "applies: posterior,nll,bleu,prior,clusters,control, or for a dialog "
                                                "run responses,clusters).")] = None,
    split: str = "test",
    is_samples: Annotated[int | None, typer.Option(min=1, help="Importance samples per sentence.")] = None,
    max_memory: Annotated[float | None, typer.Option(
        min=0.0, help="MiB of decoder working memory per importance-sampling call (default: 8192 rows).")] = None,
    n_prior: Annotated[int | None, typer.Option(min=1, help="Prior samples for wKL and rPPL.")] = None,
    rppl_steps: Annotated[int | None, typer.Option(min=1, help="Cap on the rPPL language model's steps.")] = None,
    paper: Annotated[bool, typer.Option(help="The paper's budget: 500 IS samples, 40,000 prior samples.")] = False,
    corpus: Corpus = None,
    data_dir: DataDir = None,
    force: Force = False,
    vectors: Annotated[Path | None, typer.Option(help="GloVe-format word vectors: adds embedding metrics.")] = None,
    lowercase_vectors: Annotated[bool, typer.Option(
        help="Look words up lower-cased (an uncased vector file); default: as they are, like the original.")] = False,
    out: Annotated[Path | None, typer.Option(help="Write metrics here (a folder), e.g. for a read-only run. Never "
                                             "another run's files; an existing file that is not a metrics file is "
                                             "replaced only with --force.")] = None,
    procedure: Annotated[str, typer.Option(help="The control group's generation procedure: rerank, nucleus, "
                                           "aggregate, prior (the paper's) or mode (see `demvae sample`).")]
    = "rerank",
    temperature: Annotated[float | None, typer.Option(min=0, help="Its temperature (default 0 for rerank and "
                                                      "nucleus, 0.5 for aggregate, 1 for prior).")] = None,
    top_p: Annotated[float | None, typer.Option(min=0, max=1, help="Its top-p, for nucleus and rerank (default "
                                                "0.9).")] = None,
    device: Device = "auto",
    precision: Annotated[str, typer.Option(help="fp32, bf16 (autocast; log-weights and latent terms stay float32) "
                                           "or auto (bf16 where the device has bf16 units, as train.amp: auto).")]
    = "auto",
):
    """Evaluate run folders (writes metrics-<split>.json in each) and print one row per model.
    Budgets fit the device unless given: on a CPU 50 IS samples, ≤ 5,000 prior samples and a
    500-step rPPL model; on a GPU or with --paper, the paper's."""
    from demvae import api
    from demvae.evaluation.tables import format_table
    from demvae.metrics import flat_row, heading, table_columns

    groups = tuple(m.strip() for m in metrics.split(",") if m.strip()) if metrics else None
    rows = []
    for run_dir in run_dirs:
        results = api.evaluate(run_dir, metrics=groups, split=split, is_samples=is_samples, is_max_memory=max_memory,
                               n_prior_samples=n_prior, rppl_steps=rppl_steps, paper=paper, device=device,
                               corpus=corpus, data_dir=data_dir, force=force, vectors=vectors,
                               lowercase_vectors=lowercase_vectors,
                               out=out / run_dir.name if out and len(run_dirs) > 1 else out, procedure=procedure,
                               temperature=temperature, top_p=top_p, precision=precision, progress=True)
        b = results["budget"]
        typer.echo(f"{run_dir}: {b['is_samples']} IS samples, {b['n_prior_samples']:,} prior samples, "
                   f"rPPL LM ≤ {b['rppl_steps']} steps, {results['precision']}", err=True)
        if "control" in results:
            typer.echo(f"{run_dir}: control group: generation procedure {results['control']['procedure']}, "
                       f"{results['control']['n_per_code']} sentences per code", err=True)
        rows.append(flat_row(results))
    columns, legend = table_columns(rows)
    typer.echo(format_table(rows, columns, title=f"{split} split", header=[heading(c) for c in columns]))
    typer.echo("\n".join(f"- {line}" for line in legend))


@app.command()
def reproduce(
    table: Annotated[str, typer.Argument(help="ptb-table1, ptb-table7, dd-table2, dd-table6 or smd-table3.")],
    data_dir: DataDir = None,
    scale: Annotated[str, typer.Option(help="smoke (seconds), mini (2 CPU cores), paper (GPU).")] = "mini",
    seeds: Annotated[int | None, typer.Option(min=1, help="Seeds per row (default: 3 at mini, 1 at smoke and "
                                              "paper); the table shows mean ± std over them.")] = None,
    jobs: Annotated[int, typer.Option(min=1, help="Runs (row × seed) trained concurrently.")] = 1,
    out: Path | None = None,
    corpus: Annotated[str | None, typer.Option(help="Run the rows on another corpus (e.g. builtin).")] = None,
    set_: Sets = None,
    figure: Annotated[bool, typer.Option(help="Also draw the table's figure (PTB: Figure 5; DD: Figure 4).")] = False,
    beta_grid: Annotated[str | None, typer.Option(
        help="Choose β of the dispersed rows on validation BLEU among these values, e.g. 0.7,0.9.")] = None,
    device: Annotated[str, typer.Option("--device", "--devices", help="A device, or a list to spread the rows "
                                        "over (cuda:0,cuda:1); auto = every visible GPU, else the CPU.")] = "auto",
    rows: Annotated[str | None, typer.Option(help="Only these rows, e.g. gm-vae,dgm-vae.")] = None,
):
    """Train and evaluate every row of a paper table; write results.md side by side with the paper."""
    from demvae.config import parse_overrides
    from demvae.reproduce.run import reproduce as run_reproduce
    from demvae.training.outputs import check_output

    if out is not None:
        check_output(out, folder=True)
    data = str(data_dir) if data_dir else None
    try:
        grid = tuple(float(b) for b in beta_grid.split(",")) if beta_grid else ()
    except ValueError:
        raise DemvaeError(f"--beta-grid expects numbers separated by commas, got {beta_grid!r}") from None
    if figure and not table.startswith(("ptb", "dd")):
        raise DemvaeError(f"--figure: {table} has no figure (PTB tables: Figure 5; DailyDialog tables: Figure 4)")
    only = tuple(r.strip() for r in rows.split(",") if r.strip()) if rows else ()
    path = run_reproduce(table, scale, seeds, jobs, out, data, corpus, parse_overrides(set_ or []), device, grid, only)
    typer.echo(path.read_text())
    if figure:
        from demvae.reproduce.figures import draw_figure

        for png in draw_figure(table, scale, path.parent, data, corpus, device, jobs):
            typer.echo(f"figure: {png}")


@app.command()
def report(
    folders: Annotated[list[Path], typer.Argument(help="Run folders and/or reproduction folders.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="The HTML file to write. Never a file of a run folder; "
                                      "an existing file is replaced if it is a demvae report, else only with "
                                      "--force.")] = Path("report.html"),
    split: str = "test",
    max_codes: Annotated[int, typer.Option(min=1, help="Codes listed per run (the largest).")] = 100,
    corpus: Corpus = None,
    data_dir: DataDir = None,
    force: Force = False,
    device: Device = "auto",
):
    """One self-contained HTML page: config, metrics side by side, training curves, codes, latent space."""
    from demvae import api

    path = api.report(folders, out, split=split, max_codes=max_codes, corpus=corpus, data_dir=data_dir, force=force,
                      device=device)
    typer.echo(f"report: {path}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the runs.")] = Path("runs/demo"),
    compare: Annotated[bool, typer.Option(help="Also train GM-VAE (no dispersion) and compare.")] = True,
    steps: Annotated[int | None, typer.Option(min=1, help="Training steps per model.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, or auto.")] = None,
    seeds: Annotated[str, typer.Option(help="Comma-separated training seeds of the main model, e.g. 1,2,3: the "
                                       "control table shows the mean and range over them.")] = "0",
):
    """The main job: train a small DGM-VAE (+ the mutual-information term) on the built-in corpus and show what its
    codes found and how faithfully sentences generated from each code follow it."""
    from demvae.demo import run_demo
    from demvae.training.outputs import check_output

    try:
        chosen = tuple(dict.fromkeys(int(s) for s in seeds.split(",") if s.strip()))
    except ValueError:
        chosen = ()
    if not chosen or min(chosen) < 0:
        raise DemvaeError(f"--seeds takes comma-separated whole numbers >= 0, e.g. 1,2,3; got {seeds!r}")
    typer.echo(run_demo(check_output(out, folder=True), compare=compare, steps=steps, device=device, seeds=chosen))


# --- the error boundary ----------------------------------------------------------------------------

_FULL = (errno.ENOSPC, errno.EDQUOT)
_OS_HINTS = {
    errno.ENOSPC: "the disk is full: free some space, then {again}",
    errno.EDQUOT: "the disk quota is exceeded: free some space, then {again}",
    errno.EACCES: "permission denied: choose a folder you may write to",
    errno.EPERM: "permission denied: choose a folder you may write to",
    errno.EROFS: "the file system is read-only: choose a writable folder",
}


def _os_message(exc: OSError, options: set[str], again: str = "run the command again") -> str:
    """One line for a file-system error: what failed, where, and what to do, naming an option only where the
    command has it (``options``); ``again``: how to go on once space is freed."""
    where = f": {exc.filename}" if exc.filename else ""
    hint = _OS_HINTS[exc.errno].format(again=again) if exc.errno in _OS_HINTS else ""
    if hint and exc.errno not in _FULL and "--out" in options:
        hint += " (--out)"
    return f"{exc.strerror or exc}{where}" + (f" ({hint})" if hint else "")


def _command_options(argv: list[str]) -> set[str]:
    """The options of the sub-command that ``argv`` names (empty when it names none)."""
    command = typer.main.get_command(app)
    for arg in argv:
        if not hasattr(command, "commands"):  # a command, not a group of them
            break
        if arg in command.commands:
            command = command.commands[arg]
        elif not arg.startswith("-"):
            return set()
    return set() if hasattr(command, "commands") else {opt for p in command.params for opt in p.opts}


def _show_warning(message, category, filename, lineno, file=None, line=None):
    if issubclass(category, DemvaeWarning):
        typer.echo(f"warning: {message}", err=True)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


def main() -> None:
    warnings.showwarning = _show_warning
    debug = os.environ.get("DEMVAE_DEBUG") == "1"
    try:
        code = app(standalone_mode=False)
        if code == 130:  # typer's silent answer to a Ctrl-C that no command reported (start-up, eval, ...)
            typer.echo("interrupted", err=True)
        sys.exit(code if isinstance(code, int) else 0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # usage errors: the command's own message
        # typer raises only its vendored click's ClickException subclasses here (show() is theirs), under no public name
        exc.show()  # type: ignore[attr-defined]
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except RunFinished as exc:
        typer.echo(str(exc), err=True)
        sys.exit(0)
    except (DemvaeError, OSError) as exc:
        if debug:
            raise
        message = _os_message(exc, _command_options(sys.argv[1:])) if isinstance(exc, OSError) else str(exc)
        typer.echo(f"error: {message}", err=True)
        sys.exit(2)
    except Exception as exc:  # a bug: say so in one line, keep the traceback in a file
        if debug:
            raise
        path = Path(tempfile.gettempdir()) / f"demvae-error-{os.getpid()}.txt"
        path.write_text(traceback.format_exc(), encoding="utf-8")
        typer.echo(f"error: unexpected {type(exc).__name__}: {exc}\n"
                   f"the full traceback is in {path} (set DEMVAE_DEBUG=1 to print it); please report it", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
