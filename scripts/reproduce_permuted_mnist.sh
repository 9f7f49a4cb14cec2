#!/usr/bin/env bash
# Permuted MNIST, class-incremental (10 experiences x 2000 iterations, batch 256, Adam 1e-4, MLP 2000-2000 on
# 32x32 inputs, latent 100), 3 seeds each: the runs the GR and BI-R issues ask for. Resumable: rerun to continue.
# One GR iteration costs about 60 GFLOP, so a run takes about 1.5 h on our 2-core CPU machines; on a GPU:
#   DEVICE=cuda bash scripts/reproduce_permuted_mnist.sh
# Extra arguments go to every run, e.g. --set precision=bf16.
set -euo pipefail
cd "$(dirname "$0")/.."
O=(--out runs/permuted_mnist --seeds 0 1 2 --set "device=${DEVICE:-cpu}" "$@")
grid() { python scripts/run_grid.py "$@" "${O[@]}"; }
grid configs/permuted_mnist/gr_gaussian.yaml
grid configs/permuted_mnist/gr_binarized_gaussian.yaml                                   # r = 0.0002 (seed 000)
grid configs/permuted_mnist/gr_binarized_gaussian.yaml --set prior.r=0.01 --tag r0.01
grid configs/permuted_mnist/bir_gmm.yaml
grid configs/permuted_mnist/bir_binarized_gmm.yaml                                       # r = 0.01 (seed 000)
grid configs/permuted_mnist/bir_binarized_gmm.yaml --set prior.r=0.002 --tag r0.002
python -m replay.bench.cli compare runs/permuted_mnist/*/seed*/result.json
