"""The two-stage dialog run: stage 1 frozen bit for bit through stage 2, the policy and attribute targets are the
stage-1 code, stage 2 starts from stage 1's best checkpoint, and a run stopped anywhere resumes to the same end."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from demvae.data.prepare import prepare
from demvae.errors import CheckpointError, ConfigError, DemvaeWarning
from demvae.models import build_for
from demvae.objectives import dialog_objective
from demvae.runs import RunFinished, resume, train
from demvae.training import DialogTrainer, Stage2Trainer, load_run
from demvae.training.dialog import stage1_config

STAGE1_STEPS, STAGE2_STEPS = 8, 7  # tests/conftest.py TINY_DIALOG


def _same_end(checkpoints, run_a, run_b):
    for folder in ("", "stage1"):
        checkpoints.same_end(run_a / folder, run_b / folder)


# ------------------------------------------------------------------------------------------- the run folder


def test_both_stages_run_into_one_folder(checkpoints, dialog_run):
    assert (dialog_run / "stage1" / "model.safetensors").is_file()
    stage1 = load_run(dialog_run / "stage1")
    assert stage1.folder.kind == "sentence" and not stage1.config.dialog.enabled  # a sentence run of its own
    run = load_run(dialog_run)
    assert run.folder.kind == "dialog" and run.config.dialog.enabled
    assert [r["step"] for r in checkpoints.records(dialog_run / "stage1", "valid")] == [3, 6, 8]
    valid = checkpoints.records(dialog_run, "valid")
    assert [r["step"] for r in valid] == [3, 6, 7]
    assert {r["metric"] for r in valid} == {"nll_policy"}
    assert all(r["kl_weight"] == 1.0 for r in checkpoints.records(dialog_run, "train"))
    stages = json.loads((dialog_run / "stages.json").read_text())
    assert stages["stage1"]["step"] == STAGE1_STEPS and stages["stage2"]["step"] == STAGE2_STEPS
    assert stages["stage1"]["seconds"] > 0 and stages["stage2"]["seconds"] > 0


def test_stage1_parameters_are_bit_identical_through_stage2(dialog_run):
    best1 = load_run(dialog_run / "stage1").model.state_dict()
    for weights in ("best", "last"):
        frozen = load_run(dialog_run, weights=weights).model.stage1.state_dict()
        assert set(frozen) == set(best1)
        for name, value in best1.items():
            assert torch.equal(frozen[name], value), f"stage1.{name} changed in stage 2 ({weights})"


def test_stage1_is_frozen_and_out_of_the_optimizer(dialog_run, tiny_dialog_cfg, tmp_path):
    cfg = tiny_dialog_cfg()
    trainer = Stage2Trainer(cfg, tmp_path / "s2", prepare(cfg.data, None, cfg.dialog),
                            dialog_run / "stage1" / "model.safetensors")
    model = trainer.model
    stage1 = {id(p) for p in model.stage1.parameters()}
    optimised = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert stage1 and not stage1 & optimised
    assert optimised == {id(p) for p in model.parameters() if id(p) not in stage1}
    assert not any(p.requires_grad for p in model.stage1.parameters())
    model.train()
    assert model.training and not model.stage1.training  # no dropout, hard codes in the frozen stage 1
    before = {k: v.clone() for k, v in model.stage1.state_dict().items()}
    trainer.fit(until_step=2)
    policy_before = trainer.model.policy.net[0].weight.detach().clone()
    trainer.fit(until_step=3)
    assert not torch.equal(policy_before, trainer.model.policy.net[0].weight)  # stage 2 learns ...
    for name, value in model.stage1.state_dict().items():  # ... stage 1 does not
        assert torch.equal(value, before[name]), name


def test_stage2_starts_from_the_stage1_best_checkpoint(tiny_dialog_cfg, tmp_path):
    """Replace stage 1's best checkpoint between the stages: stage 2 carries exactly those weights."""
    run = train(tiny_dialog_cfg(), tmp_path / "run", until_step=STAGE1_STEPS)
    assert not (run / "last").exists()  # stage 2 has not started
    best = load_file(str(run / "stage1" / "model.safetensors"))
    g = torch.Generator().manual_seed(0)
    planted = {k: v + 0.01 * torch.randn(v.shape, generator=g) for k, v in best.items()}
    save_file(planted, str(run / "stage1" / "model.safetensors"))
    resume(run)
    stage1 = load_run(run).model.stage1.state_dict()
    for name, value in planted.items():
        assert torch.equal(stage1[name], value), name


# ------------------------------------------------------------------------------------------- the stage-2 terms


