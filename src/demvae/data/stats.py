"""Corpus statistics (``demvae data stats``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from demvae.data.batching import BucketBatchSampler, EncodedSplit, padding_efficiency, random_batches
from demvae.data.types import SPLITS, Corpus
from demvae.data.vocab import UNK, Vocab


def corpus_stats(corpus: Corpus, vocab: Vocab, max_len: int = 40, batch_size: int = 30) -> dict:
    """Per-split counts, lengths, OOV rate, truncation, label distributions and padding efficiency.

    ``tokens`` count ``<s>``/``</s>`` and are taken before truncation; ``oov_rate`` is the share of word tokens (without
    ``<s>``/``</s>``) that map to ``<unk>`` although the text did not literally say ``<unk>``. Padding efficiency
    compares length-bucketed batches (:class:`BucketBatchSampler`, epoch 0) with plain shuffled batches.
    """
    train_types: set[str] = set()
    for ex in corpus.splits.get("train", []):
        train_types.update(ex.tokens)
    out: dict = {
        "name": corpus.name,
        "description": corpus.description,
        "vocab_size": len(vocab),
        "train_types": len(train_types),
        "max_len": max_len,
        "batch_size": batch_size,
        "label_names": {k: list(v) for k, v in corpus.label_names.items()},
        "info": {k: dict(v) for k, v in corpus.info.items()},
        "splits": {},
    }
    for split in [s for s in SPLITS if s in corpus.splits] + [s for s in corpus.splits if s not in SPLITS]:
        examples = corpus.splits[split]
        counts: Counter[str] = Counter()
        for ex in examples:
            counts.update(ex.tokens)
        n_words = sum(counts.values())
        oov = sum(c for t, c in counts.items() if t not in vocab and t != UNK)
        raw_len = np.array([len(ex.tokens) + 2 for ex in examples], dtype=np.int64)
        enc = EncodedSplit.from_examples(examples, vocab, max_len=max_len)
        labels = {}
        for key, tensor in enc.labels.items():
            names = corpus.label_names.get(key, [])
            c = Counter(tensor.tolist())
            labels[key] = {
                (names[i] if 0 <= i < len(names) else ("(none)" if i < 0 else str(i))): c[i] for i in sorted(c)
            }
        lens = enc.lengths
        sampler = BucketBatchSampler(lens, batch_size, shuffle=True, seed=0)
        n = len(examples)
        out["splits"][split] = {
            "examples": n,
            "tokens": int(raw_len.sum()),
            "tokens_after_truncation": int(lens.sum()),
            "oov_rate": oov / n_words if n_words else 0.0,
            "length": {
                "mean": float(raw_len.mean()) if n else 0.0,
                "p50": float(np.percentile(raw_len, 50)) if n else 0.0,
                "p90": float(np.percentile(raw_len, 90)) if n else 0.0,
                "p99": float(np.percentile(raw_len, 99)) if n else 0.0,
                "max": int(raw_len.max()) if n else 0,
            },
            "truncated": enc.n_truncated,
            "labels": labels,
            "padding_efficiency": {
                "bucketed": padding_efficiency(lens, sampler.batches(0)),
                "random": padding_efficiency(lens, random_batches(n, batch_size, seed=0)),
            },
            "batches": len(sampler),
        }
    return out


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r))  # noqa: E731
    return [fmt(header), "  ".join("-" * w for w in widths), *[fmt(r) for r in rows]]


def format_stats(stats: dict) -> str:
    """A plain-text report of :func:`corpus_stats`' result."""
    splits = list(stats["splits"])
    s = stats["splits"]
    lines = [f"corpus: {stats['name']}"]
    if stats.get("description"):
        lines.append(f"  {stats['description']}")
    lines.append(
        f"vocabulary: {stats['vocab_size']:,} ids (incl. specials); {stats['train_types']:,} distinct train token types"
    )
    lines.append(f"max_len {stats['max_len']} (incl. <s> </s>), batch size {stats['batch_size']}")
    lines.append("")
    rows = [
        ["examples", *[f"{s[x]['examples']:,}" for x in splits]],
    ]
    for key, per_split in stats.get("info", {}).items():
        rows.append([key, *[f"{per_split[x]:,}" if x in per_split else "-" for x in splits]])
    rows += [
        ["tokens (incl. <s> </s>)", *[f"{s[x]['tokens']:,}" for x in splits]],
        ["tokens after truncation", *[f"{s[x]['tokens_after_truncation']:,}" for x in splits]],
        ["OOV rate", *[f"{100 * s[x]['oov_rate']:.2f}%" for x in splits]],
        ["length mean", *[f"{s[x]['length']['mean']:.1f}" for x in splits]],
        ["length p50/p90/p99/max", *[
            "/".join(f"{round(s[x]['length'][k], 1):g}" for k in ("p50", "p90", "p99", "max")) for x in splits
        ]],
        [f"truncated (>{stats['max_len']})", *[f"{s[x]['truncated']:,}" for x in splits]],
        ["batches", *[f"{s[x]['batches']:,}" for x in splits]],
        ["padding eff. bucketed", *[f"{100 * s[x]['padding_efficiency']['bucketed']:.1f}%" for x in splits]],
        ["padding eff. random", *[f"{100 * s[x]['padding_efficiency']['random']:.1f}%" for x in splits]],
    ]
    lines += _table(["", *splits], rows)
    label_keys = sorted({k for x in splits for k in s[x]["labels"]})
    for key in label_keys:
        names = list(stats.get("label_names", {}).get(key, []))
        for x in splits:
            for n in s[x]["labels"].get(key, {}):
                if n not in names:
                    names.append(n)
        lines.append("")
        lines.append(f"label '{key}'")
        rows = [
            [name, *[f"{s[x]['labels'].get(key, {}).get(name, 0):,}" for x in splits]] for name in names
        ]
        lines += _table(["", *splits], rows)
    return "\n".join(lines)


def describe(
    name_or_path: str | Path,
    data_dir: str | Path | None = None,
    max_vocab: int | None = 10000,
    max_len: int = 40,
    batch_size: int = 30,
    **options,
) -> str:
    """Load a corpus, build the vocabulary on its train split and return the formatted statistics."""
    from demvae.data.corpora import load_corpus

    corpus = load_corpus(str(name_or_path), data_dir=data_dir, **options)
    vocab = Vocab.build((ex.tokens for ex in corpus.splits["train"]), max_size=max_vocab, specials=corpus.specials)
    notes = "".join(f"\nnote: {n}" for n in corpus.notes)
    return format_stats(corpus_stats(corpus, vocab, max_len=max_len, batch_size=batch_size)) + notes


__all__ = ["corpus_stats", "format_stats", "describe"]
