"""The metric registry: one declaration per metric, read by the CLI's table, results.md, the report and the
reproduction tables."""

from __future__ import annotations

from demvae.evaluation.tables import format_table
from demvae.metrics import (
    CONVENTIONS,
    METRIC_GROUPS,
    METRICS,
    conventions_markdown,
    flat_row,
    heading,
    metric,
    sort_key,
    table_columns,
    title,
)
from demvae.reproduce.tables import TABLES


def test_declarations_are_consistent():
    keys = [m.key for m in METRICS]
    assert len(keys) == len(set(keys)) and len({m.title for m in METRICS}) == len(METRICS)
    for m in METRICS:
        assert m.group in (*METRIC_GROUPS, None) and m.direction in ("higher", "lower", None), m
        assert m.family == ("*" in m.source) or not m.source, m  # a family's members come from a label
    assert {m.convention for m in METRICS} - {None} == set(CONVENTIONS)  # every convention documents a metric


def test_every_table_metric_is_declared_and_documented():
    for table in TABLES.values():
        for key in table.measured:
            assert metric(key) is not None, (table.name, key)
            assert metric(key).convention is not None or key == "codes_used", (table.name, key)


def test_lookup_families_and_exact_keys():
    assert metric("homog_emotion").key == "homog_" and metric("homog_emotion").convention.title == "Homogeneity"
    assert metric("baseline_homog_act").key == "baseline_homog_"  # the longest prefix, not homog_
    assert metric("v_measure_act").convention.title == "V-measure"
    assert metric("kl_c").convention.title == "KL(c)" and metric("kl_c_extra") is None
    assert metric("rec").convention is None and metric("wkl_paper").convention.title == "wKL"
    assert title("homog_act") == "Homogeneity act" and title("rppl") == "rPPL" and title("nope") == "nope"
    assert heading("rppl") == "rPPL ↓" and heading("control_agree_act") == "Agreement act ↑"
    assert heading("kl_c") == "KL(c)" and heading("model") == "model"  # no direction: no arrow
    assert sorted(["nope", "homog_b", "nll", "homog_a", "rppl"], key=sort_key) == [
        "rppl", "nll", "homog_a", "homog_b", "nope"]


def test_flat_row_reads_each_metric_where_the_file_holds_it():
    results = {"model": "m", "nll": 1.5, "flag": True, "examples": ["a"],
               "homogeneity": {"act": {"homogeneity": 0.1, "v_measure": 0.2}},
               "control": {"recovery": 0.5, "labels": {"act": {"agreement": 0.3}}},
               "accuracy": {"act": {"accuracy": 0.7, "majority": 0.4}}}
    assert flat_row(results) == {"model": "m", "nll": 1.5, "homog_act": 0.1, "v_measure_act": 0.2,
                                 "control_recovery": 0.5, "control_agree_act": 0.3, "acc_act": 0.7,
                                 "majority_act": 0.4}


def test_the_eval_table_takes_its_columns_headings_and_legend_from_the_registry():
    rows = [{"model": "m", "kl_c": 1.0, "bleu": 2.0, "rec": 3.0, "acc_act": 0.5, "majority_act": 0.4}]
    columns, legend = table_columns(rows)
    assert columns == ["model", "bleu", "kl_c", "acc_act", "majority_act"]  # rec is no column; table order
    assert [line.split(":")[0] for line in legend] == ["BLEU", "KL(c)", "Accuracy"]
    header = format_table(rows, columns, header=[heading(c) for c in columns]).splitlines()[0]
    assert header == "| model | BLEU ↑ | KL(c) | Accuracy act ↑ | Majority act |"


def test_markdown_section():
    lines = conventions_markdown().splitlines()
    assert lines[0] == "## Conventions" and len(lines) == 1 + len(CONVENTIONS)
    assert all(line.startswith(f"- {c.title}: ") for line, c in zip(lines[1:], CONVENTIONS))
    assert conventions_markdown(["nll", "homog_act", "beta"]).splitlines()[1:] == [
        f"- {c.title}: {c.text}" for c in CONVENTIONS if c.title in ("β", "NLL", "Homogeneity")]


def test_tables_run_the_groups_their_metrics_need():
    assert {name: t.eval_groups for name, t in TABLES.items()} == {
        "ptb-table1": ("posterior", "nll", "bleu", "prior"), "ptb-table7": ("posterior", "nll", "bleu"),
        "dd-table2": ("posterior", "bleu", "clusters", "control"), "dd-table6": ("posterior", "nll", "clusters"),
        "smd-table3": ("clusters", "responses")}
