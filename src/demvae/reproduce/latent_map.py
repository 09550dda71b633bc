r"""The latent space in the plane (the paper's Figure 4, for any model): posterior means of a split's
sentences and the prior's components. Figure 4 (:mod:`.figures`) and ``demvae report`` draw it.

The map shows the model's first latent block with continuous units (not ``family.discrete``: GM-VAE/DGM-VAE's
Gaussian ``z``; the VAE's and semi-VAE's Gaussian part). Its ``D = M·U`` dimensions are drawn as they are when
``D ≤ 2``; otherwise they are projected on the first two principal components of the drawn posterior means
(scikit-learn's PCA), an affine map ``x ↦ W (x − m)``. A prior component with mean μ and variances σ² (the
family's ``moments``; a Gaussian's ``N(μ, diag σ²)``) projects to mean ``W(μ − m)`` and covariance
``W diag σ² Wᵀ``: it is drawn as its mean (×) and its 1-σ ellipse, so what the figure shows is exact, not a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from demvae.data.batching import EncodedSplit
from demvae.models import TextVAE
from demvae.models.latents import MixtureLatent

__all__ = ["Projection", "LatentMap", "gaussian_block", "latent_map", "draw_latent_map"]


def gaussian_block(model: TextVAE) -> MixtureLatent | None:
    """The model's first latent block with continuous units (a Gaussian's), if it has one."""
    return next((b for b in model.latents if isinstance(b, MixtureLatent) and not b.family.discrete), None)


@dataclass(frozen=True)
class Projection:
    """``x ↦ (x − center) Wᵀ``: [N, D] -> [N, 2]."""

    weight: np.ndarray
    """W [2, D]."""
    center: np.ndarray
    """m [D]."""
    description: str

    @classmethod
    def fit(cls, x: np.ndarray) -> Projection:
        """The identity (zero-padded) for ``D ≤ 2``, else PCA fitted on the rows of ``x`` [N, D]."""
        d = x.shape[1]
        if d <= 2:
            return cls(np.eye(2, d), np.zeros(d), f"the {d}-D latent itself (no projection)")
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2).fit(x)
        explained = pca.explained_variance_ratio_.sum()
        return cls(pca.components_, pca.mean_, f"PCA of the {d}-D posterior means (scikit-learn; the two "
                                               f"components explain {explained:.0%} of their variance)")

    def points(self, x: np.ndarray) -> np.ndarray:
        return (x - self.center) @ self.weight.T

    def covariances(self, variances: np.ndarray) -> np.ndarray:
        """Diagonal covariances [C, D] -> ``W diag(σ²) Wᵀ`` [C, 2, 2]."""
        return np.einsum("id,cd,jd->cij", self.weight, variances, self.weight)


@dataclass
class LatentMap:
    points: np.ndarray
    """Projected posterior means [N, 2]."""
    index: np.ndarray
    """The points' positions in the split [N]."""
    prior_codes: np.ndarray
    """The block's code of every drawn prior component [C, M] (zeros for a block without a code)."""
    prior_means: np.ndarray
    """[C, 2]"""
    prior_covs: np.ndarray
    """[C, 2, 2]"""
    projection: Projection


@torch.no_grad()
def latent_map(model: TextVAE, split: EncodedSplit, n_points: int = 2000, prior_codes: np.ndarray | None = None,
               seed: int = 0, batch_size: int = 200) -> LatentMap | None:
    """Posterior means of up to ``n_points`` sentences (a seeded random subset) and the prior components of
    ``prior_codes`` [C, M] (default: every component when the block has one variable, else none), projected
    together; ``None`` for a model without a continuous latent block."""
    block = gaussian_block(model)
    if block is None:
        return None
    model.eval()
    index = np.sort(np.random.default_rng(seed).permutation(len(split))[:n_points])
    means = np.concatenate([
        block.family.mode(block.posterior_natural(model.encode(split.batch(chunk.tolist()).to(model.device))))
        .flatten(1).double().cpu().numpy()
        for chunk in np.array_split(index, max(1, -(-len(index) // batch_size)))
    ])  # [N, M·U]
    n_var, k = block.n_variables, block.n_values
    if not block.has_code:
        prior_codes = np.zeros((1, n_var), dtype=np.int64)
    elif prior_codes is None:
        prior_codes = np.arange(k)[:, None] if n_var == 1 else np.zeros((0, n_var), dtype=np.int64)
    family = block.family
    mu, var = family.moments(family.mean_params(block.prior.natural_params().double()))  # [M, K, U] each
    picked = torch.as_tensor(prior_codes, dtype=torch.long).T  # [M, C]
    variables = torch.arange(n_var)[:, None]
    shape = (len(prior_codes), n_var * block.n_units)
    prior_mu = mu[variables, picked].permute(1, 0, 2).reshape(shape).cpu().numpy()  # [C, M·U]
    prior_var = var[variables, picked].permute(1, 0, 2).reshape(shape).cpu().numpy()
    projection = Projection.fit(means)
    return LatentMap(projection.points(means), index, np.asarray(prior_codes), projection.points(prior_mu),
                     projection.covariances(prior_var), projection)


def draw_latent_map(ax, m: LatentMap, groups: np.ndarray | None, names: dict[int, str], title: str,
                    prior_groups: np.ndarray | None = None, max_groups: int = 10, ellipses: bool = True,
                    legend: bool = True) -> None:
    """Scatter the points coloured by ``groups`` [N] (-1: not drawn): the largest groups, then the prior
    components' groups that hold no point, get a colour up to ``max_groups`` (and a legend entry from ``names``
    below the axes); the rest are grey. Then every prior component's mean (and 1-σ ellipse), in its group's
    colour when ``prior_groups`` [C] is given, else black."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Ellipse

    palette = plt.cm.tab10(np.arange(10))
    colour: dict[int, np.ndarray] = {}
    if groups is None:
        ax.scatter(*m.points.T, s=6, alpha=0.5, color="0.35", lw=0)
    else:
        keep = groups >= 0
        values, counts = np.unique(groups[keep], return_counts=True)
        ranked = [int(v) for v in values[np.argsort(-counts, kind="stable")]]
        ranked += [] if prior_groups is None else list(dict.fromkeys(int(g) for g in prior_groups if g not in ranked))
        colour = {v: palette[i % 10] for i, v in enumerate(ranked[:max_groups])}
        rest = keep & ~np.isin(groups, list(colour))
        if rest.any():
            ax.scatter(*m.points[rest].T, s=5, alpha=0.35, color="0.7", lw=0, label="other")
        for v, c in colour.items():
            sel = groups == v
            if sel.any():
                ax.scatter(*m.points[sel].T, s=7, alpha=0.7, color=c, lw=0, label=names.get(v, str(v)))
    for i, (mean, cov) in enumerate(zip(m.prior_means, m.prior_covs)):
        shade = colour.get(int(prior_groups[i]), "0.5") if prior_groups is not None else "black"
        values, vectors = np.linalg.eigh(cov)
        angle = np.degrees(np.arctan2(vectors[1, -1], vectors[0, -1]))
        width, height = 2 * np.sqrt(np.maximum(values[::-1], 0))
        if ellipses:
            ax.add_patch(Ellipse(mean, width, height, angle=angle, fill=False, color=shade, lw=1.5))
        ax.plot(*mean, "x", color=shade, ms=9, mew=2)
    ax.set_title(title, fontsize=10)
    ax.autoscale()
    ax.set_aspect("equal", adjustable="datalim")
    if colour and legend:
        ax.legend(fontsize=7.5, markerscale=2.5, loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=2,
                  frameon=False)
