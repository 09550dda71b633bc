"""Where a training step's time goes, and the floor the output layer sets on it, at the paper's PTB configuration.

    PYTHONPATH=src python3 benchmarks/profile_step.py [--data-dir DIR] [--steps 4] [--recurrence gru]
        [--batching bucketed] [--precision fp32] [--threads 0]

Runs ``--steps`` training steps of DGM-VAE (the same model, batches and step as ``speed_table.py``) under
``torch.profiler`` and prints, as markdown: the share of the step in the fused output layer + cross-entropy
(forward and backward), in the decoder's recurrence, and elsewhere; the top operators; and the output layer's
floor: its 3 matrix products per step (6·N·V·H flops for N predicted positions) at the rate this machine
reaches on one [1024 × H] · [H × V] product. The floor is what no exact fp32 implementation beats here.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from speed_table import training
from torch.profiler import ProfilerActivity, profile

SECTIONS = {  # profiler event -> section (its total time, children included)
    "_LinearCrossEntropy": "output layer + CE, forward (which also makes its gradients)",
    "_LinearCrossEntropyBackward": "output layer + CE, backward (scales them)",
    "aten::gru": "nn.GRU forward (the encoder; the decoder's with the gru recurrence)",
    "_SharedInputGRU": "decoder scan (shared recurrence), forward",
    "_SharedInputGRUBackward": "decoder scan (shared recurrence), backward",
    "Optimizer.step#Adam.step": "Adam",
}


def gemm_rate(hidden: int, vocab: int, rows: int = 1024, repeat: int = 5) -> float:
    """GFLOP/s of the best of ``repeat`` fp32 products [rows × hidden] · [hidden × vocab]."""
    a, b = torch.randn(rows, hidden), torch.randn(vocab, hidden)
    best = float("inf")
    for _ in range(repeat + 1):
        t = time.perf_counter()
        b @ a.t()
        best = min(best, time.perf_counter() - t)
    return 2 * rows * hidden * vocab / best / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("DEMVAE_DATA"))
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--recurrence", default="gru")
    ap.add_argument("--batching", default="bucketed", choices=["bucketed", "random"])
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="a 64-wide model, batch 8, S = 4: a functional check")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    quick = {"model": {"embed_dim": 64, "hidden_size": 64}, "batch_size": 8, "samples": 4}
    spec = {"device": "cpu", "data_dir": args.data_dir, "recurrence": args.recurrence, "batching": args.batching,
            "precision": args.precision, "warmup": 2, "steps": args.steps,
            **(quick if args.quick else {"model": {}, "batch_size": 30, "samples": 20})}
    model, batches, step, source = training(spec)

    for batch in batches[:2]:
        step(batch)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t = time.perf_counter()
        for batch in batches[2:]:
            step(batch)
        wall = (time.perf_counter() - t) / args.steps
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) / 1e6 / args.steps  # s/step, profiler clock
    seconds = {name: 0.0 for name in SECTIONS.values()}
    for e in events:
        if e.key in SECTIONS:
            seconds[SECTIONS[e.key]] += e.cpu_time_total / 1e6 / args.steps
    positions = sum(int(b.host_lengths.sum()) - b.size for b in batches[2:]) * spec["samples"] / args.steps
    hidden, vocab = model.decoder.hidden_size, model.decoder.embedding.num_embeddings
    rate = gemm_rate(hidden, vocab)
    floor = 6 * positions * vocab * hidden / rate / 1e9

    print(f"{source}; {args.precision}, {args.batching} batches, {args.recurrence} recurrence; "
          f"{torch.get_num_threads()} threads; {args.steps} profiled steps: {wall:.3f} s/step "
          f"({total:.3f} s/step on the profiler's clock)\n")
    print("| section | s/step | share |\n|---|---|---|")
    for name, s in seconds.items():
        if s:
            print(f"| {name} | {s:.3f} | {100 * s / total:.0f} % |")
    rest = total - sum(seconds.values())
    print(f"| everything else (latent terms, dropout, clipping; nn.GRU's backward) | {rest:.3f} | "
          f"{100 * rest / total:.0f} % |")
    print(f"\noutput-layer floor: {positions:.0f} predicted positions per step × 6·V·H = "
          f"{6 * positions * vocab * hidden / 1e9:.0f} GFLOP at {rate:.0f} GFLOP/s (this machine's fp32 product) "
          f"= **{floor:.2f} s/step**\n")
    print(events.table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
