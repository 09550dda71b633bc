"""Config vocabulary: renamed keys, presets, choices and key documentation."""

from __future__ import annotations

from dataclasses import fields

import pytest
import yaml

from demvae.config import LATENTS, SECTIONS, RunConfig, compose, doc, from_dict, parse_overrides, presets
from demvae.errors import ConfigError
from demvae.models import build_model


@pytest.mark.parametrize("old,new", [("n_codes", "n_variables"), ("code_size", "n_values"),
                                     ("z_dim", "n_units")])
def test_old_keys_name_their_new_name(old, new):
    with pytest.raises(ConfigError, match=f"model.{old} was renamed: use model.{new}"):
        from_dict({"model": {old: 3}})


def test_every_preset_composes_and_builds():
    for name in presets():
        cfg = compose(model=name)
        assert cfg.model_name == name
        build_model(cfg.model, 30, bos_id=2, eos_id=3)


@pytest.mark.parametrize("latent", LATENTS)
def test_every_latent_choice_builds(latent):
    cfg = from_dict({"model": {"latent": latent, "embed_dim": 8, "hidden_size": 8, "n_variables": 2,
                               "n_values": 3, "n_units": 2, "gaussian_dim": 4}})
    model = build_model(cfg.model, 30, bos_id=2, eos_id=3)
    assert len(model.latents) == {"none": 0, "semi": 2}.get(latent, 1)


def test_every_key_is_documented():
    cfg = RunConfig()
    for section in SECTIONS:
        if section == "model_name":
            continue
        for f in fields(type(getattr(cfg, section))):
            assert doc(section, f.name).strip(), f"{section}.{f.name} has no documentation"


def test_tied_output_needs_equal_sizes():
    with pytest.raises(ConfigError, match="embed_dim == model.hidden_size"):
        from_dict({"model": {"hidden_size": 64}})
    from_dict({"model": {"hidden_size": 64, "tie_output": False}})


@pytest.mark.parametrize("recurrence", ["auto", "gru", "shared"])
def test_model_recurrence_reaches_the_decoder(recurrence):
    cfg = from_dict({"model": {"embed_dim": 8, "hidden_size": 8, "recurrence": recurrence}})
    assert build_model(cfg.model, 30, bos_id=2, eos_id=3).decoder.recurrence == recurrence


def test_unknown_recurrence_is_refused():
    with pytest.raises(ConfigError, match="model.recurrence: 'fast' is not one of auto, gru, shared"):
        from_dict({"model": {"recurrence": "fast"}})


def test_train_amp_is_auto_by_default_and_takes_true_false_or_auto():
    assert RunConfig().train.amp == compose("dgm-vae", "ptb/dgm-vae").train.amp == "auto"
    for value in (True, False, "auto"):
        cfg = compose("dgm-vae", overrides=parse_overrides([f"train.amp={str(value).lower()}"]))
        assert cfg.train.amp == value and type(cfg.train.amp) is type(value)
        assert from_dict(yaml.safe_load(cfg.to_yaml())).train.amp == value  # the saved config keeps it
    with pytest.raises(ConfigError, match="train.amp: 'bf16' is not one of true, false, auto"):
        from_dict({"train": {"amp": "bf16"}})
    with pytest.raises(ConfigError, match="train.amp: expected bool or str, got 1"):
        from_dict({"train": {"amp": 1}})
