#!/usr/bin/env bash
# The experiments of "Hold me tight!" on Fashion-MNIST with LeNet (3 epochs):
# standard training, training on DCT-flipped data, on low-passed data (B = 14),
# and L2 PGD adversarial training (eps 2). For each, runs/frequency-margins/NAME/
# gets the model and margins/ (100 test samples, 21 DCT subspaces 8×8 step 1,
# JSON, CSV, SVG). Reruns reuse finished training. ~15 minutes on 2 cores
# (PGD training is most of it).
set -euo pipefail
cd "$(dirname "$0")/.."
robustlens=${ROBUSTLENS_BUILD_DIR:-build}/tools/robustlens/robustlens
out=runs/frequency-margins

experiment() {  # NAME TRANSFORM [training options...]
  local name=$1 transform=$2
  shift 2
  "$robustlens" train --arch lenet --epochs 3 --transform "$transform" --out "$out/$name" "$@"
  "$robustlens" margins --model "$out/$name/model.pt" --transform "$transform" --samples 100 --seed 0 \
      --out "$out/$name/margins"
}

experiment standard none
experiment flipped dct-flip
experiment low-pass low-pass:14
experiment pgd-l2 none --objective pgd-l2 --eps 2
