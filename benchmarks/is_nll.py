"""Importance-sampled NLL: batched (sentences × samples together) vs one sentence at a time.

Times the same code two ways on the PTB test-set shape (sentences of PTB's length distribution,
500 samples each) with a DGM-VAE at the paper's size (GRU 512, V = 10,002):

    python benchmarks/is_nll.py [--sentences 3761] [--samples 500] [--loop-sentences 20] [--device auto]

The one-at-a-time loop runs on the first ``--loop-sentences`` sentences; the batched path runs on
those same sentences (the speed-up) and then on all ``--sentences`` (the PTB-test-set time).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from train_throughput import PTB_VOCAB, ptb_like_split  # noqa: E402

from demvae.data.batching import EncodedSplit  # noqa: E402
from demvae.evaluation.likelihood import log_likelihoods  # noqa: E402
from demvae.models import build_model  # noqa: E402
from demvae.runs import compose  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sentences", type=int, default=3761)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--loop-sentences", type=int, default=20)
    ap.add_argument("--rows-per-step", type=int, default=8192)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    torch.manual_seed(0)
    model = build_model(compose("dgm-vae").model, PTB_VOCAB, 2, 3).to(device).eval()
    split = ptb_like_split(args.sentences, seed=1)
    small = EncodedSplit(split.ids[: args.loop_sentences], split.lengths[: args.loop_sentences], {}, 0, 40)

    def timed(data, **kw) -> float:
        sync(device)
        t = time.perf_counter()
        log_likelihoods(model, data, args.samples, args.rows_per_step, **kw)
        sync(device)
        return (time.perf_counter() - t) / len(data)

    timed(EncodedSplit(small.ids[:2], small.lengths[:2], {}, 0, 40))  # warm-up
    loop = timed(small, sentences_per_batch=1)
    batched_same = timed(small)
    batched_all = timed(split) if args.sentences > args.loop_sentences else batched_same

    name = torch.cuda.get_device_name() if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"device: {name}; {args.samples} samples per sentence; DGM-VAE at PTB size (V = {PTB_VOCAB})")
    print("| method | sentences | s / sentence | PTB test set (3,761) | speed-up |\n|---|---|---|---|---|")
    print(f"| one sentence at a time | {args.loop_sentences} | {loop:.4f} | {loop * 3761:.0f} s | 1.0x |")
    print(f"| batched ({args.rows_per_step} rows per call) | {args.loop_sentences} | {batched_same:.4f} | "
          f"{batched_same * 3761:.0f} s | {loop / batched_same:.1f}x |")
    if args.sentences > args.loop_sentences:
        print(f"| batched, all | {args.sentences} | {batched_all:.4f} | {batched_all * 3761:.0f} s | – |")


if __name__ == "__main__":
    main()
