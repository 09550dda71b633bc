from demvae.evaluation.tables import format_table, side_by_side


def _rows(table):
    return [line for line in table.strip().splitlines() if line.startswith("|")]


def test_format_table():
    rows = [
        {"model": "DGM-VAE", "BLEU": 8.1734, "NLL": (99.4, 0.31), "n": 3},
        {"model": "GM-VAE", "BLEU": None},
        {"model": "VAE", "BLEU": float("nan"), "NLL": 101.0},
    ]
    out = format_table(rows, ["model", "BLEU", "NLL", "n"], title="PTB")
    lines = out.strip().splitlines()
    assert lines[0] == "**PTB**"
    body = _rows(out)
    assert body[0] == "| model | BLEU | NLL | n |"
    assert body[1] == "|---|---|---|---|"
    assert body[2] == "| DGM-VAE | 8.17 | 99.40 ± 0.31 | 3 |"
    assert body[3] == "| GM-VAE | – | – | – |"
    assert body[4] == "| VAE | – | 101.00 | – |"
    assert format_table(rows[:1], ["BLEU"], floatfmt=".3f").splitlines()[2] == "| 8.173 |"
    assert not format_table([], ["a"]).startswith("**")


def test_side_by_side():
    paper = {"GM-VAE": {"BLEU": 6.23, "KL(z)": 1.5}, "DGM-VAE": {"BLEU": 8.17, "KL(z)": 2.0}}
    ours = {"DGM-VAE": {"BLEU": (8.67, 0.12)}, "GM-VAE": {"BLEU": 6.0, "KL(z)": 1.5}, "AE": {"BLEU": 30.0}}
    out = side_by_side(ours, paper, ["BLEU", "KL(z)"])
    body = _rows(out)
    assert body[0] == (
        "| model | BLEU (paper) | BLEU (ours) | BLEU Δ | KL(z) (paper) | KL(z) (ours) | KL(z) Δ |"
    )
    assert body[2] == "| GM-VAE | 6.23 | 6.00 | -0.23 | 1.50 | 1.50 | 0.00 |"
    assert body[3] == "| DGM-VAE | 8.17 | 8.67 ± 0.12 | +0.50 | 2.00 | – | – |"
    assert body[4] == "| AE | – | 30.00 | – | – | – | – |"
    assert len(body) == 5


def test_side_by_side_heads_a_registered_metric_with_its_title_and_direction():
    header = _rows(side_by_side({"GM-VAE": {"nll": 99.0}}, {"GM-VAE": {"nll": 99.4}}, ["nll", "param_var"]))[0]
    assert header.startswith("| model | NLL ↓ (paper) | NLL ↓ (ours) | NLL ↓ Δ | Var")
