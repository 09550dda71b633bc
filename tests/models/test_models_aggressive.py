"""Aggressive inference-network training (He et al. 2019): which side moves in which phase, and
when the phase ends."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from demvae.config import TrainConfig
from demvae.training import Trainer
from demvae.training.aggressive import WINDOW, AggressiveSchedule, AggressiveState, split_parameters
from demvae.training.validation import PosteriorStats

_valid = partial(PosteriorStats, rec=0.0, neg_elbo=0.0, loss=0.0, ppl=1.0)


def _snapshot(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def _changed(model, before):
    return {name for name, p in model.named_parameters() if not torch.equal(p.detach(), before[name])}


def _sides(model):
    enc_ids = {id(p) for p in split_parameters(model)[0]}
    enc = {n for n, p in model.named_parameters() if id(p) in enc_ids}
    return enc, {n for n, _ in model.named_parameters()} - enc


@pytest.fixture
def aggressive_trainer(tiny_cfg, tmp_path):
    def make(**model):
        cfg = tiny_cfg("gm-vae-aggressive", model=model,
                       train={"aggressive_max_inner": 3, "aggressive_max_steps": 100, "max_steps": 4})
        assert cfg.train.aggressive
        return Trainer(cfg, tmp_path / f"run{len(model)}")
    return make


@pytest.mark.parametrize("share", [False, True])
def test_encoder_parameters_exclude_prior_and_decoder(aggressive_trainer, share):
    trainer = aggressive_trainer(share_embedding=share)
    model = trainer.model
    enc, dec = _sides(model)
    names = dict(model.named_parameters())
    assert enc and dec
    assert not any(n.startswith("decoder.") for n in enc)
    assert not any(".prior." in n for n in enc)
    assert "latents.0.prior.raw" in dec
    assert any(n.startswith("latents.0.code_net.") for n in enc)
    assert any(n.startswith("latents.0.posterior.") for n in enc)
    assert any(n.startswith("encoder.") for n in enc)
    # a shared embedding belongs to the decoder side only
    dec_ids = {id(p) for p in model.decoder.parameters()}
    assert not any(id(names[n]) in dec_ids for n in enc)
    enc_ids = {id(p) for p in split_parameters(model)[0]}
    assert (model.encoder.embedding.weight is model.decoder.embedding.weight) == share
    assert (id(model.encoder.embedding.weight) in enc_ids) == (not share)


def test_encoder_phase_moves_only_the_encoder_side(aggressive_trainer):
    trainer = aggressive_trainer()
    model = trainer.model.train()
    enc, dec = _sides(model)
    batches = trainer._batches()
    before = _snapshot(model)
    n = trainer.aggressive.encoder_phase(lambda b, frozen: trainer.train_step(b, 0.5, frozen)[0], batches)
    assert n == 3  # max_inner (< WINDOW)
    changed = _changed(model, before)
    assert changed and changed <= enc, f"decoder side moved: {sorted(changed - enc)}"
    assert {"latents.0.posterior.weight", "latents.0.code_net.0.weight"} <= changed
    assert trainer.state.batch_in_epoch == 3  # fresh batches each inner step

    # then the decoder step with the encoder frozen (as Trainer.fit does)
    before = _snapshot(model)
    trainer.train_step(next(batches), 0.5, frozen=trainer.aggressive.inference)
    changed = _changed(model, before)
    assert changed and changed <= dec, f"encoder side moved: {sorted(changed - dec)}"
    assert "latents.0.prior.raw" in changed


def test_fit_alternates_encoder_and_decoder_updates(aggressive_trainer, monkeypatch):
    trainer = aggressive_trainer()
    model = trainer.model
    enc, dec = _sides(model)
    calls = []
    original = trainer.train_step

    def spy(batch, weight, frozen=()):
        before = _snapshot(model)
        out = original(batch, weight, frozen)
        calls.append(_changed(model, before))
        return out

    monkeypatch.setattr(trainer, "train_step", spy)
    trainer.fit(until_step=2)
    # per outer step: max_inner (3) encoder updates, then one decoder update
    assert len(calls) == 2 * (3 + 1)
    for i, changed in enumerate(calls):
        assert changed, f"update {i} changed nothing"
        side = dec if i % 4 == 3 else enc
        assert changed <= side, f"update {i} moved the wrong side: {sorted(changed - side)}"
    assert trainer.state.step == 2 and trainer.state.aggressive.active


class _StubStep:
    """encoder_phase only needs a step(batch, frozen) -> loss."""

    def __init__(self, losses):
        self.losses = iter(losses)
        self.updates = 0

    def __call__(self, batch, frozen):
        self.updates += 1
        return torch.tensor(float(next(self.losses)))


def _schedule(max_inner=50):
    model = torch.nn.Module()
    model.encoder, model.latents, model.decoder = torch.nn.Linear(2, 2), torch.nn.ModuleList(), torch.nn.Linear(2, 2)
    return AggressiveSchedule(TrainConfig(aggressive=True, aggressive_max_inner=max_inner), model)


def test_encoder_phase_stops_when_the_window_mean_stops_improving():
    batches = iter(range(10_000))
    # window 1 mean 5, window 2 mean 4 (improves), window 3 mean 4 (no improvement): stop after 3 windows
    losses = [5.0] * WINDOW + [4.0] * WINDOW + [4.0] * WINDOW + [0.0] * 100
    stub = _StubStep(losses)
    assert _schedule().encoder_phase(stub, batches) == 3 * WINDOW
    assert stub.updates == 3 * WINDOW
    stub = _StubStep([10.0 - i * 0.01 for i in range(100)])  # always improving: max_inner
    assert _schedule(max_inner=35).encoder_phase(stub, batches) == 35
    assert stub.updates == 35


def test_phase_ends_when_validation_mi_stops_rising(aggressive_trainer):
    trainer = aggressive_trainer()
    st = trainer.state
    assert st.aggressive == AggressiveState(active=True, best_mi=-math.inf)
    for step, mi, expected in [(1, 0.10, True), (2, 0.20, True), (3, 0.25, True), (4, 0.24, False)]:
        st.step = step
        trainer._after_validation(_valid(neg_elbo=50.0 - step, mutual_info=mi))
        assert st.aggressive.active is expected, (step, mi)
    # once over, a later rise does not restart it
    st.step = 5
    trainer._after_validation(_valid(neg_elbo=40.0, mutual_info=0.9))
    assert st.aggressive.active is False


def test_phase_ends_when_mi_plateaus_or_after_max_steps(aggressive_trainer):
    trainer = aggressive_trainer()
    st = trainer.state
    trainer._after_validation(_valid(neg_elbo=10.0, mutual_info=0.3))
    assert st.aggressive.active
    trainer._after_validation(_valid(neg_elbo=9.0, mutual_info=0.3))  # equal: not rising
    assert not st.aggressive.active

    trainer = aggressive_trainer(dropout=0.1)
    st = trainer.state
    st.step = trainer.cfg.train.aggressive_max_steps
    trainer._after_validation(_valid(neg_elbo=10.0, mutual_info=0.5))
    assert not st.aggressive.active


def test_fit_stops_calling_the_encoder_phase_after_the_phase(aggressive_trainer, monkeypatch):
    trainer = aggressive_trainer()
    trainer.state.aggressive.active = False
    called = []
    monkeypatch.setattr(trainer.aggressive, "encoder_phase", lambda *a, **k: called.append(1) or 0)
    trainer.fit(until_step=2)
    assert not called
