#!/usr/bin/env bash
# The emergence of the binary code over training on Fashion-MNIST (docs/latent-binary-encoding.md#emergence-over-training):
# the 20-epoch recipe of scripts/latent_experiments.sh, binenc and nopen, seed 0, with the latent code measured on
# 2,000 training images after every epoch (train --log-latent-every 1). About 5 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
robustlens=${ROBUSTLENS:-${ROBUSTLENS_BUILD_DIR:-build}/tools/robustlens/robustlens}
recipe="--arch lenet --epochs 20 --optimizer adamw --lr 0.001 --hold-output-lr --gamma0 0.01 --gamma-factor 2 --gamma-max 300"
for head in binenc nopen; do
  "$robustlens" train $recipe --head "$head" --seed 0 --log-latent-every 1 --threads "${THREADS:-2}" \
    --out "runs/emergence/$head"
done
