"""``demvae report``: one self-contained HTML page for run folders and reproduction folders.

The page is drawn from Jinja2 templates (``templates/``: the page, one template per section, the cell and
figure macros) and holds everything inline (``static/report.css``; ``static/report.js``, a few lines to sort the
code table and search its sentences; figures as PNG ``data:`` URIs), so it opens from disk or an e-mail without a
network. Sections: the runs at a glance; the codes; the latent space; training curves; the metric tables side by
side, each metric with its convention (:mod:`demvae.metrics`); config and versions; and per
reproduction folder the paper-vs-ours table and its figures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape
from tqdm.auto import tqdm

from demvae._version import __version__
from demvae.evaluation.tables import MISSING
from demvae.metrics import Convention, conventions, flat_row, heading, metric, sort_key, title
from demvae.report import plots
from demvae.report.analysis import RunData, analyse_run, evaluate_if_needed
from demvae.report.collect import (
    ReproductionData,
    collect_reproduction,
    collect_run,
    control_by_code,
    display_names,
    folder_kind,
)
from demvae.training.outputs import check_output

__all__ = ["is_report", "write_report", "render"]

TITLE = "demvae report"
CARD_METRICS = ("rppl", "bleu", "nll", "mutual_info", "param_var", "homog_", "baseline_homog_")
"""The metrics a run's card in the overview shows, where its metrics file has them."""


@dataclass(frozen=True)
class Section:
    """One ``<section>`` of the page and its link in the navigation; drawn by ``templates/sections/<id>.html.j2``."""

    id: str
    title: str


OVERVIEW, CODES, LATENT, TRAINING, METRICS, CONFIG, REPRODUCTION = (
    Section("overview", "Overview"), Section("codes", "Codes"), Section("latent", "Latent space"),
    Section("training", "Training"), Section("metrics", "Metrics"), Section("config", "Config and versions"),
    Section("reproduction", "Reproduction"))


def is_report(path: Path) -> bool:
    """Whether ``path`` is a page this module wrote (so ``report -o`` may replace it): its title comes first."""
    try:
        with path.open("rb") as file:
            head = file.read(512)
    except OSError:
        return False
    return head.startswith(b"<!doctype html>") and f"<title>{TITLE} \u2014 ".encode() in head


def write_report(paths: list[Path], out: Path, split: str = "test", device: str = "auto",
                 data_dir: str | None = None, max_codes: int = 100, progress: bool = True,
                 corpus: str | None = None, force: bool = False) -> Path:
    """Read every folder, evaluate the runs whose metrics are missing or stale, analyse them (codes, latent map)
    and write the page to ``out`` (checked first, :func:`demvae.training.outputs.check_output`: an existing page
    is replaced, another file only with ``force``). ``corpus``/``force`` locate a run's corpus as ``eval`` does."""
    check_output(out, force, own=is_report)
    paths = [Path(p) for p in paths]
    kinds = [folder_kind(p) for p in paths]
    runs: list[RunData] = []
    reproductions: list[ReproductionData] = []
    with tqdm(total=len(paths) + 1, desc="report", unit="folder", disable=not progress, dynamic_ncols=True) as bar:
        for path, kind, name in zip(paths, kinds, display_names(paths)):
            bar.set_postfix_str(name)
            if kind == "run":
                step = lambda what, name=name: bar.set_postfix_str(f"{name}: {what}")
                run = collect_run(path, name, split)
                metrics, notes = evaluate_if_needed(run, device, corpus, data_dir, force, step)
                runs.append(analyse_run(run, metrics, notes, device, corpus, data_dir, force, max_codes, step=step))
            else:
                reproductions.append(collect_reproduction(path, name))
            bar.update(1)
        bar.set_postfix_str("drawing")
        page = render(runs, reproductions)
        bar.update(1)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


# --- what the templates use ---------------------------------------------------------------------------------


def number(value: Any) -> str:
    """A result as the tables print it: 3 significant decimals below 10, fewer above; :data:`MISSING` for none."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return MISSING if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    if value != value:
        return MISSING
    size = abs(value)
    return f"{value:.3f}" if size < 10 else f"{value:.2f}" if size < 1000 else f"{value:.1f}"


def sortable(value: Any) -> bool:
    """Whether a cell holds a number (its ``data-v`` sorts the column)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def inline(text: str) -> Markup:
    """Escape, then Markdown's `code`."""
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text))))


def steps_of(r: RunData) -> int | None:
    """The last step the run's records hold."""
    h = r.files.history
    return max((rec["step"] for rec in h.train + h.valid), default=None)


