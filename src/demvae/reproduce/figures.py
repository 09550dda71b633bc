"""The paper's figures: Figure 5 (PTB, log-likelihood vs rPPL over a sweep) and Figure 4 (DailyDialog,
a 2-D latent space at two points of training: prior components and posterior means by code)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from demvae.config import merge  # noqa: E402

# Figure 5: each model over a sweep of its regularisation strength (β for DGM-VAE, the KL weight else).
FIGURE5_SWEEP = {
    "VAE": ("ptb/vae", [{"objective": {"kl_weight": w}} for w in (0.5, 1.0)]),
    "DI-VAE": ("ptb/di-vae", [{"objective": {"kl_weight": w}} for w in (0.5, 1.0)]),
    "semi-VAE": ("ptb/semi-vae", [{"objective": {"kl_weight": w}} for w in (0.5, 1.0)]),
    "GM-VAE": ("ptb/gm-vae", [{"objective": {"kl_weight": w}} for w in (0.5, 1.0)]),
    "DGM-VAE": ("ptb/dgm-vae", [{"objective": {"beta": b}} for b in (0.2, 0.5, 0.8)]),
}

# Figure 4: four models with one 2-D Gaussian block, drawn at two training steps.
FIGURE4_MODELS = ("gm-vae", "dgm-vae", "gm-vae-mi", "dgm-vae-mi")
FIGURE4_STEPS = {"smoke": (3, 6), "mini": (400, 2000), "paper": (2000, 10000)}


def draw_figure(table: str, scale: str, out: Path, data_dir: str | None, corpus: str | None,
                device: str = "auto", jobs: int = 1) -> list[Path]:
    if table.startswith("ptb"):
        return [figure5(scale, out, data_dir, corpus, device, jobs)]
    return figure4(scale, out, data_dir, corpus, device)


def figure5(scale: str, out: Path, data_dir: str | None, corpus: str | None, device: str, jobs: int) -> Path:
    from demvae.config import compose, find_config, load_yaml
    from demvae.reproduce.run import SCALES, Job, devices_for, execute, place, scale_overrides

    job_list = []
    for label, (config, sweep) in FIGURE5_SWEEP.items():
        base = scale_overrides(scale, load_yaml(find_config(config)), device, 0, data_dir, corpus)
        for i, extra in enumerate(sweep):
            overrides = merge(base, extra)
            # the point at the config's own value is the table's row: reuse its run folder
            same = compose(config=config, overrides=overrides) == compose(config=config, overrides=base)
            run_dir = out / f"{config.split('/')[-1]}-seed0" if same else out / "figure5" / f"{label}-{i}"
            eval_options = dict(SCALES[scale]["eval"], device=device, data_dir=data_dir)
            job_list.append(Job("figure5", label, config, 0, str(run_dir), overrides, ("nll", "prior"),
                                eval_options, 1))
    rows = execute(place(job_list, devices_for(device)), jobs)
    return plot_figure5(rows, out / "figure5.png", f"Figure 5 (PTB, scale {scale})")


def plot_figure5(rows: list[dict], path: Path, title: str) -> Path:
    """Test log-likelihood against reverse perplexity (log scale), one line per model."""
    fig, ax = plt.subplots(figsize=(5, 4))
    for label in FIGURE5_SWEEP:
        pts = sorted((r["nll"], r["rppl"]) for r in rows if r["label"] == label)
        ax.plot([-p[0] for p in pts], [p[1] for p in pts], "o-", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("test log-likelihood (nats / sentence)")
    ax.set_ylabel("reverse perplexity")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def figure4(scale: str, out: Path, data_dir: str | None, corpus: str | None, device: str) -> list[Path]:
    from demvae.reproduce.run import devices_for

    device = devices_for(device)[0]
    from demvae import runs
    from demvae.config import compose
    from demvae.data.prepare import prepare
    from demvae.reproduce.run import scale_overrides
    from demvae.training import load_run
    from demvae.training.run_folder import RunFolder

    first, second = FIGURE4_STEPS[scale]
    paths = []
    for name in FIGURE4_MODELS:
        config = f"dd/{name}"
        overrides = merge(scale_overrides(scale, {}, device, 0, data_dir, corpus), {
            "model": {"n_variables": 1, "n_values": 5, "n_units": 2},
            "train": {"max_steps": second, "eval_every": first},
        })
        run_dir = out / "figure4" / name
        if not RunFolder(run_dir).config.exists():
            runs.train(compose(config=config, overrides=overrides), run_dir, until_step=first)
        for step in (first, second):
            if step == second:
                runs.resume(run_dir)
            run = load_run(run_dir, weights="last")
            data = prepare(run.config.data, run.vocab)
            path = out / f"figure4-{name}-step{step}.png"
            plot_latent_map(run.model, data.splits["test"], path, f"{name}, step {step}")
            paths.append(path)
    return paths


def plot_latent_map(model, split, path: Path, title: str, n_points: int = 300) -> None:
    """Prior components (mean and 1-σ ellipse) and posterior means of test sentences by code."""
    from demvae.evaluation.codes import encode_codes
    from demvae.reproduce.latent_map import draw_latent_map, latent_map

    m = latent_map(model, split, n_points)
    codes = encode_codes(model, split)
    assert m is not None and codes is not None  # Figure 4's models: a Gaussian mixture with a code
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    names = {int(k): f"code {k}" for k in m.prior_codes[:, 0]}
    draw_latent_map(ax, m, codes.codes[m.index, 0], names, title, prior_groups=m.prior_codes[:, 0])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
