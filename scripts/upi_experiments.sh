#!/usr/bin/env bash
# Universal perturbations of interpretations on Fashion-MNIST, default settings
# (1,000 attack images from the training split, 500 test images, eps 0.5, 1,
# 2, 20 UPI-Grad passes), saliency maps, for:
#   runs/upi/mlp      an MLP (3 epochs), trained here
#   runs/upi/lenet    the standard LeNet of scripts/lenet_experiment_models.sh
# Reruns reuse finished training. ~5 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lenet_experiment_models.sh

"$robustlens" train --arch mlp --epochs 3 --out runs/upi/mlp-model
"$robustlens" upi --model runs/upi/mlp-model/model.pt --seed 0 --out runs/upi/mlp
train_experiment_model standard
"$robustlens" upi --model "$models/standard/model.pt" --seed 0 --out runs/upi/lenet
