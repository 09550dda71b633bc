"""The metric conventions: one source for results.md and the HTML report."""

from __future__ import annotations

from demvae.evaluation.conventions import CONVENTIONS, convention_for, conventions_markdown
from demvae.reproduce.tables import TABLES


def test_every_table_metric_but_the_supervised_ones_is_documented():
    for table in TABLES.values():
        for metric in table.metrics:
            if not metric.startswith(("acc_", "majority_")):  # Table 6's accuracies need no convention
                assert convention_for(metric) is not None, (table.name, metric)


def test_prefixes_and_exact_keys():
    assert convention_for("homog_emotion").title == "Homogeneity"
    assert convention_for("v_measure_act").title == "V-measure"
    assert convention_for("kl_c").title == "KL(c)" and convention_for("kl_c_extra") is None
    assert convention_for("wkl_paper") is None and convention_for("rec") is None


def test_markdown_section():
    md = conventions_markdown()
    lines = md.splitlines()
    assert lines[0] == "## Conventions" and len(lines) == 1 + len(CONVENTIONS)
    assert all(line.startswith(f"- {c.title}: ") for line, c in zip(lines[1:], CONVENTIONS))
