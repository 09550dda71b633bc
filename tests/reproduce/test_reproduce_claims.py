"""Each table's claims (demvae.reproduce.claims): the paper's own numbers satisfy them, a fabricated table
where one is false gives ✗ for it, a spread larger than the differences gives "within noise", one seed
cannot decide a comparison, and a missing row gives "not run"."""

from __future__ import annotations

import pytest

from demvae.evaluation.baseline import LABEL as BASELINE
from demvae.reproduce.claims import FAILS, HOLDS, NOISE, NOT_RUN, Cell, above, all_of, at_most, claims_markdown, exceeds
from demvae.reproduce.tables import TABLES

EXTRA = {  # cells the claims read that the paper does not print
    "dd-table2": {BASELINE: {"homog_act": 0.10, "homog_emotion": 0.05}},
    "dd-table6": {"DCM-VAE": {"homog_act": 0.30, "homog_emotion": 0.30},
                  BASELINE: {"homog_act": 0.10, "homog_emotion": 0.05}},
    "smd-table3": {"DGM-VAE+Lmi": {"codes_used": 10}},
}

FB, B01, B05, B09 = "+FB (λc=5, λz=10)", "β-GM-VAE β=0.1", "β-GM-VAE β=0.5", "β-GM-VAE β=0.9"
FALSIFY = {  # table -> claim -> the cells that make it false
    "ptb-table1": {
        "GM-VAE collapses (Var and MI near 0)": {("GM-VAE", "mutual_info"): 0.5},
        "DGM-VAE does not collapse (Var and MI above near-0)": {("DGM-VAE", "param_var"): 0.0},
        "DGM-VAE has a higher BLEU than GM-VAE and VAE": {("DGM-VAE", "bleu"): 3.0},
        "DGM-VAE has a lower rPPL than GM-VAE and VAE": {("DGM-VAE", "rppl"): 800.0},
        "Lmi raises GM-VAE's MI": {("GM-VAE", "mutual_info"): 2.0},
        "Lmi raises DGM-VAE's MI": {("DGM-VAE+Lmi", "mutual_info"): 0.1},
    },
    "ptb-table7": {
        "GM-VAE collapses (Var and MI near 0)": {("GM-VAE", "param_var"): 5.0},
        "+aggressive collapses (Var and MI near 0)": {("+aggressive", "mutual_info"): 0.3},
        f"{FB} partly recovers (Var above GM-VAE's, below DGM-VAE's)": {(FB, "param_var"): 0.0},
        f"{B01} partly recovers (Var above GM-VAE's, below DGM-VAE's)": {(B01, "param_var"): 1000.0},
        f"{B05} partly recovers (Var above GM-VAE's, below DGM-VAE's)": {(B05, "param_var"): 0.0001},
        "DGM-VAE has the highest BLEU": {(B09, "bleu"): 10.0},
        "DGM-VAE has the highest Var": {(B01, "param_var"): 1000.0},
    },
    "dd-table2": {
        "DGM-VAE (± Lmi) has the highest BLEU": {("GM-VAE", "bleu"): 9.0},
        "DGM-VAE+Lmi has the highest act homogeneity among the unsupervised models": {("DI-VAE", "homog_act"): 0.5},
        "(ours, not the paper's) DGM-VAE+Lmi's codes are more act-homogeneous than the lexical baseline":
            {(BASELINE, "homog_act"): 0.5},
        "(ours, not the paper's) DGM-VAE+Lmi's codes are more emotion-homogeneous than the lexical baseline":
            {(BASELINE, "homog_emotion"): 0.5},
    },
    "smd-table3": {
        "DGM-VAE+Lmi's response BLEU is above DI-VAE's": {("DI-VAE", "response_bleu"): 12.0},
        "DGM-VAE+Lmi is above DI-VAE on the three embedding metrics": {("DI-VAE", "response_embedding_greedy"): 70.0},
        "DGM-VAE+Lmi uses more than one code (its stage-1 codes of the test responses)":
            {("DGM-VAE+Lmi", "codes_used"): Cell(1.0, 0.0, 3)},
    },
    "dd-table6": {
        "DCM-VAE's emotion accuracy is above CM-VAE's": {("CM-VAE", "acc_emotion"): 0.9},
        "CM-VAE's Var is near 0 while DCM-VAE's is not": {("CM-VAE", "param_var"): 50.0},
        "(ours, not the paper's) DCM-VAE's codes are more act-homogeneous than the lexical baseline":
            {(BASELINE, "homog_act"): 0.9},
        "(ours, not the paper's) DCM-VAE's codes are more emotion-homogeneous than the lexical baseline":
            {(BASELINE, "homog_emotion"): 0.9},
    },
}


