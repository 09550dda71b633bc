"""``demvae report``: one self-contained HTML page for run folders and reproduction folders.

The page holds everything inline (CSS, a few lines of JavaScript to sort the code table and search its
sentences, figures as PNG ``data:`` URIs), so it opens from disk or an e-mail without a network. Sections:
the runs at a glance; config and versions; the metric tables side by side, each metric with its
convention (:mod:`demvae.evaluation.conventions`); training curves; the codes; the latent space; and per
reproduction folder the paper-vs-ours table and its figures.
"""

from __future__ import annotations

import re
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from demvae._version import __version__
from demvae.evaluation.conventions import Convention, convention_for
from demvae.evaluation.tables import MISSING
from demvae.report import plots
from demvae.report.collect import (
    ReproductionData,
    RunData,
    collect_reproduction,
    collect_run,
    control_by_code,
    folder_kind,
)
from demvae.training.outputs import check_output

__all__ = ["is_report", "write_report", "render"]

# The metric table's rows, in this order first; other numeric results follow alphabetically.
METRIC_ORDER = ("rppl", "bleu", "wkl", "nll", "ppl", "neg_elbo", "rec", "kl_z", "kl_z_avg", "dispersion", "kl_c",
                "param_var", "mutual_info", "mutual_info_sum", "components_used", "codes_used")
METRIC_PREFIX_ORDER = ("homog_", "v_measure_", "baseline_", "control_", "acc_", "majority_", "emb_")


TITLE = "demvae report"


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
    """Collect every folder (computing what ``train``/``eval`` did not write) and write the page to ``out``
    (checked first, :func:`demvae.training.outputs.check_output`: an existing page is replaced, another file
    only with ``force``). ``corpus``/``force`` locate a run's corpus as ``eval`` does."""
    check_output(out, force, own=is_report)
    paths = [Path(p) for p in paths]
    kinds = [folder_kind(p) for p in paths]
    names = display_names(paths)
    runs: list[RunData] = []
    reproductions: list[ReproductionData] = []
    with tqdm(total=len(paths) + 1, desc="report", unit="folder", disable=not progress, dynamic_ncols=True) as bar:
        for path, kind, name in zip(paths, kinds, names):
            bar.set_postfix_str(name)
            if kind == "run":
                runs.append(collect_run(path, name, split, device, data_dir, max_codes, corpus=corpus, force=force,
                                        step=lambda what, name=name: bar.set_postfix_str(f"{name}: {what}")))
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


def display_names(paths: list[Path]) -> list[str]:
    """Each folder's name, with as many parent folders as it takes to tell them apart."""
    resolved = [p.resolve() for p in paths]
    for depth in range(1, max(len(p.parts) for p in resolved) + 1):
        names = ["/".join(p.parts[-depth:]) for p in resolved]
        if len(set(names)) == len(names):
            return names
    return [str(p) for p in paths]


# --- small HTML helpers ------------------------------------------------------------------------------------


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return MISSING if value is None else escape(str(value))
    if isinstance(value, int):
        return str(value)
    if value != value:
        return MISSING
    size = abs(value)
    return f"{value:.3f}" if size < 10 else f"{value:.2f}" if size < 1000 else f"{value:.1f}"


