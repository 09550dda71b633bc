"""Every preset of ``demvae.models.PRESETS``: tiny build, a few training steps, the terms it returns,
a run folder that round-trips, prior / conditional sampling and importance weights."""

from __future__ import annotations

import json
import math

import pytest
import torch

import demvae
from demvae.models import PRESETS, TextVAE
from demvae.training import load_run

NAMES = list(PRESETS)
KL_TYPE = ("kl_c", "kl_z_avg", "dispersion", "param_var")


def _batch(trainer, n=16, split="valid"):
    return trainer.data.splits[split].batch(list(range(n)))


def _code_size(cfg) -> int:
    return cfg.model.code_size


@pytest.mark.parametrize("name", NAMES)
def test_terms_are_valid_after_training(trained, name):
    trainer, run_dir = trained(name)
    model, cfg = trainer.model, trainer.cfg
    assert trainer.state["step"] == cfg.train.max_steps
    batch = _batch(trainer)
    model.train()
    torch.manual_seed(0)
    terms = model(batch, 2)
    assert "rec" in terms
    if cfg.model.latent == "none":
        assert set(terms) == {"rec"}
    for key, value in terms.items():
        assert torch.isfinite(value).all(), f"{name}: term {key} is not finite"
    assert terms["rec"].shape == (batch.size,)
    assert (terms["rec"] > 0).all()
    for key in KL_TYPE:
        if key in terms:
            assert terms[key].shape[0] == batch.size
            assert terms[key].min() >= -1e-5, f"{name}: {key} < 0 ({terms[key].min()})"
    if "mutual_info" in terms:
        mi = terms["mutual_info"]
        assert mi.min() >= -1e-6
        assert mi.max() <= math.log(_code_size(cfg)) + 1e-5
    if cfg.model.supervise:
        assert "supervision" in terms and (terms["supervision"] >= 0).all()
    # the models that should carry a code term carry it
    if name in ("gm-vae", "dgm-vae", "dgm-vae-mi", "cm-vae", "dcm-vae"):
        assert {"kl_c", "mutual_info", "dispersion", "param_var", "kl_z_avg"} <= set(terms)
    if name in ("dvae", "dae", "di-vae", "dvae-sup"):
        assert {"kl_c", "mutual_info"} <= set(terms)
    if name == "vae":
        assert set(terms) == {"rec", "kl_z_avg"}
    if name == "ae":
        assert set(terms) == {"rec"}


@pytest.mark.parametrize("name", NAMES)
def test_metrics_records_are_finite(trained, name):
    trainer, run_dir = trained(name)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    kinds = {r["kind"] for r in records}
    assert kinds == {"train", "valid"}
    for r in records:
        for k, v in r.items():
            if isinstance(v, float):
                assert math.isfinite(v), f"{name}: {r['kind']} record step {r['step']}: {k}={v}"
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == [3, 6]
    valid = [r for r in records if r["kind"] == "valid"]
    assert [r["step"] for r in valid] == [6]
    if "mutual_info" in valid[0]:
        assert -1e-6 <= valid[0]["mutual_info"] <= math.log(_code_size(trainer.cfg)) + 1e-6


@pytest.mark.parametrize("name", NAMES)
def test_run_folder_round_trips(trained, name):
    trainer, run_dir = trained(name)
    loaded = load_run(run_dir, weights="last")
    assert isinstance(loaded.model, TextVAE)
    assert not loaded.model.training
    assert loaded.vocab == trainer.vocab
    assert loaded.config.to_dict() == trainer.cfg.to_dict()
    ours, theirs = trainer.model.state_dict(), loaded.model.state_dict()
    assert set(ours) == set(theirs)
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), f"{name}: {key} differs after loading"

    batch = _batch(trainer)
    trainer.model.eval()
    torch.manual_seed(123)
    a = trainer.model(batch, 2)
    torch.manual_seed(123)
    b = loaded.model(batch, 2)
    assert set(a) == set(b)
    for key in a:
        assert torch.equal(a[key], b[key]), f"{name}: forward term {key} differs after loading"

    # the single validation fell on the last step, so the best model is the last one
    best = demvae.load(run_dir)
    assert isinstance(best, TextVAE) and not best.training
    for key, value in best.state_dict().items():
        assert torch.equal(value, ours[key]), f"{name}: best model {key} differs"


@pytest.mark.parametrize("name", NAMES)
def test_sample_prior_shape(trained, name):
    trainer, _ = trained(name)
    model = trainer.model.eval()
    max_len = trainer.cfg.data.max_len
    torch.manual_seed(0)
    ids = model.sample_prior(5)
    assert ids.dtype == torch.long
    assert ids.dim() == 2 and ids.shape[0] == 5 and 1 <= ids.shape[1] <= max_len - 1
    assert ids.min() >= 0 and ids.max() < len(trainer.vocab)


@pytest.mark.parametrize("name", NAMES)
def test_conditional_sampling_with_codes(trained, name):
    trainer, _ = trained(name)
    model = trainer.model.eval()
    shape = model.code_shape()
    if shape is None:
        assert name in ("rnnlm", "ae", "vae"), f"{name} should have a discrete code"
        pytest.skip("model without a discrete code")
    g, k = shape
    assert (g, k) == (trainer.cfg.model.n_codes, trainer.cfg.model.code_size)
    n = 2 * k
    codes = (torch.arange(n) % k).unsqueeze(1).expand(n, g).contiguous()
    torch.manual_seed(0)
    ids = model.sample_prior(n, codes=codes)
    assert ids.shape[0] == n and 1 <= ids.shape[1] <= trainer.cfg.data.max_len - 1
    if name in ("dae", "dvae", "di-vae", "dvae-sup"):
        # a discrete code is the whole latent and decoding is greedy: the code fixes the sentence
        again = model.sample_prior(n, codes=codes)
        assert torch.equal(ids, again)
        assert torch.equal(ids[:k], ids[k:])


@pytest.mark.parametrize("name", NAMES)
def test_log_weights(trained, name):
    trainer, _ = trained(name)
    model = trainer.model.eval()
    batch = _batch(trainer, 8)
    torch.manual_seed(0)
    if name == "ae":
        with pytest.raises(ValueError):
            model.log_weights(batch, 3)
        return
    lw = model.log_weights(batch, 3)
    assert lw.shape == (8, 3) and lw.dtype == torch.float64
    assert torch.isfinite(lw).all()
    # log p(x) <= 0 for every model: a log-mean-exp of the weights is a (stochastic) bound on it
    assert (lw.logsumexp(1) - math.log(3) < 0).all()
    if name == "rnnlm":  # exact log p(x), repeated
        assert torch.equal(lw[:, 0], lw[:, 1])
