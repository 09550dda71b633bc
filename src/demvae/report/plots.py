"""The report's figures (matplotlib), as PNG ``data:`` URIs an HTML page can hold inline."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from demvae.report.analysis import LatentGroups, RunData  # noqa: E402
from demvae.report.history import History, plot_histories  # noqa: E402
from demvae.reproduce.latent_map import LatentMap, draw_latent_map  # noqa: E402


def png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure_uri(fig, dpi: int = 100) -> str:
    """The figure as a PNG ``data:`` URI (the figure is closed)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return png_uri(buffer.getvalue())


def file_uri(path: Path) -> str:
    """A PNG file as a ``data:`` URI."""
    return png_uri(Path(path).read_bytes())


def training_uri(histories: dict[str, History]) -> str | None:
    if not any(h.train or h.valid for h in histories.values()):
        return None
    return figure_uri(plot_histories(histories))


def _draw(ax, m: LatentMap, c: LatentGroups | None, legend: bool = True) -> None:
    if c is None:
        draw_latent_map(ax, m, None, {}, "posterior means", legend=legend)
    else:  # ellipses where the colours are the codes; elsewhere only the components' means
        draw_latent_map(ax, m, c.ids, c.names, c.title, prior_groups=c.prior_ids,
                        ellipses=c.prior_ids is not None, legend=legend)


def latent_uri(run: RunData) -> str | None:
    """One panel per colouring (by code, by each label; uncoloured when there is none)."""
    if run.latent is None:
        return None
    colourings: list[LatentGroups | None] = [*run.colourings] or [None]
    fig, axes = plt.subplots(1, len(colourings), figsize=(4.6 * len(colourings), 4.6), squeeze=False)
    for ax, c in zip(axes[0], colourings):
        _draw(ax, run.latent, c)
    fig.tight_layout()
    return figure_uri(fig)


def latent_thumbnail_uri(run: RunData) -> str | None:
    """The latent map's first colouring (by code where there is one), small and without a legend."""
    if run.latent is None:
        return None
    fig, ax = plt.subplots(figsize=(3.3, 3.3))
    _draw(ax, run.latent, run.colourings[0] if run.colourings else None, legend=False)
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    return figure_uri(fig)