def _inline(text: str) -> str:
    """Escape, then Markdown's `code`."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text))


def _td(value: Any, percent: bool = False) -> str:
    """A cell; a number carries its value for sorting (``percent``: shown as a percentage)."""
    if not isinstance(value, int | float) or isinstance(value, bool) or value != value:
        return f"<td>{_number(value)}</td>"
    return f'<td data-v="{value}" class="num">{f"{value:.0%}" if percent else _number(value)}</td>'


def _table(header: list[str], rows: list[list[str]], cls: str = "", table_id: str = "") -> str:
    """``rows`` hold finished ``<td>`` cells; ``header`` finished ``<th>`` cells."""
    ident = f' id="{table_id}"' if table_id else ""
    return (f'<div class="scroll"><table class="{cls}"{ident}><thead><tr>{"".join(header)}</tr></thead><tbody>'
            + "".join(f"<tr>{''.join(r)}</tr>" for r in rows) + "</tbody></table></div>")


def _th(text: str, sortable: str = "", title: str = "", sort: str = "") -> str:
    """``sortable``: "num" or "text" (how the column sorts); "" for a column that does not."""
    attrs = f' class="sort" data-type="{sortable}" tabindex="0"' if sortable else ""
    attrs += f' title="{escape(title)}"' if title else ""
    attrs += f' aria-sort="{sort}"' if sort else ""
    return f"<th{attrs}>{escape(text)}</th>"


def _figure(uri: str | None, caption: str, alt: str) -> str:
    if uri is None:
        return f'<p class="note">{caption}</p>'
    return f'<figure><img src="{uri}" alt="{escape(alt)}"><figcaption>{caption}</figcaption></figure>'


def _section(ident: str, title: str, body: str) -> str:
    return f'<section id="{ident}"><h2>{escape(title)}</h2>{body}</section>'


# --- sections ----------------------------------------------------------------------------------------------


def _selection_name(metric: str | None) -> str:
    return "−ELBO" if metric in (None, "neg_elbo") else metric


def _card(i: int, r: RunData) -> str:
    """One run at a glance: the headline numbers, the latent map by code, the largest codes."""
    h = r.history
    steps = max((rec["step"] for rec in h.train + h.valid), default=None)
    best = next((v for v in h.valid if v["step"] == h.best_step), {})
    facts = [("kept model", f"step {h.best_step} of {steps}" if h.best_step is not None else MISSING),
             (f"valid {_selection_name(h.metric)}", _number(best.get(h.metric)) if h.metric else MISSING)]
    shape = ""
    if r.code_shape:
        g, k = r.code_shape
        shape = f" · c: {g} variable{'s' if g > 1 else ''} × {k} values"
        facts += [("codes used", f"{r.codes_used} of {k ** g}"), ("MI I(x; c)", _number(r.metrics.get("mutual_info"))),
                  ("Var", _number(r.metrics.get("param_var")))]
    facts += [(f"homogeneity ({label})", _number(v["homogeneity"]))
              for label, v in r.metrics.get("homogeneity", {}).items()]
    facts += [(f"baseline homogeneity ({label})", _number(v["homogeneity"]))
              for label, v in r.metrics.get("baseline", {}).get("homogeneity", {}).items()]
    facts += [(name, _number(r.metrics[key])) for name, key in (("BLEU", "bleu"), ("NLL", "nll"), ("rPPL", "rppl"))
              if key in r.metrics]
    numbers = "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in facts)
    thumb = plots.latent_thumbnail_uri(r)
    image = f'<img src="{thumb}" alt="latent space of {escape(r.name)} by code">' if thumb else ""
    top = "".join(
        f'<li><b>{escape(s.name)}</b> {s.share:.0%}'
        + "".join(f" · {escape(cls)} {purity:.0%}" for cls, purity in s.majority.values())
        + (f"<br><q>{escape(s.typical[0])}</q>" if s.typical else "") + "</li>" for s in r.codes[:3])
    largest = f'<p class="sub">largest codes (share · majority label and purity):</p><ul class="top">{top}</ul>'
    return (f'<div class="card"><h3><a href="#run-{i}-codes">{escape(r.name)}</a></h3><p class="sub">'
            f'{escape(r.model)} · {escape(str(r.config["data"]["corpus"]))} · {steps} steps{shape}</p>'
            '<div class="glance">'
            f"{image}<dl>{numbers}</dl></div>{largest if top else ''}</div>")


def _overview(runs: list[RunData], reproductions: list[ReproductionData]) -> str:
    parts = [f'<div class="cards">{"".join(_card(i, r) for i, r in enumerate(runs))}</div>'] if runs else []
    for r in runs:
        parts += [f'<p class="note">{escape(r.name)}: {_inline(n)}</p>' for n in r.notes]
    for rep in reproductions:
        res = rep.results
        parts.append(f'<p>Reproduction <a href="#reproduction">{escape(rep.name)}</a>: table '
                     f'<code>{escape(str(res.get("table")))}</code> at scale <code>{escape(str(res.get("scale")))}'
                     f'</code>, {len(res.get("rows", []))} runs.</p>')
    return _section("overview", "Overview", "".join(parts))


def _config(runs: list[RunData]) -> str:
    parts = []
    for r in runs:
        versions = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in r.versions.items())
        parts.append(f'<details><summary>{escape(r.name)} — {escape(r.model)}, <code>{escape(str(r.path))}</code>'
                     f'</summary><div class="cols"><pre>{escape(r.config_text)}</pre><table class="kv">{versions}'
                     f"</table></div></details>")
    return _section("config", "Config and versions", "".join(parts))


def _metric_key(key: str) -> tuple:
    if key in METRIC_ORDER:
        return (0, METRIC_ORDER.index(key), key)
    prefix = next((i for i, p in enumerate(METRIC_PREFIX_ORDER) if key.startswith(p)), len(METRIC_PREFIX_ORDER))
    return (1, prefix, key)


def _title(metric: str) -> str:
    """``rppl`` -> ``rPPL``, ``homog_act`` -> ``Homogeneity act``: the convention's name, where one exists."""
    c = convention_for(metric)
    if c is None:
        return metric
    prefix = next((p for p in c.columns if p.endswith("_") and metric.startswith(p)), None)
    return f"{c.title} {metric[len(prefix):]}" if prefix else c.title


