"""The SMD Table 3 spec: the paper's numbers, and the packaged two-stage configs with the original's values."""

from __future__ import annotations

import pytest

from demvae.config import compose, find_config
from demvae.reproduce.tables import SMD_TABLE3, TABLES


def test_table3_holds_the_papers_numbers():
    paper = {row.label: row.paper for row in SMD_TABLE3.rows}
    assert paper == {
        "DI-VAE": {"response_bleu": 7.06, "response_embedding_average": 76.17,
                   "response_embedding_extrema": 43.98, "response_embedding_greedy": 60.92},
        "DGM-VAE+Lmi": {"response_bleu": 10.16, "response_embedding_average": 78.93,
                        "response_embedding_extrema": 48.14, "response_embedding_greedy": 64.87},
    }
    assert SMD_TABLE3.corpus == "smd" and SMD_TABLE3.name == "smd-table3"
    # clusters: the codes used, which a claim reads
    assert TABLES["smd-table3"] is SMD_TABLE3 and SMD_TABLE3.eval_groups == ("clusters", "responses")
    assert set(SMD_TABLE3.scales) == {"smoke", "mini", "paper"}
    assert "User and system turns are both targets (responses), as the original" in SMD_TABLE3.notes


@pytest.mark.parametrize("row", SMD_TABLE3.rows, ids=lambda r: r.label)
def test_stage1_configs_follow_the_original(row):
    find_config(row.config)
    cfg = compose(config=row.config)
    m, t = cfg.model, cfg.train
    assert cfg.data.corpus == "smd" and cfg.data.max_len == 40 and cfg.data.options == {"context_turns": 30}
    assert (m.n_variables, m.n_values, m.embed_dim, m.hidden_size) == (3, 5, 200, 512)
    assert not m.bidirectional and m.share_embedding and not m.tie_output and not m.concat_latent
    assert (t.batch_size, t.n_samples, t.lr, t.grad_clip, t.eval_every, t.patience_increase) == (30, 1, 1e-3, 3.0,
                                                                                                 500, 4.0)
    d = cfg.dialog
    assert d.enabled and (d.context_turns, d.turn_len, d.speakers) == (30, 40, "both")
    assert (d.utterance_size, d.context_size, d.policy_size, d.attn_size) == (256, 512, 512, 512)
    assert d.attribute_weight == 0.1 and (d.decoding, d.gen_z) == ("greedy", "sample")
    if row.label == "DGM-VAE+Lmi":
        assert m.latent == "gm" and m.n_units == 16 and t.max_steps == 7000
        assert (cfg.objective.beta, cfg.objective.mi_weight, cfg.objective.anneal) == (0.5, 1.0, "logistic")
        assert t.max_steps + d.max_steps == 50_000
        assert (d.posterior_latent, d.select_metric, d.gen_code) == ("sample", "nll_policy", "argmax")
    else:
        assert m.latent == "discrete" and t.max_steps == 6000 and cfg.objective.anneal == "none"
        assert cfg.objective.kl_weight == pytest.approx(1 / 3) and cfg.objective.mi_weight == 1.0  # mean over 3
        assert t.max_steps + d.max_steps == 50_000
        assert (d.posterior_latent, d.select_metric, d.gen_code) == ("mode", "errors", "sample")


def test_sentence_configs_leave_the_dialog_section_off():
    for name in ("ptb/dgm-vae", "dd/dgm-vae-mi", "builtin/dgm-vae"):
        assert not compose(config=name).dialog.enabled
    # the paper scale keeps the configs' own (the original's) step budgets for both stages
    assert SMD_TABLE3.scales["paper"]["config"] == {"train": {"progress": False}}