@pytest.fixture(scope="module")
def model_and_batch(dialog_run):
    run = load_run(dialog_run)
    model = run.model.eval()
    model.posterior_sample = False  # a deterministic decoder input for the independent computation below
    split = prepare(run.config.data, run.vocab, run.config.dialog).splits["train"]
    indices = list(range(0, len(split), len(split) // 12))[:12]  # responses of several lengths and context sizes
    return model, split, indices


def test_policy_and_attribute_targets_are_the_stage1_code(model_and_batch):
    model, split, indices = model_and_batch
    batch = split.batch(indices)
    terms = model(batch)
    code = model.stage1.code_probs(batch).argmax(-1)  # ĉ = argmax q(c|r) [B, M]
    logits = model.policy(model.encode_context(batch).last)
    expected = F.cross_entropy(logits.flatten(0, 1), code.flatten(), reduction="none").view_as(code)
    torch.testing.assert_close(terms.policy, expected)
    torch.testing.assert_close(terms.policy_error, (logits.argmax(-1) != code).float())
    # the attribute loss, computed sentence by sentence with the stage-1 GRU run over the real positions only
    enc = model.encode_context(batch)
    latent = model.code_block.mode_features(model.stage1.encode(batch))
    probs = torch.softmax(model.decoder.out(model.decoder.outputs(batch.tokens, model.init(latent) + enc.last,
                                                                  enc.outputs, enc.mask)), -1)
    emb = model.stage1.encoder.embedding.weight
    for b in range(batch.size):
        n = int(batch.lengths[b])
        soft = torch.cat((emb[model.stage1.decoding.bos_id][None], probs[b, : n - 1] @ emb))[None]  # [1, n, E]
        _, h = model.stage1.encoder.rnn(soft)
        log_q = torch.log_softmax(model.code_block._code_logits(h[-1]), -1)[0]  # [M, K]
        torch.testing.assert_close(terms.attribute[b], -log_q.gather(1, code[b, :, None]).squeeze(1),
                                   rtol=1e-4, atol=1e-5)


def test_nll_and_loss_against_the_decoder(model_and_batch):
    model, split, indices = model_and_batch
    batch = split.batch(indices)
    terms = model(batch)
    enc = model.encode_context(batch)
    init = model.init(model.code_block.mode_features(model.stage1.encode(batch))) + enc.last
    log_p = model.decoder.log_likelihood(batch.tokens, batch.lengths, init, enc.outputs, enc.mask)
    torch.testing.assert_close(terms.nll, -log_p, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(terms.n_tokens, (batch.lengths - 1).float())
    loss = dialog_objective(terms, 0.1)
    by_hand = -log_p.sum() / (batch.lengths - 1).sum() + terms.policy.mean() + 0.1 * terms.attribute.mean()
    torch.testing.assert_close(loss, by_hand, rtol=1e-5, atol=1e-5)


def test_padding_never_changes_a_term(model_and_batch):
    """Each example's terms alone equal its terms inside a batch padded to longer responses and more turns."""
    model, split, indices = model_and_batch
    batch = split.batch(indices)
    assert len(set(batch.n_turns.tolist())) > 1 and len(set(batch.lengths.tolist())) > 1
    terms = model(batch)
    for b, i in enumerate(indices):
        alone = model(split.batch([i]))
        for name in ("nll", "policy", "attribute"):
            torch.testing.assert_close(getattr(alone, name)[0], getattr(terms, name)[b], rtol=1e-5, atol=1e-5)


def test_training_input_is_a_posterior_sample_for_dgm_and_the_argmax_code_for_di(dialog_run, tiny_dialog_cfg):
    model = load_run(dialog_run).model
    assert model.posterior_sample  # smd/dgm-vae-mi: z ~ q(z|r)
    di = tiny_dialog_cfg("smd/di-vae")
    assert di.dialog.posterior_latent == "mode" and di.dialog.select_metric == "errors"

    data = prepare(di.data, None, di.dialog)
    di_model = build_for(di, data.vocab)
    assert not di_model.posterior_sample
    batch = data.splits["train"].batch(list(range(6)))
    h = di_model.stage1.encode(batch)
    one_hot = di_model.code_block.posterior_features(h, sample=False).view(6, 3, 5)
    assert torch.equal(one_hot.argmax(-1), di_model.code_block.code_probs(h).argmax(-1))
    assert torch.equal(one_hot.sum(-1), torch.ones(6, 3))


# ------------------------------------------------------------------------------------------- resuming


@pytest.mark.parametrize("stop", [4, STAGE1_STEPS, STAGE1_STEPS + 4], ids=["in-stage1", "at-the-switch",
                                                                         "in-stage2"])
def test_resume_equals_an_uninterrupted_run(checkpoints, dialog_run, tiny_dialog_cfg, tmp_path, stop):
    run = train(tiny_dialog_cfg(), tmp_path / "B", until_step=stop)
    assert (run / "last").is_dir() == (stop > STAGE1_STEPS)
    resume(run)
    _same_end(checkpoints, dialog_run, run)


def test_resume_in_several_slices_across_the_switch(checkpoints, dialog_run, tiny_dialog_cfg, tmp_path):
    run = train(tiny_dialog_cfg(), tmp_path / "B", until_step=3)
    resume(run, until_step=10)
    assert json.loads((run / "last" / "trainer_state.json").read_text())["step"] == 10 - STAGE1_STEPS
    resume(run)
    _same_end(checkpoints, dialog_run, run)


def test_resuming_a_finished_dialog_run_changes_nothing(checkpoints, dialog_run, tmp_path):
    run = shutil.copytree(dialog_run, tmp_path / "done")
    before = (run / "last" / "model.safetensors").read_bytes()
    with pytest.raises(RunFinished, match="reached dialog.max_steps = 7 at step 7"):
        resume(run)
    assert (run / "last" / "model.safetensors").read_bytes() == before
    assert checkpoints.records(run) == checkpoints.records(dialog_run)


def test_dialog_run_folder_rules(checkpoints, dialog_run, tiny_dialog_cfg, tmp_path):
    with pytest.raises(CheckpointError, match="already holds a run"):
        train(tiny_dialog_cfg(), shutil.copytree(dialog_run, tmp_path / "copy"))
    train(tiny_dialog_cfg(), tmp_path / "copy", force=True)  # --force: both stages trained again, from scratch
    _same_end(checkpoints, dialog_run, tmp_path / "copy")
    fresh = tmp_path / "fresh"
    DialogTrainer(tiny_dialog_cfg(), fresh)  # writes config.yaml and vocab.json, trains nothing (a kill, say)
    with pytest.raises(CheckpointError, match="no resumable checkpoint"):
        DialogTrainer(tiny_dialog_cfg(), fresh, resume=True)
    with pytest.warns(DemvaeWarning, match="no checkpoint yet"):
        resume(fresh)  # nothing to resume from: trained from step 0 again
    _same_end(checkpoints, dialog_run, fresh)


def test_stage1_config_is_the_sentence_run(tiny_dialog_cfg):
    cfg = tiny_dialog_cfg()
    one = stage1_config(cfg)
    assert not one.dialog.enabled
    assert (one.model, one.objective, one.train, one.data) == (cfg.model, cfg.objective, cfg.train, cfg.data)


@pytest.mark.parametrize("sections, needle", [
    ({"dialog": {"bogus": 1}}, "dialog.bogus"),
    ({"dialog": {"speakers": "usr"}}, "dialog.speakers"),
    ({"dialog": {"gen_code": "mode"}}, "dialog.gen_code"),
    ({"dialog": {"context_turns": 0}}, "dialog.context_turns"),
    ({"dialog": {"attribute_weight": -1.0}}, "dialog.attribute_weight"),
    ({"model": {"latent": "gaussian"}}, "one discrete code"),
    ({"train": {"aggressive": True}}, "aggressive"),
])
def test_bad_dialog_configs(tiny_dialog_cfg, sections, needle):
    with pytest.raises(ConfigError, match=needle):
        tiny_dialog_cfg(**sections)


def test_a_corpus_without_contexts_cannot_train_a_dialog_model(tiny_overrides, tmp_path):
    from demvae.config import compose

    cfg = compose(model="dgm-vae", overrides=tiny_overrides({"dialog": {"enabled": True}}))
    with pytest.raises(ConfigError, match="dialogue contexts"):
        train(cfg, tmp_path / "run")


def test_system_turns_only_for_both_stages(tiny_dialog_cfg, tmp_path):
    cfg = tiny_dialog_cfg(dialog={"speakers": "sys"})
    data = DialogTrainer(cfg, tmp_path / "sys").data
    both = prepare(cfg.data, data.vocab, tiny_dialog_cfg().dialog)
    sys_id = data.vocab.id("<sys>")
    for name, split in data.splits.items():
        assert 0 < len(split) < len(both.splits[name])
        assert bool((split.ids[:, 1] == sys_id).all())  # every response is a system turn ...
        assert int((both.splits[name].ids[:, 1] == sys_id).sum()) == len(split)  # ... and every system turn is one


def test_validation_stats_are_the_dialog_terms_summed_by_hand(model_and_batch):
    """dialog_stats over a split = per-token NLL of the whole split, means over the B·M code variables,
    and the stage-2 loss assembled from them (the same terms, computed sentence by sentence)."""
    from demvae.config import DialogConfig
    from demvae.training.validation import dialog_stats

    model, split, _ = model_and_batch
    stats = dialog_stats(model, split, DialogConfig(attribute_weight=0.3), batch_size=7)
    with torch.no_grad():
        rows = [model(split.batch([i])) for i in range(len(split))]  # one at a time: no padding at all
    nll = sum(float(t.nll.sum()) for t in rows)
    tokens = sum(float(t.n_tokens.sum()) for t in rows)
    per = {k: sum(float(getattr(t, k).mean()) for t in rows) / len(rows)
           for k in ("policy", "attribute", "policy_error", "attribute_error")}
    assert stats.nll == pytest.approx(nll / tokens, rel=1e-5)
    for k, v in per.items():
        assert stats.record()[k] == pytest.approx(v, rel=1e-5, abs=1e-7), k
    assert stats.loss == pytest.approx(nll / tokens + per["policy"] + 0.3 * per["attribute"], rel=1e-5)
    assert stats.nll_policy == pytest.approx(nll / tokens + per["policy"], rel=1e-5)
    assert stats.errors == pytest.approx(per["policy_error"] + per["attribute_error"], rel=1e-5, abs=1e-7)