def _convention(c: Convention) -> str:
    return f"<b>{escape(c.title)}</b>: {_inline(c.text)}"


def _conventions_cell(convention: Convention | None, seen: set[str]) -> str:
    """The convention's text, or "as above" where an earlier row printed it."""
    if convention is None:
        return "<td></td>"
    if convention.title in seen:
        return f'<td class="conv">{escape(convention.title)}: as above</td>'
    seen.add(convention.title)
    return f'<td class="conv">{_convention(convention)}</td>'


def _metrics(runs: list[RunData]) -> str:
    from demvae.evaluation.run import flat_row

    rows_by_run = [flat_row(r.metrics) for r in runs]
    keys = sorted({k for row in rows_by_run for k, v in row.items() if k != "model" and v is not None},
                  key=_metric_key)
    seen: set[str] = set()
    body = [[f"<td><code>{escape(k)}</code></td>", *(_td(row.get(k)) for row in rows_by_run),
             _conventions_cell(convention_for(k), seen)] for k in keys]
    header = [_th("metric"), *(_th(r.name) for r in runs), _th("how it is computed")]
    splits = sorted({r.split for r in runs})
    intro = (f"<p>From each run's <code>metrics-{'/'.join(splits)}.json</code> (written by <code>demvae eval</code>); "
             "one column per run.</p>")
    return _section("metrics", "Metrics", intro + _table(header, body, "metrics"))


def _training(histories: dict[str, Any]) -> str:
    caption = ("Lines: the training records (means over <code>log_every</code> steps; the loss uses the annealed KL "
               "weight). Dots: validations. ★ and the dotted line: the kept model (the best validation value).")
    return _figure(plots.training_uri(histories), caption, "training curves") if histories else ""


def _codes_table(r: RunData, ident: str) -> str:
    control = control_by_code(r.metrics)
    labels = list(dict.fromkeys(label for s in r.codes for label in s.majority))
    agree = list(dict.fromkeys(label for c in control.values() for label in c.get("agreement", {})))
    header = [_th("code", "text", "the value of each discrete variable"), _th("size", "num", sort="descending"),
              _th("share", "num", "of the split")]
    for label in labels:
        header += [_th(label, "text", f"the members' commonest {label}"),
                   _th(f"{label} purity", "num", f"share of the members with that {label}")]
    if control:
        header.append(_th("code recovery", "num", "share of sentences generated from the code that encode back to it"))
        header += [_th("distinct", "num", "share of distinct sentences among those generated from the code"),
                   _th("distinct-2", "num", "distinct word bigrams over all word bigrams of those sentences")]
        header += [_th(f"{label} agreement", "num", f"share of generated sentences classified as the code's {label}")
                   for label in agree]
    header += [_th("typical sentences (highest q(code|x))"), _th("generated from the code")]
    rows = []
    for s in r.codes:
        cells = [f"<td><b>{escape(s.name)}</b></td>", _td(s.size), _td(s.share, percent=True)]
        for label in labels:
            majority, purity = s.majority.get(label, (None, None))
            cells += [_td(majority), _td(purity, percent=True)]
        if control:
            c = control.get(s.code, {})
            cells += [_td(c.get(key), percent=True) for key in ("recovery", "distinct", "distinct_2")]
            cells += [_td(c.get("agreement", {}).get(label), percent=True) for label in agree]
        for sentences in (s.typical, s.generated):
            cells.append('<td><ul class="sents">' + "".join(f'<li class="sent">{escape(t)}</li>' for t in sentences)
                         + "</ul></td>")
        rows.append(cells)
    search = (f'<div class="search"><input type="search" data-table="{ident}" placeholder="Search the sentences…" '
              f'aria-label="search the sentences"> <span class="count" data-for="{ident}"></span></div>')
    return search + _table(header, rows, "codes sortable", ident)