def card_facts(r: RunData) -> list[tuple[str, str]]:
    """A run's headline numbers, for its card in the overview."""
    h = r.files.history
    best = next((v for v in h.valid if v["step"] == h.best_step), {})
    facts = [("kept model", f"step {h.best_step} of {steps_of(r)}" if h.best_step is not None else MISSING),
             (f"valid {title(h.metric or 'neg_elbo')}", number(best.get(h.metric)) if h.metric else MISSING)]
    if r.code_shape:
        g, k = r.code_shape
        facts.append((title("codes_used"), f"{r.codes_used} of {k ** g}"))
    row = flat_row(r.metrics)
    keys = sorted((k for k in row if (m := metric(k)) is not None and m.key in CARD_METRICS), key=sort_key)
    return facts + [(title(k), number(row[k])) for k in keys]


def code_columns(r: RunData) -> tuple[dict[tuple[int, ...], dict[str, Any]], list[str], list[str]]:
    """(control scores by code, the labels of the majority columns, the labels of the agreement columns)."""
    control = control_by_code(r.metrics)
    labels = list(dict.fromkeys(label for s in r.codes for label in s.majority))
    agree = list(dict.fromkeys(label for c in control.values() for label in c.get("agreement", {})))
    return control, labels, agree


@dataclass
class MetricRow:
    key: str
    values: list[Any]
    """One per run."""
    convention: Convention | None
    repeated: bool
    """Whether an earlier row printed the convention (this one says "as above")."""


def metric_rows(runs: list[RunData]) -> list[MetricRow]:
    rows_by_run = [flat_row(r.metrics) for r in runs]
    keys = sorted({k for row in rows_by_run for k, v in row.items() if k != "model" and v is not None},
                  key=sort_key)
    seen: set[str] = set()
    out = []
    for k in keys:
        c = m.convention if (m := metric(k)) else None
        out.append(MetricRow(k, [row.get(k) for row in rows_by_run], c, c is not None and c.title in seen))
        if c is not None:
            seen.add(c.title)
    return out


@dataclass
class PaperTable:
    """A reproduction's paper-vs-ours table, its claims checked, the conventions of its metrics."""

    title: str
    metrics: list[str]
    """The metrics' titles."""
    body: list[list[str]]
    """Per row: the model, then paper, ours, Δ per metric."""
    verdicts: list[tuple[str, str, str]]
    """(mark, claim, numbers) per claim of the paper."""
    conventions: list[Convention]


def paper_table(rep: ReproductionData) -> PaperTable | None:
    from demvae.evaluation.tables import side_by_side_cells
    from demvae.reproduce.claims import check_claims
    from demvae.reproduce.run import aggregate, seed_stats
    from demvae.reproduce.tables import TABLES

    table = TABLES.get(rep.results.get("table", ""))
    if table is None:
        return None
    rows = rep.results.get("rows", [])
    paper = {r.label: r.paper for r in table.rows}
    _, body = side_by_side_cells(aggregate(table, rows), paper, list(table.metrics))
    verdicts = check_claims(table.claims, seed_stats(table, rows)) if table.claims else []
    return PaperTable(table.title, [heading(m) for m in table.metrics], body,
                      [(v.mark, c.name, v.numbers) for c, v in verdicts], conventions(table.metrics))


_ENV = Environment(loader=PackageLoader("demvae.report", "templates"), autoescape=True, undefined=StrictUndefined,
                   trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
_ENV.filters.update(number=number, inline=inline, percent=lambda v: f"{v:.0%}")
_ENV.tests["sortable"] = sortable
_ENV.globals.update(card_facts=card_facts, steps_of=steps_of, code_columns=code_columns, paper_table=paper_table,
                    latent_uri=plots.latent_uri, thumbnail_uri=plots.latent_thumbnail_uri,
                    training_uri=plots.training_uri, file_uri=plots.file_uri)


def _static(name: str) -> Markup:
    return Markup(files("demvae.report").joinpath("static", name).read_text(encoding="utf-8"))


def render(runs: list[RunData], reproductions: list[ReproductionData]) -> str:
    """The page for the collected folders (figures drawn here)."""
    sections = [OVERVIEW, CODES, LATENT, TRAINING, METRICS, CONFIG] if runs else [OVERVIEW] if reproductions else []
    sections += [REPRODUCTION] if reproductions else []
    names = ", ".join([*(r.files.name for r in runs), *(r.name for r in reproductions)])
    return _ENV.get_template("page.html.j2").render(
        title=TITLE, names=names, when=datetime.now().strftime("%Y-%m-%d %H:%M"), version=__version__,
        sections=sections, runs=runs, reproductions=reproductions, metric_rows=metric_rows(runs),
        histories={r.files.name: r.files.history for r in runs}, css=_static("report.css"), script=_static("report.js"))
