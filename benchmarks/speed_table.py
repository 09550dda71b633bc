"""Training and IS-NLL speed and peak memory of DGM-VAE at the paper's PTB configuration, one markdown table.

    PYTHONPATH=src python3 benchmarks/speed_table.py [--data-dir DIR] [--steps 10] [--repeat 1] [--quick]
        [--precisions fp32,bf16] [--batching bucketed,random] [--recurrences auto] [--device auto]

Rows: training at the paper's PTB DGM-VAE configuration (``configs/ptb/dgm-vae.yaml``: batch 30, 20 posterior
samples, GRU 512, M × K = 20 × 5 codes, V = 10,002; Adam, clipping, the β = 0.8 objective at KL weight 1) in
each precision × batching × decoder recurrence, then importance-sampled NLL (500 samples) per recurrence.
Every configuration runs in a fresh process, so its peak RSS (``ru_maxrss``) is its own; on a GPU
``torch.cuda.max_memory_allocated`` is reported too. ``--repeat k`` runs the whole list k times,
interleaved (A B C A B C ...), and reports medians: on a shared machine only interleaved ratios mean much.

``--data-dir`` with the paper data: real PTB train sentences (training) and the first test sentences
(IS-NLL); otherwise random sentences with PTB's length distribution (same shapes, same cost).
``bucketed`` batches group sentences of similar lengths (the trainer's sampler); ``random`` batches
are plain shuffled ones (the original code's). ``--recurrences`` lists the decoder's recurrences (``auto``: the
default for the device; ``shared``: the input projection once per token, ``gru``: ``nn.GRU`` on every posterior
sample's copy of the inputs; see ``demvae.nn.decoders``); the output layer + cross-entropy is always the fused,
chunked one. bf16 rows run under ``demvae.device.autocast`` (the trainer's ``train.amp``: the latent terms stay
float32), and only where the device multiplies bf16 matrices in hardware (``has_bf16_matmul``); their
"loss vs fp32" column is the relative difference of the mean loss from the fp32 row of the same batches and
recurrence. ``--quick``: a 64-wide model, 2 steps, 3 IS-NLL sentences: a functional check, no figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch

from demvae.config import compose
from demvae.data.batching import BucketBatchSampler, EncodedSplit, random_batches
from demvae.device import autocast, has_bf16_matmul
from demvae.evaluation.likelihood import log_likelihoods
from demvae.models import build_model
from demvae.objectives import objective

PTB_VOCAB = 10_002


def ptb_like_split(n: int, seed: int = 0) -> EncodedSplit:
    """Random sentences over a PTB-sized vocabulary with PTB's length distribution (mean ≈ 23 with <s>, </s>)."""
    g = torch.Generator().manual_seed(seed)
    lengths = (torch.randn(n, generator=g) * 10 + 23).round().clamp(3, 40).long()
    ids = torch.randint(4, PTB_VOCAB, (n, 40), generator=g)
    ids[:, 0] = 2
    ids[torch.arange(n), lengths - 1] = 3
    ids[torch.arange(40).unsqueeze(0) >= lengths.unsqueeze(1)] = 0
    return EncodedSplit(ids, lengths, {}, 0, 40)


def load_split(data_dir: str | None, name: str, n: int) -> tuple[EncodedSplit, int, str]:
    """(split, vocabulary size, description); ``n`` caps the synthetic split's size."""
    if data_dir:
        from demvae.config import DataConfig
        from demvae.data.prepare import prepare

        data = prepare(DataConfig(corpus="ptb", data_dir=data_dir))
        return data.splits[name], len(data.vocab), f"PTB {name}"
    return ptb_like_split(n, seed=0 if name == "train" else 1), PTB_VOCAB, "PTB-shaped random sentences"


def paper_config(spec: dict):
    return compose("dgm-vae", "ptb/dgm-vae", overrides={"model": {**spec["model"], "recurrence": spec["recurrence"]}})