def _codes(runs: list[RunData]) -> str:
    parts = []
    for i, r in enumerate(runs):
        head = f'<h3 id="run-{i}-codes">{escape(r.name)}</h3>'
        if not r.codes:
            parts.append(head + f'<p class="note">Model <code>{escape(r.model)}</code> has no discrete code.</p>')
            continue
        scores = "; ".join(f"{k}: homogeneity {v['homogeneity']:.2f}, V-measure {v['v_measure']:.2f}"
                           for k, v in r.metrics.get("homogeneity", {}).items())
        shown = f"the table shows the {len(r.codes)} largest" if len(r.codes) < r.codes_used else "all are shown"
        text = (f"{r.codes_used} codes used on the {escape(r.split)} split ({r.n_examples} sentences); {shown}. "
                f"{escape(scores)}.")
        baseline = r.metrics.get("baseline")
        if baseline:
            text += (f" The baseline (k-means with {baseline['n_clusters']} clusters on TF-IDF + LSA vectors of the "
                     "sentences, fitted on train): " + escape("; ".join(
                         f"{k}: homogeneity {v['homogeneity']:.2f}, V-measure {v['v_measure']:.2f}"
                         for k, v in baseline["homogeneity"].items())) + ".")
        control = r.metrics.get("control")
        if control:
            unfiltered = control.get("unfiltered_recovery", control.get("recovery"))
            if unfiltered != control.get("recovery"):  # a procedure filtering by the model's own q(c|x)
                text += f" Code recovery of the unfiltered candidates {_number(unfiltered)}."
            text += (f" Code recovery {_number(control.get('recovery'))} over the codes holding "
                     f"{_number(control.get('coverage'))} of the split, distinct sentences "
                     f"{_number(control.get('distinct'))}, distinct-2 {_number(control.get('distinct_2'))} "
                     f"(generation procedure {escape(str(control.get('procedure')))}).")
        parts.append(head + f"<p>{text} Click a column to sort; the search box filters the codes by their "
                            f"sentences.</p>" + _codes_table(r, f"codes-{i}"))
    return _section("codes", "Codes", "".join(parts))


def _latent(runs: list[RunData]) -> str:
    parts = []
    for i, r in enumerate(runs):
        head = f'<h3 id="run-{i}-latent">{escape(r.name)}</h3>'
        if r.latent is None:
            parts.append(head + f'<p class="note">Model <code>{escape(r.model)}</code> has no Gaussian latent '
                                "variable to draw.</p>")
            continue
        m = r.latent
        caption = (f"Posterior means of {len(m.points)} of the {r.n_examples} {escape(r.split)} sentences (a random "
                   f"subset), {escape(m.projection.description)}. × and ellipses: prior components p(z|c), mean and "
                   f"1 σ, projected exactly. Colours: the 10 largest groups; the rest grey.")
        parts.append(head + _figure(plots.latent_uri(r), caption, f"latent space of {r.name}"))
    return _section("latent", "Latent space", "".join(parts))


