#!/usr/bin/env bash
# One device call (<= 10 min on one H100): GPU benchmarks, then as much of Table 1 at paper sizes as
# fits, all rows concurrently. Run from the repository root with the paper data in shared/data or
# $DEMVAE_DATA; writes everything under ${OUT:-runs/gpu}.
#   bash benchmarks/gpu_reproduce.sh
set -euo pipefail
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-runs/gpu}
DATA=${DEMVAE_DATA:-shared/data}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
timeout 120 python3 benchmarks/train_throughput.py --data-dir "$DATA" --steps 50 | tee "$OUT/train_throughput.md"
timeout 90 python3 benchmarks/is_nll.py --loop-sentences 10 --rows-per-step 32768 | tee "$OUT/is_nll.md"
# Table 1 at paper sizes (GRU 512, V = 10k, S = 20, batch 30), bf16, a shortened step budget: the
# original reaches its best validation ELBO at step ~4,000 (shared/docs/performance-anchors.md).
start=$(date +%s)
timeout 330 python3 -m demvae.cli reproduce ptb-table1 --scale paper --jobs 12 --device cuda \
  --data-dir "$DATA" --out "$OUT/table1" \
  --set train.max_steps=3000 --set train.eval_every=1000 --set train.amp=true | tee "$OUT/table1.md" || true
echo "table 1 wall time: $(( $(date +%s) - start )) s" | tee -a "$OUT/table1.md"
