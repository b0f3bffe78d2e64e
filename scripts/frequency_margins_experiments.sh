#!/usr/bin/env bash
# The experiments of "Hold me tight!" on Fashion-MNIST with the four LeNet models
# of scripts/lenet_experiment_models.sh (standard, DCT-flipped data, low-passed
# data, L2 PGD). Each runs/frequency-margins/NAME/ gets margins/ (100 test
# samples, 21 DCT subspaces 8×8 step 1: JSON, CSV, SVG). Reruns reuse finished
# training. ~15 minutes on 2 cores (PGD training is most of it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lenet_experiment_models.sh

for name in "${experiment_names[@]}"; do
  train_experiment_model "$name"
  "$robustlens" margins --model "$models/$name/model.pt" --transform "$(transform_of "$name")" --samples 100 --seed 0 \
      --out "$models/$name/margins"
done
