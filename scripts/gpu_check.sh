#!/usr/bin/env bash
# The GPU check, in one call on a machine with CUDA (about 10 minutes on one GPU):
#   1. the CUDA tests (tests/test_devices.py);
#   2. a full split-MNIST BI-R run (gmm) on the device, timed;
#   3. the split CIFAR-100 timing of scripts/bench.py (cifar100) on the device (feature cache on and off, fp32, bf16);
#   4. four split-MNIST BI-R runs sharing the device at once (seeds 1-4), timed: runs per hour against step 2's.
# Results go to $OUT (default gpu_check/): summary.txt, the runs' result.json files, bench_cifar100.json.
#
#   bash scripts/gpu_check.sh                                   # on the GPU machine, from the repository root
#   DEVICE=cpu RUN_ARGS="--set iterations_per_experience=3" CIFAR_ARGS="--iterations 2 --train-per-class 10 \
#     --test-per-class 4 --methods bir --precisions fp32" bash scripts/gpu_check.sh   # every step, tiny, on a CPU
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE="${DEVICE:-cuda}"
OUT="${OUT:-gpu_check}"
PYTHON="${PYTHON:-.venv/bin/python}"
RUN_ARGS="${RUN_ARGS:-}"
CIFAR_ARGS="${CIFAR_ARGS:---iterations 50}"
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
say() { echo "$*" | tee -a "$SUMMARY"; }
now() { "$PYTHON" -c "import time; print(time.time())"; }
calc() { "$PYTHON" -c "print($1)"; }

say "device: $DEVICE ($("$PYTHON" -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA')"))"

"$PYTHON" -m pytest -q -p no:cacheprovider tests/test_devices.py 2>&1 | tail -n 1 | sed 's/^/tests\/test_devices.py: /' | tee -a "$SUMMARY"

run() {  # run SEED FOLDER: one split-MNIST BI-R run (the default config) on the device
  # shellcheck disable=SC2086
  "$PYTHON" -m replay.bench.cli run --device "$DEVICE" --seed "$1" --out "$2" --overwrite --set progress=false $RUN_ARGS \
    > "$2.log" 2>&1
}

start=$(now)
run 0 "$OUT/bir_seed0"
single=$(calc "round($(now) - $start, 1)")
say "split MNIST BI-R, one run: $single s, $("$PYTHON" -c "import json; r = json.load(open('$OUT/bir_seed0/result.json')); print(f\"final average accuracy {r['final_average_accuracy']:.4f}, {r['iterations_per_second']:.1f} it/s\")")"

# shellcheck disable=SC2086
"$PYTHON" -m scripts.bench cifar100 --device "$DEVICE" --out "$OUT/bench_cifar100.json" $CIFAR_ARGS 2>&1 | tee -a "$SUMMARY"

start=$(now)
for seed in 1 2 3 4; do run "$seed" "$OUT/bir_seed$seed" & done
wait
together=$(calc "round($(now) - $start, 1)")
say "split MNIST BI-R, four runs at once: $together s; runs per hour $(calc "round(4 * 3600 / $together)") against $(calc "round(3600 / $single)") one at a time"
