"""DGM-VAE training throughput at the paper's PTB configuration and at a faster one.

Prints sentences/s and sentence tokens/s (each sentence counted once, with </s>, as in
shared/docs/performance-anchors.md) for a few configurations, measured in one process:

    python benchmarks/train_throughput.py [--data-dir DIR] [--steps 20] [--device auto]

Uses the real PTB training set when --data-dir (or $DEMVAE_DATA) has it, else random sentences with
PTB's length distribution over a 10,002-word vocabulary (same shapes, same cost).
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from demvae.data.batching import BucketBatchSampler, EncodedSplit, iterate
from demvae.models import build_model
from demvae.objectives import ObjectiveConfig, objective
from demvae.runs import compose

PTB_VOCAB = 10_002


def ptb_like_split(n: int = 6000, seed: int = 0) -> EncodedSplit:
    g = torch.Generator().manual_seed(seed)
    lengths = (torch.randn(n, generator=g) * 10 + 25).round().clamp(3, 40).long()
    ids = torch.randint(4, PTB_VOCAB, (n, 40), generator=g)
    ids[:, 0] = 2
    ids[torch.arange(n), lengths - 1] = 3
    ids[torch.arange(40).unsqueeze(0) >= lengths.unsqueeze(1)] = 0
    return EncodedSplit(ids, lengths, {}, 0, 40)


def real_ptb(data_dir: str) -> EncodedSplit | None:
    try:
        from demvae.config import DataConfig
        from demvae.data.prepare import prepare

        return prepare(DataConfig(corpus="ptb", data_dir=data_dir)).splits["train"]
    except Exception:
        return None


def measure(split: EncodedSplit, batch_size: int, n_samples: int, steps: int, device: torch.device,
            amp: bool = False, bucketed: bool = True, vocab: int = PTB_VOCAB) -> dict:
    torch.manual_seed(0)
    cfg = compose("dgm-vae")
    model = build_model(cfg.model, vocab, 2, 3).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    obj = ObjectiveConfig(beta=0.8)
    sampler = BucketBatchSampler(split.lengths, batch_size, shuffle=True, seed=0,
                                 bucket_factor=50 if bucketed else 1)
    batches = [b.to(device) for b in iterate(split, sampler)][: steps + 3]
    ctx = torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)

    def step(batch):
        with ctx:
            loss = objective(model(batch, n_samples), obj, 1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()

    for b in batches[:3]:
        step(b)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    sentences = tokens = 0
    for b in batches[3:]:
        step(b)
        sentences += b.size
        tokens += int(b.lengths.sum()) - b.size
    if device.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t
    return {"sentences_per_s": sentences / dt, "tokens_per_s": tokens / dt, "s_per_step": dt / (len(batches) - 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=os.environ.get("DEMVAE_DATA"))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--only-paper", action="store_true")
    args = ap.parse_args()
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    split = (real_ptb(args.data_dir) if args.data_dir else None) or ptb_like_split()
    source = "PTB train" if split.max_len == 40 and len(split) > 40000 else "PTB-shaped random data"
    rows = [("paper: batch 30, S=20, fp32, bucketed", dict(batch_size=30, n_samples=20))]
    if not args.only_paper:
        rows.append(("paper shapes, random batches (original)", dict(batch_size=30, n_samples=20, bucketed=False)))
        if device.type == "cuda":
            rows.append(("fast: batch 240, S=20, bf16", dict(batch_size=240, n_samples=20, amp=True)))
            rows.append(("fast: batch 1024, S=5, bf16", dict(batch_size=1024, n_samples=5, amp=True)))
        else:
            rows.append(("paper shapes, bf16 autocast", dict(batch_size=30, n_samples=20, amp=True)))
            rows.append(("fast: batch 30, S=5, bf16 autocast", dict(batch_size=30, n_samples=5, amp=True)))
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    print(f"device: {device} ({name}), data: {source}, torch {torch.__version__}")
    print("| configuration | sentences/s | tokens/s | s/step |\n|---|---|---|---|")
    for name, kw in rows:
        r = measure(split, steps=args.steps, device=device, **kw)
        print(f"| {name} | {r['sentences_per_s']:.1f} | {r['tokens_per_s']:.0f} | {r['s_per_step']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
