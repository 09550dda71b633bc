"""Learning-rate decay, patience and early stopping after each validation (the original's schedule:
lr *= lr_decay whenever the current value is worse than the best and the best is lr_hold or more
validations back, counting the current one)."""

from __future__ import annotations

from functools import partial

import pytest

from demvae.training import Trainer
from demvae.training.validation import PosteriorStats

_valid = partial(PosteriorStats, rec=0.0, neg_elbo=0.0, loss=0.0, ppl=1.0)


@pytest.fixture
def trainer(tiny_cfg, tmp_path):
    made = []

    def make(**train):  # each trainer its own folder: a live trainer holds its folder's lock
        base = {"lr": 1e-3, "lr_decay": 0.5, "lr_hold": 3, "patience": 100, "min_lr": 1e-9}
        made.append(Trainer(tiny_cfg(train={**base, **train}), tmp_path / f"run{len(made)}"))
        return made[-1]
    return make


def _feed(tr, values):
    lrs = []
    for v in values:
        tr._after_validation(_valid(neg_elbo=v, rec=v))
        lrs.append(tr.state.lr)
        assert all(g["lr"] == tr.state.lr for g in tr.optimizer.param_groups)
    return lrs


def test_lr_decays_from_the_second_non_improving_validation(trainer):
    tr = trainer()
    lrs = _feed(tr, [10, 11, 12, 13, 9, 9.5, 9.6, 9.7])
    assert lrs == pytest.approx([1e-3, 1e-3, 5e-4, 2.5e-4, 2.5e-4, 2.5e-4, 1.25e-4, 6.25e-5])
    assert tr.state.best == 9 and tr.state.validations == 8
    assert (tr.folder.path / "model.safetensors").is_file()


def test_lr_never_improving_decays_every_validation_after_hold(trainer):
    tr = trainer(lr_hold=2, lr_decay=0.8)
    lrs = _feed(tr, [5.0] + [6.0] * 5)
    assert lrs == pytest.approx([1e-3 * 0.8 ** k for k in (0, 1, 2, 3, 4, 5)])


def test_lr_decay_one_keeps_the_lr(trainer):
    tr = trainer(lr_decay=1.0)
    assert _feed(tr, [1.0, 2.0, 3.0, 4.0, 5.0]) == [1e-3] * 5


def test_lr_does_not_decay_on_a_tie(trainer):
    tr = trainer()
    assert _feed(tr, [10.0, 10.0, 10.0, 10.0]) == [1e-3] * 4


def test_min_lr_stops_training(trainer):
    tr = trainer(lr_hold=1, lr_decay=0.1, min_lr=1e-5)
    _feed(tr, [1.0, 2.0])
    assert not tr.state.done
    _feed(tr, [3.0])
    assert tr.state.lr <= 1e-5 and tr.state.done


def test_patience_stops_and_grows(trainer):
    tr = trainer(patience=3, lr_decay=1.0, patience_increase=2.0, improve_threshold=0.996)
    _feed(tr, [10.0, 11.0])
    assert tr.state.patience == 3 and not tr.state.done
    _feed(tr, [12.0])
    assert tr.state.done  # 3 validations >= patience 3

    tr = trainer(patience=3, lr_decay=1.0, patience_increase=2.0, improve_threshold=0.996)
    _feed(tr, [10.0, 9.0, 8.0])  # each improvement > 0.4%: patience = max(3, validations * 2)
    assert tr.state.patience == 6 and not tr.state.done
    _feed(tr, [7.999])  # an improvement below the threshold does not extend patience
    assert tr.state.patience == 6 and tr.state.best == 7.999


def test_fit_stops_early_when_done(trainer):
    tr = trainer(patience=2, patience_increase=0.5, lr_decay=1.0, eval_every=5, max_steps=40)
    result = tr.fit()
    assert result["step"] == 10 and tr.state.done and tr.state.validations == 2


def test_select_metric_rec(tiny_cfg, tmp_path):
    tr = Trainer(tiny_cfg(train={"select_metric": "rec"}), tmp_path / "run")
    tr._after_validation(_valid(neg_elbo=100.0, rec=5.0))
    assert tr.state.best == 5.0
