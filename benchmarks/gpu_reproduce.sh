#!/usr/bin/env bash
# GPU figures of issue 15, in stages that each fit one device call (<= 10 min on one H100); run from the
# repository root with the paper data in shared/data or $DEMVAE_DATA; writes markdown under ${OUT:-results/gpu}.
#   bash benchmarks/gpu_reproduce.sh [speed] [target] [table1]      (no argument: all three)
# speed:  throughput and peak memory (torch.cuda.max_memory_allocated) at the paper configuration, fp32 and
#         bf16, bucketed and random batches, both decoder recurrences (nn.GRU/cuDNN, the default on a GPU, and
#         the shared input projection), a GPU-sized bf16 configuration, IS-NLL on the whole PTB test set
# target: wall time to validation -ELBO <= 128 (PTB DGM-VAE, beta = 0.8, validation every 250 steps)
# table1: as much of Table 1 at paper sizes as fits, all rows concurrently, and its wall time
# QUICK=1 runs every stage at tiny sizes on the CPU (a check of the script, no figure); without the paper data
# the speed stage uses PTB-shaped random sentences and the table1 stage the built-in corpus.
# Every stage trains in the default precision, train.amp: auto (bf16 on a GPU of compute capability >= 8; on a
# CPU without bf16 units, as QUICK=1 runs, fp32).
set -euo pipefail
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-results/gpu}
DATA=${DEMVAE_DATA:-shared/data}
STAGES=${*:-speed target table1}
PY=${PYTHON:-python3}
QUICK=${QUICK:-}
TINY=${QUICK:+--quick}
SCALE=paper JOBS=12 DEVICE=cuda BUDGET="max_steps=3000 eval_every=1000"
[ -n "$QUICK" ] && SCALE=smoke JOBS=1 DEVICE=cpu BUDGET="max_steps=4 eval_every=2"
if [ -d "$DATA" ]; then DATA_ARGS=(--data-dir "$DATA"); CORPUS=(); else
  [ -n "$QUICK" ] || { echo "error: no paper data in $DATA (set DEMVAE_DATA)" >&2; exit 2; }
  DATA_ARGS=(); CORPUS=(--corpus builtin); fi
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv 2>&1 | tee "$OUT/gpu.txt" || true
for stage in $STAGES; do
  case $stage in
    speed)
      timeout 240 $PY benchmarks/speed_table.py "${DATA_ARGS[@]}" --steps 100 --warmup 10 --is-sentences 10 \
        --is-rows 32768 --recurrences gru,shared $TINY | tee "$OUT/speed_table.md"
      timeout 90 $PY benchmarks/speed_table.py "${DATA_ARGS[@]}" --steps 100 --warmup 10 --batch-size 240 \
        --precisions bf16 --batching bucketed --no-is-nll $TINY | tee "$OUT/speed_table_batch240.md"
      timeout 120 $PY benchmarks/speed_table.py "${DATA_ARGS[@]}" --no-training --is-sentences 100000 \
        --is-rows 65536 $TINY | tee "$OUT/is_nll_test_set.md" ;;
    target)
      timeout 300 $PY benchmarks/time_to_target.py "${DATA_ARGS[@]}" --eval-every 250 --max-minutes 4 \
        --set train.eval_batch_size=1000 $TINY | tee "$OUT/time_to_target.md" ;;
    table1)
      # Table 1 at paper sizes (GRU 512, V = 10k, S = 20, batch 30), a shortened step budget: the original
      # reaches its best validation ELBO at step ~4,000 (shared/docs/performance-anchors.md).
      start=$(date +%s)
      timeout 330 $PY -m demvae reproduce ptb-table1 --scale $SCALE --jobs $JOBS --device $DEVICE \
        "${DATA_ARGS[@]}" "${CORPUS[@]}" --out "$OUT/table1" $(printf -- '--set train.%s ' $BUDGET) | tee "$OUT/table1.md" || true
      echo "table 1 wall time: $(( $(date +%s) - start )) s" | tee -a "$OUT/table1.md" ;;
    *) echo "error: unknown stage '$stage' (speed, target, table1)" >&2; exit 2 ;;
  esac
done
