"""Importance-sampled NLL: batched (sentences × samples together) vs one sentence at a time.

Times the same code two ways on the PTB test-set shape (3,761 sentences, 500 samples by default) with
a DGM-VAE at the paper's size, and the full ``demvae eval`` metric groups on the same model:

    python benchmarks/is_nll.py [--sentences N] [--samples 500] [--loop-sentences 20] [--device auto]

The one-at-a-time loop is timed on ``--loop-sentences`` sentences and extrapolated (it is linear in
the number of sentences); the batched path runs on all ``--sentences``.
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

    log_likelihoods(model, small, args.samples, args.rows_per_step)  # warm-up
    sync(device)
    t = time.perf_counter()
    log_likelihoods(model, small, args.samples, args.rows_per_step, sentences_per_batch=1)
    sync(device)
    loop = (time.perf_counter() - t) / args.loop_sentences

    t = time.perf_counter()
    log_likelihoods(model, split, args.samples, args.rows_per_step)
    sync(device)
    batched = (time.perf_counter() - t) / args.sentences

    name = torch.cuda.get_device_name() if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"device: {name}; {args.samples} samples per sentence; DGM-VAE at PTB size (V = {PTB_VOCAB})")
    print("| method | s / sentence | PTB test set (3,761) | speed-up |\n|---|---|---|---|")
    print(f"| one sentence at a time | {loop:.4f} | {loop * 3761:.0f} s | 1.0x |")
    print(f"| batched, {args.rows_per_step} rows per decoder call | {batched:.4f} | {batched * 3761:.0f} s | {loop / batched:.1f}x |")


if __name__ == "__main__":
    main()