def paper_model(spec: dict, vocab: int):
    torch.manual_seed(0)
    return build_model(paper_config(spec).model, vocab, 2, 3).to(spec["device"])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def training(spec: dict) -> tuple[torch.nn.Module, list, Callable, str]:
    """A training row's model, its ``warmup + steps`` batches (on the device), its step function (Adam, clipping, the
    objective at KL weight 1, under bf16 autocast for ``precision: bf16``; returns the detached loss) and
    the data's description. ``profile_step.py`` times the same step."""
    device = torch.device(spec["device"])
    split, vocab, source = load_split(spec["data_dir"], "train", 6000)
    model = paper_model(spec, vocab).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    obj = paper_config(spec).objective
    n = spec["warmup"] + spec["steps"]
    if spec["batching"] == "random":
        indices = random_batches(len(split), spec["batch_size"], seed=0)[:n]
    else:
        indices = BucketBatchSampler(split.lengths, spec["batch_size"], shuffle=True, seed=0).batches()[:n]
    batches = [split.batch(i).to(device) for i in indices]

    def step(batch):
        with autocast(device, spec["precision"] == "bf16"):
            loss = objective(model(batch, spec["samples"]), obj, 1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        return loss.detach()

    return model, batches, step, source


def train_row(spec: dict) -> dict:
    device = torch.device(spec["device"])
    _, batches, train_step, source = training(spec)
    losses = []

    def step(batch):
        losses.append(train_step(batch))

    for batch in batches[: spec["warmup"]]:
        step(batch)
    _sync(device)
    t = time.perf_counter()
    for batch in batches[spec["warmup"]:]:
        step(batch)
    _sync(device)
    dt = time.perf_counter() - t
    timed = batches[spec["warmup"]:]
    real = sum(int(b.host_lengths.sum()) for b in timed)
    return {
        "seconds": dt / len(timed), "unit": "s/step", "sentences_per_s": sum(b.size for b in timed) / dt,
        "tokens_per_s": (real - sum(b.size for b in timed)) / dt,  # each sentence once, </s> included
        "padding": real / sum(b.tokens.shape[1] * b.size for b in timed),
        "loss": float(torch.stack(losses[spec["warmup"]:]).mean()), "source": source,
    }


def is_nll_row(spec: dict) -> dict:
    device = torch.device(spec["device"])
    full, vocab, source = load_split(spec["data_dir"], "test", spec["is_sentences"])
    keep = torch.arange(min(spec["is_sentences"], len(full)))
    split = EncodedSplit(full.ids[keep], full.lengths[keep], {}, 0, full.max_len)
    model = paper_model(spec, vocab).eval()
    rows = {"rows_per_step": spec["is_rows"], "max_memory": spec["max_memory"]}
    log_likelihoods(model, EncodedSplit(split.ids[:1], split.lengths[:1], {}), 2, **rows)  # warm-up
    _sync(device)
    t = time.perf_counter()
    log_likelihoods(model, split, spec["is_samples"], **rows)
    _sync(device)
    dt = time.perf_counter() - t
    return {"seconds": dt / len(split), "unit": "s/sentence", "sentences_per_s": len(split) / dt,
            "tokens_per_s": (int(split.lengths.sum()) - len(split)) / dt, "padding": None, "loss": None,
            "source": f"{source}, mean length {split.lengths.double().mean():.1f}"}


def run_child(spec: dict) -> dict:
    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    if spec["device"].startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    out = (train_row if spec["kind"] == "train" else is_nll_row)(spec)
    out["threads"] = torch.get_num_threads()
    out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    out["peak_cuda_gib"] = torch.cuda.max_memory_allocated() / 2**30 if spec["device"].startswith("cuda") else None
    return out


def _label(spec: dict) -> str:
    path = "" if spec["recurrence"] == "auto" else f", {spec['recurrence']} recurrence"
    if spec["kind"] == "train":
        return (f"training, batch {spec['batch_size']}, S={spec['samples']}, {spec['precision']}, "
                f"{spec['batching']} batches{path}")
    bound = f"≤ {spec['max_memory'] / 2**20:.0f} MiB" if spec["max_memory"] else f"≤ {spec['is_rows']} rows"
    return f"IS-NLL, {spec['is_samples']} samples, ≤ {spec['is_sentences']} sentences, decoder calls {bound}{path}"


def _median(values: list):
    numbers = [v for v in values if isinstance(v, int | float)]
    return statistics.median(numbers) if numbers else None


def _fmt(x, pattern: str) -> str:
    return "–" if x is None else format(x, pattern)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("DEMVAE_DATA"))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=30)
    ap.add_argument("--samples", type=int, default=20, help="posterior samples per sentence in training")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--batching", default="bucketed,random")
    ap.add_argument("--recurrences", default="auto", help="comma-separated decoder recurrences: auto, shared, gru")
    ap.add_argument("--is-sentences", type=int, default=10)
    ap.add_argument("--is-samples", type=int, default=500)
    ap.add_argument("--is-rows", type=int, default=8192, help="decoder rows per IS-NLL call")
    ap.add_argument("--max-memory", type=float, default=None, help="IS-NLL decoder memory bound, MiB")
    ap.add_argument("--no-training", action="store_true", help="only the IS-NLL rows")
    ap.add_argument("--no-is-nll", action="store_true", help="only the training rows")
    ap.add_argument("--repeat", type=int, default=1, help="run the list this many times, interleaved")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a functional check")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    base = {
        "device": device, "data_dir": args.data_dir, "threads": args.threads, "model": {},
        "steps": args.steps, "warmup": args.warmup, "batch_size": args.batch_size, "samples": args.samples,
        "is_sentences": args.is_sentences, "is_samples": args.is_samples, "is_rows": args.is_rows,
        "max_memory": int(args.max_memory * 2**20) if args.max_memory else None,
    }
    if args.quick:
        base.update(model={"embed_dim": 64, "hidden_size": 64}, steps=2, warmup=1, batch_size=8, samples=4,
                    is_sentences=3, is_samples=20, is_rows=256)
    recurrences = args.recurrences.split(",")
    precisions = args.precisions.split(",")
    if "bf16" in precisions and not has_bf16_matmul(torch.device(device)):
        precisions.remove("bf16")
        print(f"bf16 rows skipped: {device} here has no bf16 matrix units (see demvae.device.has_bf16_matmul)",
              file=sys.stderr)
    specs = [] if args.no_training else [
        {**base, "kind": "train", "precision": p, "batching": b, "recurrence": r}
        for p in precisions for b in args.batching.split(",") for r in recurrences]
    if not args.no_is_nll:
        specs += [{**base, "kind": "is_nll", "recurrence": r} for r in recurrences]

    if not specs:
        print("nothing to measure on this device", file=sys.stderr)
        return
    results: list[list[dict]] = [[] for _ in specs]
    for _ in range(args.repeat):
        for spec, runs in zip(specs, results):
            proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"error: {_label(spec)} failed:\n{proc.stderr[-2000:]}")
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"{_label(spec)}: {runs[-1]['seconds']:.3f} {runs[-1]['unit']}", file=sys.stderr, flush=True)

    first = results[0][0]
    name = torch.cuda.get_device_name() if device.startswith("cuda") else f"cpu, {first['threads']} threads"
    print(f"device: {name}; torch {torch.__version__}; medians of {args.repeat} interleaved run(s); "
          f"data: {first['source']}\n")
    print("| configuration | time | sentences/s | sentence tokens/s | real-token share | peak RSS (GiB) | "
          "peak CUDA (GiB) | loss | loss vs fp32 |\n|---|---|---|---|---|---|---|---|---|")
    medians = [{key: _median([r[key] for r in runs]) for key in runs[0]} for runs in results]
    fp32_loss = {(s["batching"], s["recurrence"]): m["loss"] for s, m in zip(specs, medians)
                 if s["kind"] == "train" and s["precision"] == "fp32"}
    for spec, runs, med in zip(specs, results, medians):
        seconds = [r["seconds"] for r in runs]
        spread = f" ({min(seconds):.3f}–{max(seconds):.3f})" if len(runs) > 1 else ""
        ref = fp32_loss.get((spec.get("batching"), spec["recurrence"])) if spec.get("precision") == "bf16" else None
        rel = None if ref is None or med["loss"] is None else 100 * (med["loss"] - ref) / abs(ref)
        rel_text = "–" if rel is None else f"{rel:+.3f} %"
        print(f"| {_label(spec)} | {med['seconds']:.3f} {runs[0]['unit']}{spread} | {med['sentences_per_s']:.2f} | "
              f"{med['tokens_per_s']:.0f} | {_fmt(med['padding'], '.2f')} | {med['peak_rss_gib']:.2f} | "
              f"{_fmt(med['peak_cuda_gib'], '.2f')} | {_fmt(med['loss'], '.4f')} | {rel_text} |")


if __name__ == "__main__":
    main()
