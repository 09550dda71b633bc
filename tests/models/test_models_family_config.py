"""A mixture latent of any registered family, chosen from the config (``model.latent: mixture``,
``model.family``): the paper's gm/cm build the same blocks as before, a bad family key fails before any
work starts, and a Poisson-mixture VAE (``configs/builtin/dpm-vae.yaml``) trains end to end on the built-in
corpus and generates from its codes."""

from __future__ import annotations

import json
import math

import pytest
import torch

from demvae.config import compose
from demvae.errors import ConfigError
from demvae.expfam import Categorical, Gaussian, Poisson
from demvae.models import build_model, generation
from demvae.reproduce.latent_map import gaussian_block


def _block(latent: str, **model):
    cfg = compose(model="dgm-vae", overrides={"model": {"latent": latent, "embed_dim": 8, "hidden_size": 8, **model}})
    return build_model(cfg.model, 20, 1, 2).latents[0]


@pytest.mark.parametrize(("latent", "model", "family"), [
    ("gm", {}, Gaussian), ("cm", {"z_values": 5}, Categorical),
    ("mixture", {"family": "gaussian"}, Gaussian), ("mixture", {"family": "categorical", "z_values": 5}, Categorical),
    ("mixture", {"family": "poisson"}, Poisson),
])
def test_the_mixture_latent_takes_its_family_from_the_config(latent, model, family):
    block = _block(latent, **model)
    assert type(block.family) is family
    if family is Categorical:
        assert block.family.z_values == 5 and block.feature_dim == block.n_variables * block.n_units * 5


def test_mixture_of_gaussians_is_the_gm_latent():
    torch.manual_seed(0)
    gm = _block("gm")
    torch.manual_seed(0)
    mixture = _block("mixture", family="gaussian")
    assert all(torch.equal(a, b) for a, b in zip(gm.state_dict().values(), mixture.state_dict().values()))


@pytest.mark.parametrize(("model", "message"), [
    ({"latent": "mixture", "family": "beta"}, "model.family: 'beta' is not one of gaussian, categorical, poisson"),
    ({"latent": "gm", "family": "poisson"}, "applies to model.latent: mixture"),
])
def test_a_bad_family_key_is_a_config_error(model, message):
    with pytest.raises(ConfigError, match=message):
        compose(model="dgm-vae", overrides={"model": model})


def test_a_poisson_mixture_vae_trains_on_the_builtin_corpus(tmp_path, tiny_overrides):
    from demvae.training import Trainer

    cfg = compose(config="builtin/dpm-vae", overrides=tiny_overrides(
        {"model": {"dropout": 0.0}, "train": {"max_steps": 6, "eval_every": 6, "log_every": 3}}))
    assert (cfg.model.latent, cfg.model.family) == ("mixture", "poisson")
    trainer = Trainer(cfg, tmp_path / "run")
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    model = trainer.model
    assert isinstance(model.latents[0].family, Poisson)
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())  # it did train
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {r["kind"] for r in records} == {"train", "valid"}
    for r in records:
        for key, value in r.items():
            if isinstance(value, float):
                assert math.isfinite(value), (r["kind"], key, value)
    batch = trainer.data.splits["valid"].batch(list(range(8)))
    model.train()
    terms = model(batch, 2)
    for key, value in terms.present().items():
        assert torch.isfinite(value).all(), key
    assert (terms.dispersion >= -1e-5).all() and (terms.kl_z_avg >= -1e-5).all()
    # generation from codes: the counts the decoder reads come from the family's tempered sampler
    model.eval()
    stats = generation.code_stats(model, trainer.data.splits["train"])
    assert stats.family == "poisson" and not stats.joint  # counts: per variable and value, no joint Gaussian
    codes = torch.zeros(3, model.code_shape()[0], dtype=torch.long)
    for procedure in (generation.Procedure("aggregate", 0.5), generation.Procedure("mode"), generation.DEFAULT):
        ids = generation.generate_from_codes(model, codes, procedure, stats)
        assert ids.shape[0] == 3
    z = generation._draw(model.latents[0], codes, generation.Procedure("aggregate", 0.5), stats)
    assert torch.equal(z, z.round()) and (z >= 0).all()  # Poisson counts
    assert gaussian_block(model) is None  # the latent map draws continuous latents only
