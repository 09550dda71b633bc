"""terms.py: merging two latent blocks' terms, totals per example and per batch, and the dialog terms
(each checked against numbers computed by hand)."""

from __future__ import annotations

import pytest
import torch

from demvae.objectives import dialog_objective
from demvae.terms import DialogTerms, Terms

DT = torch.float64


def _t(*rows):
    return torch.tensor(rows, dtype=DT)


def test_adding_two_blocks_concatenates_variables_and_adds_example_totals():
    a = Terms(rec=_t(1.0, 2.0), kl_c=_t([0.1, 0.2], [0.3, 0.4]), param_var=_t(5.0, 6.0), mutual_info=_t(0.5, 0.6))
    b = Terms(kl_c=_t([0.7], [0.8]), param_var=_t(1.0, 1.0), supervision=_t(3.0, 4.0), mutual_info=_t(0.9))
    s = a + b
    assert torch.equal(s.rec, a.rec)  # only one side has it: kept as is
    assert torch.equal(s.supervision, b.supervision)
    assert torch.equal(s.kl_c, _t([0.1, 0.2, 0.7], [0.3, 0.4, 0.8]))  # [B, M_a + M_b]
    assert torch.equal(s.param_var, _t(6.0, 7.0))  # [B] totals add
    assert torch.equal(s.mutual_info, _t(0.5, 0.6, 0.9))  # [M] per variable, never added (1-D, not [B])


def test_totals_per_example_and_per_batch():
    t = Terms(rec=_t(1.0, 2.0), kl_c=_t([0.1, 0.2], [0.3, 0.4]), dispersion=_t([1.0, 0.0], [0.5, 0.5]),
              mutual_info=_t(0.25, 0.5))
    ex = t.example_totals()
    assert set(ex) == {"rec", "kl_c", "dispersion"}
    assert torch.equal(ex["rec"], _t(1.0, 2.0))  # a [B] term stays [B]
    assert torch.allclose(ex["kl_c"], _t(0.3, 0.7)) and torch.equal(ex["dispersion"], _t(1.0, 1.0))
    assert float(t.batch_totals()["mutual_info"]) == 0.75  # summed over variables
    assert torch.allclose(t.neg_elbo(), _t(1.0 + 0.3 + 1.0, 2.0 + 0.7 + 1.0))


def _dialog_terms():
    return DialogTerms(nll=_t(6.0, 3.0), n_tokens=_t(4.0, 2.0), policy=_t([0.5, 1.5], [1.0, 1.0]),
                       attribute=_t([2.0, 0.0], [0.0, 4.0]), policy_error=_t([1.0, 0.0], [0.0, 0.0]),
                       attribute_error=_t([1.0, 1.0], [0.0, 1.0]))


def test_dialog_objective_by_hand():
    t = _dialog_terms()
    # NLL per predicted token (9 / 6), policy CE mean over B·M (4 / 4), attribute CE mean (6 / 4) × 0.1
    assert float(dialog_objective(t)) == pytest.approx(1.5 + 1.0 + 0.1 * 1.5, abs=1e-12)
    assert float(dialog_objective(t, attribute_weight=0.5)) == pytest.approx(1.5 + 1.0 + 0.75, abs=1e-12)
    means = t.batch_means()
    assert {k: float(v) for k, v in means.items()} == pytest.approx(
        {"nll": 1.5, "policy": 1.0, "attribute": 1.5, "policy_error": 0.25, "attribute_error": 0.75})
