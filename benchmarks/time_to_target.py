"""Wall time until the validation −ELBO first reaches a target (PTB DGM-VAE, β = 0.8; target 128 nats).

    PYTHONPATH=src python3 benchmarks/time_to_target.py --data-dir DIR [--target 128] [--eval-every 250]
        [--max-minutes 60] [--threads 2] [--precision auto] [--device auto] [--set KEY=VALUE ...] [--quick]

Trains the paper's configuration (``configs/ptb/dgm-vae.yaml``: batch 30, S = 20, GRU 512, 20 × 5 codes,
V = 10,002, as ``speed_table.py``) with the project's trainer in ``--precision`` (default ``auto``, the
trainer's default: bf16 where the device has bf16 matrix units, else fp32), validating every
``--eval-every`` steps, and prints one markdown table: step, wall seconds since the first step
(validations included, data preparation and model building not) and validation −ELBO, then the time
at which the target was first reached (or the best value, if ``--max-minutes`` or ``--max-steps`` ran
out first). The original code reaches 127.97 at step 4,000: ≈ 2.5 min on one H100, ≈ 6.8 h on 2 CPU
cores (shared/docs/performance-anchors.md). ``--quick``: the built-in corpus with a tiny model, a
functional check (no figure).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from demvae.config import merge, parse_overrides
from demvae.runs import compose
from demvae.training import Trainer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("DEMVAE_DATA"))
    ap.add_argument("--target", type=float, default=128.0)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--max-minutes", type=float, default=60.0, help="stop after the first validation past this")
    ap.add_argument("--max-steps", type=int, default=20_000)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default, every core)")
    ap.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                    help="train.amp: auto (the default), false (fp32) or true (bf16)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    ap.add_argument("--out", help="run folder (default: a temporary one)")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()

    amp = {"auto": "auto", "fp32": False, "bf16": True}[args.precision]
    if args.quick:
        args.eval_every = min(args.eval_every, 10)
        args.max_steps = min(args.max_steps, 4 * args.eval_every)
    overrides = {"train": {"eval_every": args.eval_every, "max_steps": args.max_steps, "device": args.device,
                           "progress": False, "log_every": args.eval_every, "threads": args.threads, "amp": amp}}
    if args.quick:
        overrides = merge(overrides, {
            "data": {"corpus": "builtin", "options": {"n_train": 300, "n_valid": 60, "n_test": 60}},
            "model": {"embed_dim": 16, "hidden_size": 16}, "train": {"batch_size": 16, "n_samples": 2}})
        config = None
    else:
        config = "ptb/dgm-vae"
        if args.data_dir:
            overrides = merge(overrides, {"data": {"data_dir": args.data_dir}})
    cfg = compose("dgm-vae", config, merge(overrides, parse_overrides(args.set)))
    max_seconds = 60 * args.max_minutes

    class TimedTrainer(Trainer):
        """Prints every validation's wall time and −ELBO; stops at the target or after ``--max-minutes``."""

        reached: tuple[int, float] | None = None

        def _after_validation(self, stats: dict[str, float]) -> None:
            super()._after_validation(stats)
            elapsed, value = time.perf_counter() - self.t0, self.state.history[-1]
            print(f"| {self.state.step} | {elapsed:.1f} | {value:.2f} |", flush=True)
            if value <= args.target:
                self.reached = (self.state.step, elapsed)
            if self.reached or elapsed > max_seconds:
                self.state.done = True

    with tempfile.TemporaryDirectory() as tmp:
        trainer = TimedTrainer(cfg, args.out or os.path.join(tmp, "run"))
        print(f"device: {trainer.device}, {torch.get_num_threads()} threads; precision {trainer.precision} "
              f"(train.amp: {str(cfg.train.amp).lower()}); data: {cfg.data.corpus}; batch {cfg.train.batch_size}, "
              f"S={cfg.train.n_samples}, GRU {cfg.model.hidden_size}, V={len(trainer.vocab)}; "
              f"target: validation −ELBO ≤ {args.target}\n")
        print("| step | wall time (s) | validation −ELBO |\n|---|---|---|")
        trainer.t0 = time.perf_counter()
        trainer.fit()
    st = trainer.state
    if trainer.reached:
        step, seconds = trainer.reached
        print(f"\ntarget reached at step {step} after {seconds:.1f} s ({seconds / 60:.1f} min)")
    else:
        print(f"\ntarget not reached after {time.perf_counter() - trainer.t0:.1f} s and {st.step} steps "
              f"(best {st.best:.2f} at step {st.best_step})")


if __name__ == "__main__":
    main()
