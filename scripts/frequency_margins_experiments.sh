#!/usr/bin/env bash
# The experiments of "Hold me tight!" on Fashion-MNIST with the five LeNet models
# of scripts/lenet_experiment_models.sh (standard, DCT-flipped data, low-passed
# data, L2 PGD, L2 PGD on DCT-flipped data), and on its synthetic data (two LeNets
# trained on images whose class information lies in the lowest and in the highest
# DCT block only, --data synthetic-subspace:0 and :20). Each
# runs/frequency-margins/NAME/ gets margins/ (100 test samples, 21 DCT subspaces
# 8×8 step 1: JSON, CSV, SVG). Reruns reuse finished training. ~25 minutes on
# 2 cores (PGD training is most of it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lenet_experiment_models.sh

for name in "${experiment_names[@]}"; do
  train_experiment_model "$name"
  "$robustlens" margins --model "$models/$name/model.pt" --transform "$(transform_of "$name")" --samples 100 --seed 0 \
      --out "$models/$name/margins"
done

# Synthetic data: AdamW, because SGD at lr 0.1 stays at chance on these nearly flat images.
for start in 0 20; do
  name=synthetic-$start
  "$robustlens" train --arch lenet --epochs 3 --optimizer adamw --lr 0.001 --data "synthetic-subspace:$start" \
      --out "$models/$name"
  "$robustlens" margins --model "$models/$name/model.pt" --data "synthetic-subspace:$start" --samples 100 --seed 0 \
      --out "$models/$name/margins"
done