def _reproduction(reproductions: list[ReproductionData]) -> str:
    from demvae.evaluation.tables import side_by_side_cells
    from demvae.reproduce.claims import check_claims
    from demvae.reproduce.run import aggregate, seed_stats
    from demvae.reproduce.tables import TABLES

    parts = []
    for rep in reproductions:
        res = rep.results
        table = TABLES.get(res.get("table"))
        title = table.title if table else str(res.get("table"))
        parts.append(f"<h3>{escape(title)} — scale <code>{escape(str(res.get('scale')))}</code> "
                     f"(<code>{escape(str(rep.path))}</code>)</h3>")
        if table is not None:
            paper = {r.label: r.paper for r in table.rows}
            _, body = side_by_side_cells(aggregate(table, res.get("rows", [])), paper, list(table.metrics))
            groups = "".join(f'<th colspan="3">{escape(_title(m))}</th>' for m in table.metrics)
            head = (f'<tr><th rowspan="2">model</th>{groups}</tr><tr>'
                    + "<th>paper</th><th>ours</th><th>Δ</th>" * len(table.metrics) + "</tr>")
            rows = "".join("<tr>" + f"<td>{escape(row[0])}</td>" + "".join(f'<td class="num">{escape(c)}</td>'
                                                                          for c in row[1:]) + "</tr>" for row in body)
            parts.append("<p>Per metric: the paper, ours (mean ± std over seeds), ours − paper.</p>")
            parts.append(f'<div class="scroll"><table class="paper"><thead>{head}</thead><tbody>{rows}</tbody>'
                         "</table></div>")
            if table.claims:
                verdicts = check_claims(table.claims, seed_stats(table, res.get("rows", [])))
                parts.append("<p>The paper's claims, checked on mean ± std over seeds:</p><ul>" + "".join(
                    f"<li><b>{escape(v.mark)}</b> {escape(c.name)}: {escape(v.numbers)}</li>" for c, v in verdicts)
                    + "</ul>")
            conventions = dict.fromkeys(c for c in map(convention_for, table.metrics) if c is not None)
            parts.append('<ul class="conv">' + "".join(f"<li>{_convention(c)}</li>" for c in conventions) + "</ul>")
        figures = "".join(_figure(plots.file_uri(f), f"<code>{escape(f.name)}</code>", f.stem) for f in rep.figures)
        parts.append(f'<div class="figs">{figures}</div>')
        if rep.histories:
            parts.append(f"<details><summary>training curves of the {len(rep.histories)} runs</summary>"
                         f"{_training(rep.histories)}</details>")
        if rep.markdown:
            parts.append(f"<details><summary><code>results.md</code></summary><pre>{escape(rep.markdown)}</pre>"
                         "</details>")
    return _section("reproduction", "Reproduction", "".join(parts))


# --- the page ----------------------------------------------------------------------------------------------

CSS = """
:root{--fg:#1d2330;--muted:#5b6475;--line:#dde1e8;--bg:#fff;--band:#f5f7fa;--accent:#2457c5}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{padding:18px 28px 10px;border-bottom:1px solid var(--line);background:var(--band)}
header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;color:var(--muted)}
nav{position:sticky;top:0;z-index:2;background:var(--bg);border-bottom:1px solid var(--line);padding:6px 28px}
nav a{margin-right:16px;color:var(--accent);text-decoration:none;font-weight:600}
main{padding:0 28px 40px;max-width:1500px}
section{margin-top:26px;scroll-margin-top:40px}
h3[id]{scroll-margin-top:40px}
h2{font-size:19px;border-bottom:2px solid var(--line);padding-bottom:4px}
h3{font-size:16px;margin:20px 0 6px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
thead th{background:var(--band);position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.conv{color:var(--muted);max-width:560px;font-size:12px}
th.sort{cursor:pointer;user-select:none;white-space:nowrap}
th.sort::after{content:" ↕";color:#aab}
th[aria-sort=ascending]::after{content:" ▲";color:var(--accent)}
th[aria-sort=descending]::after{content:" ▼";color:var(--accent)}
ul.sents{margin:0;padding-left:16px}
ul.sents li{margin:1px 0}
table.codes td:nth-last-child(-n+2){min-width:300px}
mark{background:#ffe27a;padding:0}
.search{margin:8px 0}
.search input{font:inherit;padding:5px 8px;width:340px;border:1px solid var(--line);border-radius:4px}
.count{color:var(--muted);margin-left:8px}
.note{color:var(--muted)}
figure{margin:8px 0}
figure img{max-width:100%;height:auto;border:1px solid var(--line)}
figcaption{color:var(--muted);font-size:12px;max-width:900px}
details{margin:6px 0}
summary{cursor:pointer}
pre{background:var(--band);padding:8px;overflow:auto;font-size:12px}
.cols{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}
table.kv th{background:none;position:static}
ul.conv{color:var(--muted);font-size:12px}
.cards{display:flex;gap:18px;flex-wrap:wrap}
.card{border:1px solid var(--line);border-radius:8px;padding:10px 16px 12px;width:600px;background:var(--bg)}
.card h3{margin:4px 0 0}
.card a{color:var(--accent);text-decoration:none}
.sub{color:var(--muted);margin:2px 0 6px;font-size:12.5px}
.glance{display:flex;gap:14px;align-items:flex-start}
.glance img{width:250px;border:none}
dl{display:grid;grid-template-columns:auto auto;gap:3px 12px;margin:6px 0;font-size:13px}
dt{color:var(--muted)}
dd{margin:0;font-weight:600;font-variant-numeric:tabular-nums}
ul.top{margin:0;padding-left:18px;font-size:13px}
ul.top li{margin:3px 0}
q{color:var(--muted);font-style:italic}
.figs{display:flex;flex-wrap:wrap;gap:10px}
.figs figure{width:340px;margin:0}
table.paper td:nth-child(3n+2),table.paper tr:first-child th+th{border-left:1px solid var(--line)}
table.paper tr:last-child th:nth-child(3n+1){border-left:1px solid var(--line)}
table.paper th{text-align:center}
"""