def seeds3(value: float) -> Cell:
    return Cell(value, 0.01 * abs(value), 3)


def paper_cells(name: str, spread=seeds3) -> dict[str, dict[str, Cell]]:
    """The paper's numbers (and :data:`EXTRA`) as a table of 3 seeds with a 1 % spread."""
    cells = {r.label: {m: spread(v) for m, v in r.paper.items()} for r in TABLES[name].rows}
    for row, values in EXTRA.get(name, {}).items():
        cells.setdefault(row, {}).update({m: spread(v) for m, v in values.items()})
    return cells


def verdicts(name: str, cells) -> dict[str, str]:
    return {c.name: c.check(cells).mark for c in TABLES[name].claims}


@pytest.mark.parametrize("name", list(FALSIFY))
def test_every_claim_holds_on_the_papers_numbers(name):
    assert set(verdicts(name, paper_cells(name)).values()) == {HOLDS}, verdicts(name, paper_cells(name))


@pytest.mark.parametrize("name", list(FALSIFY))
def test_every_claim_can_fail(name):
    assert set(FALSIFY[name]) == {c.name for c in TABLES[name].claims}, "a claim without a falsifying table"
    for claim, changes in FALSIFY[name].items():
        cells = paper_cells(name)
        for (row, metric), value in changes.items():
            cells[row][metric] = value if isinstance(value, Cell) else seeds3(value)
        got = verdicts(name, cells)
        assert got[claim] == FAILS, (claim, next(c for c in TABLES[name].claims if c.name == claim).check(cells))


@pytest.mark.parametrize("name", list(FALSIFY))
def test_a_spread_larger_than_the_differences_is_within_noise(name):
    wide = lambda v: Cell(v, 10 * abs(v) + 10, 3)
    assert set(verdicts(name, paper_cells(name, wide)).values()) == {NOISE}


def test_one_seed_cannot_decide_a_comparison_but_a_bound_is_judged():
    cells = paper_cells("dd-table6", lambda v: Cell(v, 0.0, 1))
    claims = {c.name: c.check(cells) for c in TABLES["dd-table6"].claims}
    accuracy = claims["DCM-VAE's emotion accuracy is above CM-VAE's"]
    assert accuracy.mark == NOISE and "one seed" in accuracy.numbers and "+0.1" in accuracy.numbers
    assert claims["CM-VAE's Var is near 0 while DCM-VAE's is not"].mark == HOLDS


def test_a_missing_row_is_not_run():
    cells = paper_cells("ptb-table1")
    del cells["GM-VAE"]
    got = verdicts("ptb-table1", cells)
    assert got == {"GM-VAE collapses (Var and MI near 0)": NOT_RUN, "DGM-VAE does not collapse (Var and MI above "
                   "near-0)": HOLDS, "DGM-VAE has a higher BLEU than GM-VAE and VAE": NOT_RUN,
                   "DGM-VAE has a lower rPPL than GM-VAE and VAE": NOT_RUN, "Lmi raises GM-VAE's MI": NOT_RUN,
                   "Lmi raises DGM-VAE's MI": HOLDS}
    text = claims_markdown(TABLES["ptb-table1"].claims, cells)
    assert "- **not run** GM-VAE collapses (Var and MI near 0): missing: GM-VAE param_var, GM-VAE mutual_info" in text


def test_the_comparisons_edges():
    cells = {"a": {"x": Cell(1.0, 0.1, 3)}, "b": {"x": Cell(0.8, 0.1, 3)}, "c": {"x": Cell(0.7, 0.1, 3)}}
    assert above("a", "b", "x").check(cells).mark == NOISE  # |0.2| is not more than 0.1 + 0.1
    assert above("a", "c", "x").check(cells).mark == HOLDS and above("c", "a", "x").check(cells).mark == FAILS
    assert at_most("a", "x", 1.1).check(cells).mark == HOLDS and at_most("a", "x", 0.95).check(cells).mark == NOISE
    assert at_most("a", "x", 0.85).check(cells).mark == FAILS
    assert exceeds("a", "x", 0.85).check(cells).mark == HOLDS and exceeds("a", "x", 1.1).check(cells).mark == FAILS
    one = {"k": {"codes_used": Cell(1.0, 0.0, 3)}}
    assert exceeds("k", "codes_used", 1).check(one).mark == FAILS  # one code is not more than one
    both = all_of("both", above("a", "c", "x"), above("a", "b", "x"))
    assert both.check(cells).mark == NOISE and both.reads == (("a", "x"), ("c", "x"), ("b", "x"))
    assert all_of("fails", above("a", "c", "x"), above("c", "a", "x")).check(cells).mark == FAILS
