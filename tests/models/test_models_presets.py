"""Every model preset (``configs/presets.yaml``): tiny build, a few training steps, the terms it returns,
a run folder that round-trips, prior / conditional sampling and importance weights."""

from __future__ import annotations

import json
import math

import pytest
import torch

import demvae
from demvae.config import presets
from demvae.models import TextVAE
from demvae.training import load_run

NAMES = list(presets())
KL_TYPE = ("kl_c", "kl_z_avg", "dispersion", "param_var")


def _batch(trainer, n=16, split="valid"):
    return trainer.data.splits[split].batch(list(range(n)))


def _code_size(cfg) -> int:
    return cfg.model.n_values


@pytest.mark.parametrize("name", NAMES)
def test_terms_are_valid_after_training(trained, name):
    trainer, run_dir = trained(name)
    model, cfg = trainer.model, trainer.cfg
    assert trainer.state.step == cfg.train.max_steps
    batch = _batch(trainer)
    model.train()
    torch.manual_seed(0)
    terms = model(batch, 2)
    assert terms.rec is not None
    if cfg.model.latent == "none":
        assert set(terms.present()) == {"rec"}
    for key, value in terms.present().items():
        assert torch.isfinite(value).all(), f"{name}: term {key} is not finite"
    assert terms.rec.shape == (batch.size,)
    assert (terms.rec > 0).all()
    for key, value in terms.present().items():
        if key in KL_TYPE:
            assert value.shape[0] == batch.size
            assert value.min() >= -1e-5, f"{name}: {key} < 0 ({value.min()})"
    if terms.mutual_info is not None:
        mi = terms.mutual_info
        assert mi.min() >= -1e-6
        assert mi.max() <= math.log(_code_size(cfg)) + 1e-5
    if cfg.model.supervise:
        assert terms.supervision is not None and (terms.supervision >= 0).all()
    # the models that should carry a code term carry it
    if name in ("gm-vae", "dgm-vae", "dgm-vae-mi", "cm-vae", "dcm-vae"):
        assert {"kl_c", "mutual_info", "dispersion", "param_var", "kl_z_avg"} <= set(terms.present())
    if name in ("dvae", "dae", "di-vae", "dvae-sup"):
        assert {"kl_c", "mutual_info"} <= set(terms.present())
    if name == "vae":
        assert set(terms.present()) == {"rec", "kl_z_avg"}
    if name == "ae":
        assert set(terms.present()) == {"rec"}


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
    a, b = a.present(), b.present()
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
    assert (g, k) == (trainer.cfg.model.n_variables, trainer.cfg.model.n_values)
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


def _independent_log_ratio(block, h, features):
    """``log p(latent) − log q(latent | x)`` of given features, from torch.distributions and the
    raw head/prior outputs (not the library's families)."""
    from torch.distributions import Categorical, Normal

    b, n = features.shape[:2]
    if not hasattr(block, "prior"):  # DiscreteLatent: c one-hot, uniform prior
        g, k = block.n_variables, block.n_values
        c = features.view(b, n, g, k).argmax(-1)
        log_q = Categorical(logits=block.logits(h).view(b, 1, g, k)).log_prob(c).sum(-1)
        return -g * math.log(k) - log_q
    g, k, u = block.n_variables, block.n_values, block.n_units
    raw_q = block.posterior(h).view(b, 1, g, u, -1)
    raw_p = block.prior.raw  # [G, K, U, P]
    if raw_p.shape[-1] == 2 and features.shape[-1] == g * u:  # Gaussian: (mean, log-variance)
        z = features.view(b, n, g, u)
        log_q = Normal(raw_q[..., 0], (0.5 * raw_q[..., 1]).exp()).log_prob(z).sum((-1, -2))
        comp = Normal(raw_p[..., 0], (0.5 * raw_p[..., 1]).exp()).log_prob(z.unsqueeze(-2)).sum(-1)  # [b,n,G,K]
    else:  # categorical z: softmax([η, 0]) per unit
        d = raw_p.shape[-1] + 1
        z = features.view(b, n, g, u, d).argmax(-1)
        pad = lambda eta: torch.cat([eta, torch.zeros_like(eta[..., :1])], -1)  # noqa: E731
        log_q = Categorical(logits=pad(raw_q)).log_prob(z).sum((-1, -2))
        comp = Categorical(logits=pad(raw_p)).log_prob(z.unsqueeze(-2)).sum(-1)  # [b, n, G, K]
    log_p = (comp.logsumexp(-1) - math.log(k)).sum(-1)
    return log_p - log_q


@pytest.mark.parametrize("name", [n for n in NAMES if n not in ("rnnlm", "ae")])
def test_log_weights_against_an_independent_computation(trained, name):
    """log w = log p(x | latent) + log p(latent) − log q(latent | x): the latent part recomputed
    from torch.distributions on the same draws (a sign error or a dropped term fails here)."""
    trainer, _ = trained(name)
    model = trainer.model.eval()
    batch = _batch(trainer, 6)
    n = 4
    with torch.no_grad():
        torch.manual_seed(3)
        got = model.log_weights(batch, n)
        torch.manual_seed(3)
        h = model.encode(batch)
        draws = [block.importance_sample(h, n) for block in model.latents]
        features = [f for f, _ in draws]
        init, inputs = model.decoder_inputs([f.flatten(0, 1) for f in features])
        log_px = model.decoder.log_likelihood(batch.tokens, batch.host_lengths, init, inputs, n).view(-1, n)
        ratio = sum(_independent_log_ratio(block, h, f) for block, f in zip(model.latents, features))
    torch.testing.assert_close(got, (log_px + ratio).double(), rtol=1e-5, atol=1e-4)