# Sorting (click a column header: ascending, then descending) and the sentence search: plain DOM code.
SCRIPT = """
for (const th of document.querySelectorAll('th.sort')) {
  const sort = () => {
    const table = th.closest('table'), col = th.cellIndex, body = table.tBodies[0];
    const dir = th.getAttribute('aria-sort') === 'ascending' ? -1 : 1;
    for (const other of table.querySelectorAll('th')) other.removeAttribute('aria-sort');
    th.setAttribute('aria-sort', dir > 0 ? 'ascending' : 'descending');
    // numbers by value (a missing one, with no data-v, last); text in natural order ("2-10" after "2-9")
    const num = th.dataset.type === 'num';
    const key = row => { const c = row.cells[col]; return num ? parseFloat(c.dataset.v ?? 'NaN') : c.textContent; };
    const cmp = (x, y) => num ? (isNaN(x) ? (isNaN(y) ? 0 : 1) : isNaN(y) ? -1 : dir * (x - y))
      : dir * x.localeCompare(y, undefined, {numeric: true});
    const rows = [...body.rows].sort((a, b) => cmp(key(a), key(b)));
    body.append(...rows);
  };
  th.addEventListener('click', sort);
  th.addEventListener('keydown', e => { if (e.key === 'Enter') sort(); });
}
const esc = s => s.replace(/[&<>"]/g, c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'})[c]);
for (const input of document.querySelectorAll('.search input')) {
  const table = document.getElementById(input.dataset.table);
  const count = document.querySelector(`.count[data-for="${input.dataset.table}"]`);
  for (const li of table.querySelectorAll('.sent')) li.dataset.text = li.textContent;
  const filter = () => {
    const q = input.value.trim().toLowerCase();
    let shown = 0;
    for (const row of table.tBodies[0].rows) {
      let hit = !q;
      for (const li of row.querySelectorAll('.sent')) {
        const text = li.dataset.text, at = q ? text.toLowerCase().indexOf(q) : -1;
        li.innerHTML = at < 0 ? esc(text) : esc(text.slice(0, at)) + '<mark>' + esc(text.slice(at, at + q.length))
          + '</mark>' + esc(text.slice(at + q.length));
        hit = hit || at >= 0;
      }
      row.hidden = !hit;
      shown += hit;
    }
    count.textContent = q ? `${shown} of ${table.tBodies[0].rows.length} codes` : '';
  };
  input.addEventListener('input', filter);
}
"""


def render(runs: list[RunData], reproductions: list[ReproductionData]) -> str:
    """The page for the collected folders (figures drawn here)."""
    sections = []
    if runs:
        sections += [_overview(runs, reproductions), _codes(runs), _latent(runs),
                     _section("training", "Training", _training({r.name: r.history for r in runs})),
                     _metrics(runs), _config(runs)]
    elif reproductions:
        sections.append(_overview(runs, reproductions))
    if reproductions:
        sections.append(_reproduction(reproductions))
    titles = re.findall(r'<section id="([^"]+)"><h2>([^<]+)</h2>', "".join(sections))
    nav = "".join(f'<a href="#{i}">{t}</a>' for i, t in titles)
    names = ", ".join(r.name for r in [*runs, *reproductions])
    when = datetime.now().strftime("%Y-%m-%d %H:%M")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>{TITLE} — {escape(names)}</title>'
            f"<style>{CSS}</style></head><body><header><h1>demvae report</h1><p>{escape(names)} · written {when} "
            f"by demvae {__version__}</p></header><nav>{nav}</nav><main>{''.join(sections)}</main>"
            f"<script>{SCRIPT}</script></body></html>\n")
