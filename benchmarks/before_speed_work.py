"""The anchor on *this* machine: the project before its speed work (commit 4467e35), timed as the issue timed it.

The original DEM-VAE code is not run here. On the machine where it was measured side by side, it took 1.62× the
training time and 1.58× the IS-NLL time of this project at commit 4467e35 (``../shared/docs/performance-anchors.md``:
5.90 vs 3.64 s/step, 1.53 vs 0.97 s/sentence). Timing 4467e35 here, interleaved with ``speed_table.py``, carries
that anchor to whatever machine runs it:

    git worktree add --detach ../before 4467e35
    python3 benchmarks/before_speed_work.py --tree ../before --data-dir DATA [--steps 10] [--is-sentences 10]

Prints one JSON line: training (random batches, the paper's PTB DGM-VAE configuration, fp32) and IS-NLL (500
samples, one sentence at a time: that commit's fastest), each with its peak RSS (run the two in separate processes
with ``--only`` for separate peaks).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tree", required=True, help="a checkout of commit 4467e35")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--is-sentences", type=int, default=10)
    ap.add_argument("--is-samples", type=int, default=500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", choices=["train", "is_nll"])
    args = ap.parse_args()
    tree = Path(args.tree).resolve()
    sys.path[:0] = [str(tree / "src"), str(tree / "benchmarks")]
    import torch
    import train_throughput  # the old commit's benchmark module

    from demvae.config import DataConfig
    from demvae.data.batching import EncodedSplit
    from demvae.data.prepare import prepare
    from demvae.evaluation.likelihood import log_likelihoods
    from demvae.models import build_model
    from demvae.runs import compose

    torch.set_num_threads(args.threads)
    out = {"tree": str(tree), "threads": args.threads}
    data = prepare(DataConfig(corpus="ptb", data_dir=args.data_dir))
    if args.only in (None, "train"):
        r = train_throughput.measure(data.splits["train"], 30, 20, args.steps, torch.device("cpu"), bucketed=False,
                                     vocab=len(data.vocab))
        out["train"] = {**r, "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    if args.only in (None, "is_nll"):
        test = data.splits["test"]
        n = args.is_sentences
        split = EncodedSplit(test.ids[:n], test.lengths[:n], {}, 0, test.max_len)
        torch.manual_seed(0)
        model = build_model(compose("dgm-vae").model, len(data.vocab), 2, 3).eval()
        log_likelihoods(model, EncodedSplit(split.ids[:1], split.lengths[:1], {}, 0, test.max_len), 2, 8192,
                        sentences_per_batch=1)  # warm-up
        t = time.perf_counter()
        log_likelihoods(model, split, args.is_samples, 8192, sentences_per_batch=1)
        out["is_nll"] = {"s_per_sentence": (time.perf_counter() - t) / n,
                         "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
