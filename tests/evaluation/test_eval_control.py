"""The ``control`` metrics: generation from a code, scored by code recovery and label agreement.

Most tests use :class:`ToyModel`, a stub with the interface the metric uses (``code_shape``,
``code_probs``, ``device``, ``eval``, and a generation procedure): its code is a content word, so a
perfectly controllable model and one whose decoder ignores the code are exact by construction, and
every expected score can be counted by hand. A real ``TextVAE`` (random and tiny-trained) checks that
the metric runs on the library's models, end to end through ``demvae eval``, and is deterministic.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from demvae.data.batching import EncodedSplit
from demvae.data.prepare import prepare
from demvae.data.types import Example
from demvae.data.vocab import EOS_ID, Vocab
from demvae.errors import ConfigError
from demvae.evaluation.control import (
    ControlOptions,
    ControlResult,
    control_code_table,
    control_scores,
    control_table,
    distinct_2,
    distinct_share,
    text_classifier,
)
from demvae.evaluation.run import EvalOptions, evaluate_run
from demvae.metrics import flat_row, table_columns
from demvae.models import build_model
from demvae.models.generation import PROCEDURES, Procedure
from demvae.runs import compose, train

N_LABELS = 4  # codes (a, b) with a, b in {0, 1}  <->  label / content word 2a + b


def sentence(label: int, filler: int) -> tuple[str, ...]:
    return ("please", f"w{label}", f"v{filler}")


def examples(counts: dict[tuple[int, int], int], fillers: range) -> list[Example]:
    """``counts[(content word, gold label)]`` sentences each, fillers cycling through ``fillers``."""
    out = []
    for (word, label), n in counts.items():
        out += [Example(sentence(word, fillers[i % len(fillers)]), {"intent": label}) for i in range(n)]
    return out


TRAIN_FILLERS, TEST_FILLERS = range(0, 5), range(5, 10)  # no test sentence is a train sentence
VOCAB = Vocab.build([sentence(y, f) for y in range(N_LABELS) for f in range(10)])


def encoded(exs: list[Example]) -> EncodedSplit:
    return EncodedSplit.from_examples(exs, VOCAB, max_len=20, label_keys=["intent"])


TRAIN = encoded(examples({(y, y): 40 for y in range(N_LABELS)}, TRAIN_FILLERS))


class ToyModel(torch.nn.Module):
    """The code of a sentence is its content word; generation writes ``please w<y> v<f>`` with y the code
    (``follow_code``) or y cycling 0..3 over the rows whatever the code, and f drawn from 0..n_fillers-1."""

    def __init__(self, follow_code: bool = True, n_fillers: int = 10, faithful_reconstruction: bool = True):
        super().__init__()
        self.follow_code, self.n_fillers = follow_code, n_fillers
        self.faithful_reconstruction = faithful_reconstruction
        self.words = torch.tensor([VOCAB.id(f"w{y}") for y in range(N_LABELS)])
        self.fillers = torch.tensor([VOCAB.id(f"v{f}") for f in range(10)])
        self.device = torch.device("cpu")

    def code_shape(self) -> tuple[int, int]:
        return 2, 2

    def code_probs(self, batch) -> torch.Tensor:
        y = (batch.tokens.unsqueeze(-1) == self.words).any(1).float().argmax(-1)  # [B]
        return F.one_hot(torch.stack([y // 2, y % 2], -1), 2).double()  # [B, 2, 2]

    def generate(self, codes: torch.Tensor) -> torch.Tensor:
        n = codes.shape[0]
        y = codes[:, 0] * 2 + codes[:, 1] if self.follow_code else torch.arange(n) % N_LABELS
        filler = self.fillers[torch.randint(self.n_fillers, (n,))]
        return torch.stack([torch.full((n,), VOCAB.id("please")), self.words[y], filler,
                            torch.full((n,), EOS_ID)], -1)


    def reconstruct(self, batch) -> torch.Tensor:
        """The sentence itself (without ``<s>``), or with its content word replaced by ``w0``."""
        ids = batch.tokens[:, 1:].clone()
        if not self.faithful_reconstruction:
            ids[:, 1] = self.words[0]
        return ids


def toy_sampler(model: ToyModel, codes: torch.Tensor) -> torch.Tensor:
    return model.generate(codes)


def score(model, split, **opts) -> ControlResult:
    return control_scores(model, VOCAB, split, TRAIN, ControlOptions(procedure=toy_sampler, **opts))


BALANCED = encoded(examples({(y, y): 25 for y in range(N_LABELS)}, TEST_FILLERS))


def test_perfectly_controllable_model_scores_one():
    r = score(ToyModel(), BALANCED)
    assert r.procedure == "toy_sampler" and r.n_per_code == 20 and r.unfiltered_recovery == r.recovery
    assert r.recovery == 1.0 and r.coverage == 1.0 and len(r.codes) == 4
    intent = r.labels["intent"]
    assert intent.agreement == 1.0 and intent.ceiling == 1.0 and intent.classifier_accuracy == 1.0
    assert intent.chance == 0.25
    for code in r.codes:
        assert code.majority["intent"] == code.code[0] * 2 + code.code[1]
        assert code.recovery == 1.0 and code.agreement == {"intent": 1.0}


def test_model_ignoring_its_code_scores_chance():
    r = score(ToyModel(follow_code=False), BALANCED)
    # each code's 20 sentences hold every label 5 times: a quarter agree, a quarter get their code back
    assert r.recovery == 0.25
    assert r.labels["intent"].agreement == r.labels["intent"].chance == 0.25
    assert r.labels["intent"].ceiling == 1.0


def test_per_variable_and_reconstruction_recovery_against_hand_counts():
    r = score(ToyModel(), BALANCED)
    assert r.variable_recovery == r.unfiltered_variable_recovery == [1.0, 1.0]
    assert r.reconstruction_recovery == 1.0
    # content words cycle 0..3 whatever the code: y = (y // 2, y % 2) matches each variable of a code in 2 of 4
    ignoring = score(ToyModel(follow_code=False, faithful_reconstruction=False), BALANCED)
    assert ignoring.variable_recovery == [0.5, 0.5] and ignoring.recovery == 0.25
    # every reconstruction says w0, code (0, 0): only that code's 25 members of 100 come back
    assert ignoring.reconstruction_recovery == 0.25


def test_recovery_compares_codes_not_split_ranks():
    # the split lacks code (0, 0); sentences generated for its codes include it, so the joint ids (ranks of the
    # codes within a split) of the generated sentences and of the split differ: recovery must not depend on them
    split = encoded(examples({(y, y): 25 for y in (1, 2, 3)}, TEST_FILLERS))
    assert score(ToyModel(follow_code=False), split).recovery == 0.25
    assert score(ToyModel(), split).recovery == 1.0


def test_impure_codes_weights_and_min_share():
    # content word (the code) -> gold labels: code 0 holds 60 x label 0 and 20 x label 1, code 1 40 x label 1,
    # code 2 30 x label 2 and 30 x label 3, code 3 only one sentence (0.66 % < 1 %: not scored)
    counts = {(0, 0): 60, (0, 1): 20, (1, 1): 40, (2, 2): 30, (2, 3): 30, (3, 3): 1}
    split = encoded(examples(counts, TEST_FILLERS))
    r = score(ToyModel(), split)
    n = len(split)
    assert [c.size for c in r.codes] == [80, 60, 40]  # largest first
    assert [c.code for c in r.codes] == [(0, 0), (1, 0), (0, 1)]
    assert r.coverage == pytest.approx(180 / n)
    intent = r.labels["intent"]
    # purity = majority count / size, weighted by size: (60 + 30 + 40) / 180
    assert intent.ceiling == pytest.approx(130 / 180)
    assert [c.ceiling["intent"] for c in r.codes] == pytest.approx([0.75, 0.5, 1.0])
    # code 2 is a tie between labels 2 and 3: the smaller id is its majority, which its sentences carry
    assert [c.majority["intent"] for c in r.codes] == [0, 2, 1]
    assert intent.agreement == 1.0 and r.recovery == 1.0
    assert intent.chance == pytest.approx(60 / n)  # label 1 and label 0 both hold 60 sentences
    # the classifier is right on every sentence whose label is its content word
    assert intent.classifier_accuracy == pytest.approx((60 + 40 + 30 + 1) / n)


def test_classifier_is_fitted_on_train_only():
    fitted = []

    def recording():
        clf = text_classifier()
        fit = clf.fit

        def record(x, y):
            fitted.append((list(x), list(y)))
            return fit(x, y)

        clf.fit = record
        return clf

    control_scores(ToyModel(), VOCAB, BALANCED, TRAIN, ControlOptions(procedure=toy_sampler), classifier=recording)
    assert len(fitted) == 1  # one label, one classifier
    texts, labels = fitted[0]
    train_texts = [" ".join(ex) for ex in (sentence(y, f) for y in range(N_LABELS) for f in TRAIN_FILLERS)]
    assert sorted(set(texts)) == sorted(train_texts) and len(texts) == len(TRAIN)
    test_texts = {" ".join(sentence(y, f)) for y in range(N_LABELS) for f in TEST_FILLERS}
    assert not set(texts) & test_texts
    assert np.bincount(labels).tolist() == [40] * N_LABELS


def test_unlabelled_corpus_gets_recovery_only():
    split = EncodedSplit.from_examples(
        [Example(sentence(y, f)) for y in range(N_LABELS) for f in TEST_FILLERS], VOCAB, max_len=20, label_keys=[]
    )
    r = score(ToyModel(), split)
    assert r.labels == {} and r.recovery == 1.0
    assert all(c.majority == {} for c in r.codes)
    assert "code recovery" in control_table({"toy": r}) and "agreement" not in control_table({"toy": r})


def test_distinct_sentences():
    assert score(ToyModel(n_fillers=1), BALANCED).distinct == 1 / 20  # always the same sentence per code
    ignoring = score(ToyModel(follow_code=False, n_fillers=1), BALANCED)
    assert ignoring.distinct == 4 / 20 and all(c.distinct == 4 / 20 for c in ignoring.codes)
    assert 0.2 < score(ToyModel(), BALANCED).distinct <= 10 / 20  # 10 fillers drawn 20 times


def test_variety_measures_against_hand_counts():
    assert distinct_share([("a", "b"), ("a", "b"), ("c",)]) == 2 / 3
    # bigrams: (a b) (b c) | (a b) | (a b) (b a): 5 in all, 3 distinct; one-word sentences have none
    assert distinct_2([("a", "b", "c"), ("a", "b"), ("a", "b", "a"), ("d",)]) == 3 / 5
    assert distinct_2([("a",), ()]) == 0.0
    # 20 x "please w<y> v0" per code: 40 bigrams, 2 distinct
    same = score(ToyModel(n_fillers=1), BALANCED)
    assert same.distinct_2 == 2 / 40 and all(c.distinct_2 == 2 / 40 for c in same.codes)
    # ignoring the code, each code's 20 sentences are the 4 "please w<y> v0": 8 distinct bigrams of 40
    assert score(ToyModel(follow_code=False, n_fillers=1), BALANCED).distinct_2 == 8 / 40


def test_variety_is_per_code_and_weighted_by_code_size():
    def sampler(model: ToyModel, codes: torch.Tensor) -> torch.Tensor:
        # code y writes y + 1 different sentences: fillers cycle through 0..y over the rows
        y = codes[:, 0] * 2 + codes[:, 1]
        n = codes.shape[0]
        filler = model.fillers[torch.arange(n) % (y + 1)]
        return torch.stack([torch.full((n,), VOCAB.id("please")), model.words[y], filler,
                            torch.full((n,), EOS_ID)], -1)

    counts = {(0, 0): 80, (1, 1): 40, (2, 2): 60}  # code (content word) 0: 80 members, 2: 60, 1: 40
    r = control_scores(ToyModel(), VOCAB, encoded(examples(counts, TEST_FILLERS)), TRAIN,
                       ControlOptions(procedure=sampler))
    assert [c.size for c in r.codes] == [80, 60, 40]
    # y + 1 distinct sentences of 20; bigrams: (please w<y>) once + (w<y> v<f>) y + 1 times, of 40
    assert [c.distinct for c in r.codes] == [1 / 20, 3 / 20, 2 / 20]
    assert [c.distinct_2 for c in r.codes] == [2 / 40, 4 / 40, 3 / 40]
    assert r.distinct == pytest.approx((80 * 1 + 60 * 3 + 40 * 2) / 20 / 180)
    assert r.distinct_2 == pytest.approx((80 * 2 + 60 * 4 + 40 * 3) / 40 / 180)
    assert "| distinct-2 (distinct bigrams / bigrams) | 0.07 |" in control_table({"r": r}).splitlines()
    assert control_code_table(r).splitlines()[0].startswith("| code | size | recovery | distinct | distinct-2 |")


def test_deterministic_for_a_seed():
    a, b, c = (score(ToyModel(), BALANCED, seed=s) for s in (3, 3, 4))
    assert a == b
    assert [x.samples for x in a.codes] != [x.samples for x in c.codes]  # the fillers are drawn


def test_tables():
    good, bad = score(ToyModel(), BALANCED), score(ToyModel(follow_code=False), BALANCED)
    table = control_table({"follows": good, "ignores": bad})
    lines = table.splitlines()
    assert lines[0] == "| measure | follows | ignores |"
    assert "| code recovery | 1.00 | 0.25 |" in lines
    assert "| intent agreement | 1.00 | 0.25 |" in lines
    assert "| intent ceiling (code purity) | 1.00 | 1.00 |" in lines
    per_code = control_code_table(good, {"intent": ["a", "b", "c", "d"]})
    assert (f"| 0,0 | 25 | 1.00 | {good.codes[0].distinct:.2f} | {good.codes[0].distinct_2:.2f} | a | 1.00 | 1.00 |"
            in per_code.splitlines())


def test_bad_options():
    with pytest.raises(ConfigError, match="unknown generation procedure"):
        control_scores(ToyModel(), VOCAB, BALANCED, TRAIN, ControlOptions(procedure="nope"))
    with pytest.raises(ConfigError, match="n_per_code"):
        score(ToyModel(), BALANCED, n_per_code=0)
    with pytest.raises(ConfigError, match="needs the codes' statistics"):
        control_scores(ToyModel(), VOCAB, BALANCED, TRAIN, ControlOptions(procedure=Procedure("aggregate")))


# --- the library's models ------------------------------------------------------------------------

TINY = {
    "data": {"options": {"n_train": 300, "n_valid": 60, "n_test": 60}, "max_len": 20},
    "model": {"embed_dim": 16, "hidden_size": 16, "n_variables": 2, "n_values": 3, "n_units": 2},
    "train": {"max_steps": 10, "eval_every": 10, "progress": False, "device": "cpu"},
}


def test_textvae_prior_procedure_is_deterministic():
    cfg = compose(config="builtin/dgm-vae", overrides=TINY)
    data = prepare(cfg.data)
    torch.manual_seed(0)
    model = build_model(cfg.model, len(data.vocab), data.vocab.bos_id, data.vocab.eos_id, max_len=cfg.data.max_len)
    test, train_split = data.splits["test"], data.splits["train"]
    runs = [control_scores(model, data.vocab, test, train_split,
                           ControlOptions(n_per_code=4, batch_size=7, procedure="prior")) for _ in range(2)]
    assert runs[0] == runs[1] and runs[0].procedure == "prior" and "prior" in PROCEDURES
    assert set(runs[0].labels) == {"intent", "style"}
    assert sum(len(c.samples) > 0 for c in runs[0].codes) == len(runs[0].codes)


def test_eval_control_group(tmp_path):
    run_dir = train(compose(config="builtin/dgm-vae", overrides=TINY), tmp_path / "dgm")
    results = evaluate_run(run_dir, EvalOptions(metrics=("control",), device="cpu"))
    control = results["control"]
    assert control["procedure"] == "rerank-t0-p0.9" and control["n_per_code"] == 20  # the default procedure
    assert set(control["labels"]) == {"intent", "style"}
    assert 0.0 <= control["recovery"] <= 1.0
    row = flat_row(results)
    assert row["control_recovery"] == control["recovery"]
    assert row["control_agree_intent"] == control["labels"]["intent"]["agreement"]
    assert row["control_distinct"] == control["distinct"] and row["control_distinct_2"] == control["distinct_2"]
    assert row["control_recovery_unfiltered"] == control["unfiltered_recovery"]
    assert (run_dir / "code_stats.json").is_file()  # written after training
    again = evaluate_run(run_dir, EvalOptions(metrics=("control",), device="cpu"))
    assert again["control"] == control
    columns, legend = table_columns([row])
    assert {"control_recovery", "control_distinct", "control_distinct_2", "control_agree_intent",
            "control_ceiling_intent", "control_chance_intent"} <= set(columns)
    assert any(line.startswith("Code recovery:") for line in legend)
    assert any(line.startswith("Variety:") for line in legend)
    # rerank filters nucleus candidates by the model's own q(c|x): its unfiltered recovery is nucleus's
    nucleus = evaluate_run(run_dir, EvalOptions(metrics=("control",), procedure="nucleus", device="cpu"))["control"]
    assert nucleus["procedure"] == "nucleus-t0-p0.9"
    assert control["unfiltered_recovery"] == nucleus["recovery"] == nucleus["unfiltered_recovery"]  # same seed
    prior = evaluate_run(run_dir, EvalOptions(metrics=("control",), procedure="prior", device="cpu"))
    assert prior["control"]["procedure"] == "prior" and prior["options"]["procedure"] == "prior"
    with pytest.raises(ConfigError, match="unknown generation procedure 'nope'"):
        evaluate_run(run_dir, EvalOptions(metrics=("control",), procedure="nope", device="cpu"))

