"""The paper's figures at smoke scale on the built-in corpus: the PNGs are written and readable."""

from __future__ import annotations

import matplotlib.image as mpimg

from demvae.reproduce.figures import FIGURE4_MODELS, FIGURE4_STEPS, draw_figure


def _is_png(path) -> bool:
    image = mpimg.imread(path)
    return image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_figure4_latent_maps(tmp_path):
    paths = draw_figure("dd-table2", "smoke", tmp_path, None, "builtin", device="cpu")
    first, second = FIGURE4_STEPS["smoke"]
    expected = {f"figure4-{m}-step{s}.png" for m in FIGURE4_MODELS for s in (first, second)}
    assert {p.name for p in paths} == expected
    assert all(_is_png(p) for p in paths)


def test_figure5_ll_vs_rppl(tmp_path):
    (path,) = draw_figure("ptb-table1", "smoke", tmp_path, None, "builtin", device="cpu")
    assert path.name == "figure5.png" and _is_png(path)
