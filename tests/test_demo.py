"""The demo's control table over several seeds (``demvae demo --seeds``): mean and range per cell."""

from __future__ import annotations

from typer.testing import CliRunner

from demvae.cli import app
from demvae.demo import control_rows, seed_folder
from demvae.errors import DemvaeError


def _control(recovery: float, distinct: float, agreement: float) -> dict:
    return {"recovery": recovery, "unfiltered_recovery": recovery - 0.1, "distinct": distinct,
            "distinct_2": distinct / 2,
            "labels": {"intent": {"agreement": agreement, "ceiling": 0.8, "chance": 0.2}}}


def test_one_seed_keeps_numbers_and_several_give_mean_and_range():
    one = control_rows({"m, p": [_control(0.9, 0.5, 0.7)]})
    assert one == [{"model, procedure": "m, p", "code recovery": 0.9, "unfiltered recovery": 0.9 - 0.1,
                    "distinct": 0.5, "distinct-2": 0.25,
                    "intent agreement": 0.7, "intent ceiling": 0.8, "intent chance": 0.2}]
    three = control_rows({"m, p": [_control(0.9, 0.5, 0.7), _control(1.0, 0.6, 0.4), _control(0.95, 0.7, 0.7)]})[0]
    assert three["model, procedure"] == "m, p (3 seeds)"
    assert three["code recovery"] == "0.950 (0.900-1.000)" and three["unfiltered recovery"] == "0.850 (0.800-0.900)"
    assert three["distinct"] == "0.600 (0.500-0.700)" and three["distinct-2"] == "0.300 (0.250-0.350)"
    assert three["intent agreement"] == "0.600 (0.400-0.700)" and three["intent ceiling"] == "0.800 (0.800-0.800)"


def test_seed_folders_and_bad_seeds(tmp_path):
    assert seed_folder("dgm-vae-mi", 0) == "dgm-vae-mi" and seed_folder("dgm-vae-mi", 2) == "dgm-vae-mi-seed2"
    for bad in ("", "a,b", "-1"):
        result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--seeds", bad])
        assert isinstance(result.exception, DemvaeError)  # main() prints it as one error line
        assert "--seeds takes comma-separated whole numbers" in str(result.exception)
