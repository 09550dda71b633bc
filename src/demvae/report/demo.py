"""The main job on the built-in corpus: train DGM-VAE with the mutual-information term (and GM-VAE to
compare), show the clusters and how well generation follows the codes, write the HTML report of the runs."""

from __future__ import annotations

from pathlib import Path

from demvae import runs
from demvae.data.prepare import prepare
from demvae.evaluation.codes import encode_codes, format_code
from demvae.evaluation.control import ControlOptions, control_scores
from demvae.evaluation.run import EvalOptions, evaluate_run
from demvae.evaluation.tables import format_table
from demvae.models.generation import PAPER
from demvae.report.clusters import cluster_report
from demvae.report.html import is_report, write_report
from demvae.training import load_run
from demvae.training.outputs import OutputRefused

MAIN, COMPARISON = "dgm-vae-mi", "gm-vae"
"""The demo's models: DGM-VAE with the mutual-information term (its codes are the purest and the most
controllable on the built-in corpus, README) and GM-VAE (no dispersion term) to compare."""


def summarize(run_dir: Path, device: str = "auto") -> tuple[dict, dict, object, object, object]:
    """(homogeneity row, control result of the default procedure, run, prepared data, test codes); writes
    ``metrics-test.json`` (posterior, clusters, control) that the report reads."""
    results = evaluate_run(run_dir, EvalOptions(metrics=("posterior", "clusters", "control"), device=device))
    run = load_run(run_dir)
    data = prepare(run.config.data, run.vocab)
    test = data.splits["test"]
    codes = encode_codes(run.model, test)
    scores = results["homogeneity"]
    row = {
        "model": run.config.model_name,
        "homogeneity(intent)": scores["intent"]["homogeneity"],
        "homogeneity(style)": scores["style"]["homogeneity"],
        "Var": results.get("param_var"),
        "KL(c)": results.get("kl_c"),
        "MI": results.get("mutual_info"),
        "codes used": results["codes_used"],
        "-ELBO": results["neg_elbo"],
    }
    return row, results["control"], run, data, codes


def control_rows(controls: dict[str, dict]) -> list[dict]:
    """One row per (model, procedure): code recovery, and per label agreement beside its ceiling and chance."""
    rows = []
    for name, c in controls.items():
        row = {"model, procedure": name, "code recovery": c["recovery"]}
        for label, s in c["labels"].items():
            row.update({f"{label} agreement": s["agreement"], f"{label} ceiling": s["ceiling"],
                        f"{label} chance": s["chance"]})
        rows.append(row)
    return rows


def run_demo(out: Path, compare: bool = True, steps: int | None = None, device: str | None = None) -> str:
    page = Path(out) / "report.html"
    if page.exists() and not is_report(page):  # said before the training, not after it
        raise OutputRefused(f"{page} exists and is not a demvae report: move it, or give the demo another --out")
    train = {}
    if steps is not None:
        train["max_steps"] = steps
    if device is not None:
        train["device"] = device
    overrides = {"train": train} if train else {}
    names = [MAIN] + ([COMPARISON] if compare else [])
    rows, controls, first, run_dirs = [], {}, None, []
    for name in names:
        run_dirs.append(runs.train_or_reuse(f"builtin/{name}", Path(out) / name, overrides))
        row, control, run, data, codes = summarize(run_dirs[-1], device or "auto")
        rows.append(row)
        controls[f"{name}, {control['procedure']}"] = control
        if first is None:  # the main model: also the paper's generation, for comparison (next row)
            first = (run, data, codes)
            prior = control_scores(run.model, run.vocab, data.splits["test"], data.splits["train"],
                                   ControlOptions(procedure=PAPER))
            controls[f"{name}, prior (the paper's)"] = prior.to_dict()
    run, data, codes = first
    report = write_report(run_dirs, page, device=device or "auto")
    columns = list(rows[0])
    crows = control_rows(controls)
    parts = [
        format_table(rows, columns, title="Built-in corpus (8 intents x 3 styles), test split", floatfmt=".3f"),
        "",
        "Homogeneity: how purely each discovered code holds one intent (1 = perfect, 0 = unrelated).",
        "Var: variance of the prior components' natural parameters; near 0 means the mixture collapsed.",
        "",
        format_table(crows, list(crows[0]), title="Generation from a code (20 sentences per code holding >= 1% of "
                     "test)", floatfmt=".3f"),
        "",
        "Code recovery: share of generated sentences that encode back to their code. Agreement: share a classifier "
        "(trained on the gold train split) gives the code's majority label; ceiling = the codes' purity, chance = "
        "the largest label's share.",
        "aggregate-t0.5 (the default of `demvae sample --code` and `demvae clusters`): z from the code's aggregate "
        "posterior on train, temperature 0.5; prior: z ~ p(z|code), as the paper generates.",
        "",
        f"What {MAIN} found:",
        cluster_report(run, data.corpus, "test", codes, data.splits["test"], top=3, n_generated=2, max_clusters=12,
                       data=data),
        f"Runs are in {out}/ (try `demvae sample {out}/{MAIN} --code {format_code([0] * run.model.code_shape()[0])}`"
        f" or `demvae clusters {out}/{MAIN}`).",
        f"The report (open it in a browser): {report}",
    ]
    return "\n".join(parts)
