#!/usr/bin/env bash
# Spectral importance (I-ASIDE) of the standard and the L2-PGD LeNet of
# scripts/lenet_experiment_models.sh on 256 Fashion-MNIST test images, M = 8
# bands, the reference's settings (donor fill, modulus + min-max output), plus
# the spectral SNR of Gaussian noise, FGSM and PGD. Each
# runs/frequency-margins/NAME/ gets spectral/ (JSON, psi and SNR charts,
# coalition grid). Reruns reuse finished training (~12 minutes on 2 cores when
# nothing is trained yet, ~30 s otherwise). The flipped and low-pass models are
# left out: their transformed inputs leave [0,1], and coalition images are
# made in [0,1].
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lenet_experiment_models.sh

for name in standard pgd-l2; do
  train_experiment_model "$name"
  "$robustlens" spectral --model "$models/$name/model.pt" --samples 256 --seed 0 --per-class --out "$models/$name/spectral"
done
