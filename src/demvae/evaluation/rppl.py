"""Reverse perplexity: train a language model on a model's prior samples, measure it on real text.

Low rPPL needs samples that are both fluent and diverse. The paper trained an external AWD-LSTM;
ours is the library's own RNN-LM (one GRU layer, untied output) trained by the same trainer with a
fixed recipe (:data:`RPPL_RECIPE`): the samples, minus the last ``n_valid``, are its training set,
those ``n_valid`` its validation set (model selection), and the real test split is what it is
measured on. Its vocabulary is the evaluated model's, so every compared model is scored on the
same words.

:func:`real_data_anchor` runs the same recipe on as many *real* train sentences as the model's samples: the
rPPL that perfect samples would get at this budget. A model's rPPL means something only next to it (at a
budget too small for the LM, both are large; a collapsed model's samples stay far above it).
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import Any

from demvae.config import DataConfig, RunConfig, from_dict, merge, preset
from demvae.data.batching import EncodedSplit
from demvae.data.prepare import PreparedData
from demvae.data.types import Corpus, Example
from demvae.data.vocab import Vocab
from demvae.models import TextVAE
from demvae.training import Trainer, load_run
from demvae.training.validation import posterior_stats

RPPL_RECIPE: dict[str, dict[str, Any]] = {
    "model": {"embed_dim": 256, "hidden_size": 256, "dropout": 0.3},
    "train": {"batch_size": 64, "lr": 1e-3, "grad_clip": 5.0, "max_steps": 4000, "eval_every": 500,
              "lr_hold": 2, "patience": 4, "patience_increase": 1.5, "progress": False, "log_every": 500},
}


def reverse_perplexity(samples: list[list[str]], test: EncodedSplit, vocab: Vocab, n_valid: int = 3000,
                       max_steps: int | None = None, device: str = "auto", seed: int = 0,
                       amp: bool | str = "auto") -> dict[str, float]:
    """``amp``: the language model's ``train.amp`` (the evaluation's precision)."""
    n_valid = min(n_valid, max(1, len(samples) // 10))
    train_ex = [Example(tuple(s)) for s in samples[:-n_valid]]
    valid_ex = [Example(tuple(s)) for s in samples[-n_valid:]]
    train_cfg = {**RPPL_RECIPE["train"], "device": device, "seed": seed, "amp": amp}
    if max_steps is not None:
        train_cfg["max_steps"] = max_steps
    raw = merge(merge(preset("rnnlm"), RPPL_RECIPE), {"model_name": "rnnlm", "train": train_cfg})
    cfg: RunConfig = from_dict(raw)
    cfg.data = DataConfig(corpus="generated", max_len=test.max_len or 40)
    max_len = cfg.data.max_len
    data = PreparedData(
        Corpus("generated", {"train": train_ex, "valid": valid_ex, "test": []}),
        vocab,
        {"train": EncodedSplit.from_examples(train_ex, vocab, max_len),
         "valid": EncodedSplit.from_examples(valid_ex, vocab, max_len), "test": test},
    )
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp) / "lm", data=data)
        trainer.fit(interruptible=False)  # Ctrl-C during eval stops it; nothing to save
        lm = load_run(Path(tmp) / "lm", device=str(trainer.device))  # the best on validation
        assert isinstance(lm.model, TextVAE)  # an rnnlm run is a sentence run
        stats = posterior_stats(lm.model, test, cfg.objective)
    return {"rppl": stats.ppl, "rppl_nll": stats.rec, "rppl_train_sentences": len(train_ex)}


def real_data_anchor(train_sentences: list[list[str]], n: int, test: EncodedSplit, vocab: Vocab,
                     max_steps: int | None = None, device: str = "auto", seed: int = 0,
                     amp: bool | str = "auto") -> dict[str, float]:
    """:func:`reverse_perplexity` of ``n`` real train sentences (a seeded draw; all of them if fewer): the
    upper anchor of rPPL at the same LM budget. Keys ``rppl_real``, ``rppl_real_nll``, ``rppl_real_train_sentences``."""
    chosen = random.Random(seed).sample(train_sentences, min(n, len(train_sentences)))
    out = reverse_perplexity(chosen, test, vocab, max_steps=max_steps, device=device, seed=seed, amp=amp)
    return {key.replace("rppl", "rppl_real", 1): value for key, value in out.items()}
