"""Shared test setup and fixtures.

Tiny models run fastest (and without thread contention) on one thread, so the whole suite runs with
``torch.set_num_threads(1)``; no test module needs its own thread fixture.
"""

from __future__ import annotations

import copy
import sys

import pytest
import torch

torch.set_num_threads(1)


# --- tiny run configurations ----------------------------------------------------------------------

# The built-in corpus shrunk to 300/60/60 sentences and a 16-wide model: the base of the tiny runs of the
# model and training tests (each adds its own step counts and model tweaks on top).
TINY_SECTIONS = {
    "data": {"options": {"n_train": 300, "n_valid": 60, "n_test": 60}, "max_len": 20},
    "model": {"embed_dim": 16, "hidden_size": 16, "n_variables": 2, "n_values": 3, "n_units": 2},
    "train": {"batch_size": 16, "n_samples": 2, "eval_batch_size": 30, "progress": False, "device": "cpu"},
}


@pytest.fixture(scope="session")
def tiny_overrides():
    """``tiny_overrides(layer, ...)`` -> ``TINY_SECTIONS`` with each ``{section: {key: value}}`` layer merged in."""
    from demvae.config import merge

    def build(*layers: dict) -> dict:
        out = copy.deepcopy(TINY_SECTIONS)
        for layer in layers:
            out = merge(out, copy.deepcopy(layer))
        return out

    return build


# --- the command line -----------------------------------------------------------------------------


@pytest.fixture
def run_main(monkeypatch, capsys):
    """``run_main(*args)`` runs the console script's ``main`` in-process -> (exit code, stdout, stderr)."""
    from demvae.cli import main

    def run(*args) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["demvae", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err

    return run


# --- exponential families -------------------------------------------------------------------------


def _make_poisson():
    """Poisson with η = log λ, defined only through A(η) = exp η (plus T and h for densities)."""
    from demvae.expfam import AutogradFamily

    return AutogradFamily(
        lambda eta: eta[..., 0].exp(),
        1,
        sufficient_stats=lambda x: x.unsqueeze(-1),
        log_base_measure=lambda x: -torch.lgamma(x + 1),
        name="poisson",
    )


@pytest.fixture(scope="session")
def make_poisson():
    """``make_poisson()`` -> a fresh Poisson ``AutogradFamily`` (given only by its log-partition A(η))."""
    return _make_poisson


# --- tiny synthetic dialogues (the SMD format) ----------------------------------------------------

_DOMAINS = {
    "weather": [("driver", "What's the weather in {city} {day}?"), ("assistant", "It will be {sky} in {city}."),
                ("driver", "Will it rain {day}?"), ("assistant", "No rain in {city} {day}."),
                ("driver", "Thanks!"), ("assistant", "You're welcome.")],
    "navigate": [("driver", "Find me a {place}."), ("assistant", "There is a {place} {n} miles away."),
                 ("driver", "What is the address?"), ("assistant", "It is at {n} {street} St."),
                 ("driver", "Take me there."), ("assistant", "Setting navigation now.")],
    "schedule": [("driver", "Remind me of my {event} {day}."), ("assistant", "Your {event} is {day} at {n} pm."),
                 ("driver", "Who is coming?"), ("assistant", "Your {who} is coming."),
                 ("driver", "Thank you."), ("assistant", "Have a nice day.")],
}
_FILLERS = {"city": ["Boston", "Fresno", "Atherton"], "day": ["today", "tomorrow", "Monday"],
            "sky": ["sunny", "cloudy", "foggy"], "place": ["gas station", "hospital", "coffee shop"],
            "n": ["2", "4", "5"], "street": ["Arcadia", "Alma", "Pine"], "event": ["dinner", "meeting", "lab"],
            "who": ["sister", "boss", "team"]}


def write_dialogues(root, n_train: int = 18, n_eval: int = 12, seed: int = 0):
    """Write tiny templated dialogues in the SMD (KVRET) format under ``root/stanford``; returns ``root``."""
    import json
    import random

    rng = random.Random(seed)
    folder = root / "stanford"
    folder.mkdir(parents=True, exist_ok=True)

    def dialogues(n):
        out = []
        for _ in range(n):
            domain = rng.choice(sorted(_DOMAINS))
            fill = {k: rng.choice(v) for k, v in _FILLERS.items()}
            turns = _DOMAINS[domain][: rng.choice([4, 6])]
            out.append({"dialogue": [{"turn": who, "data": {"utterance": text.format(**fill)}} for who, text in turns],
                        "scenario": {"task": {"intent": domain}}})
        return out

    for name, n in (("train", n_train), ("dev", n_eval), ("test", n_eval)):
        (folder / f"kvret_{name}_public.json").write_text(json.dumps(dialogues(n)))
    return root


# Stage 1: 8 steps (validations at 3, 6, 8); stage 2: 7 steps (validations at 3, 6, 7).
TINY_DIALOG = {
    "model": {"embed_dim": 16, "hidden_size": 16, "n_units": 2},
    "train": {"max_steps": 8, "eval_every": 3, "log_every": 2, "batch_size": 8, "eval_batch_size": 30,
              "progress": False, "device": "cpu"},
    "dialog": {"utterance_size": 8, "context_size": 16, "policy_size": 16, "attn_size": 8, "max_steps": 7},
}


@pytest.fixture(scope="session")
def dialog_data(tmp_path_factory):
    """A data folder holding tiny synthetic dialogues in the SMD format (``stanford/``)."""
    return write_dialogues(tmp_path_factory.mktemp("dialog_data"))


@pytest.fixture(scope="session")
def tiny_dialog_cfg(dialog_data):
    """``tiny_dialog_cfg(config="smd/dgm-vae-mi", **sections)`` -> a shrunk two-stage SMD config on the tiny
    synthetic dialogues."""
    from demvae.config import compose, merge

    def build(config: str = "smd/dgm-vae-mi", **sections):
        overrides = merge(copy.deepcopy(TINY_DIALOG), {"data": {"data_dir": str(dialog_data)}})
        return compose(config=config, overrides=merge(overrides, sections))

    return build


@pytest.fixture(scope="session")
def dialog_run(tmp_path_factory, tiny_dialog_cfg):
    """One uninterrupted tiny DGM-VAE+Lmi dialog run (both stages); read-only."""
    from demvae.runs import train

    return train(tiny_dialog_cfg(), tmp_path_factory.mktemp("dialog") / "run")
