#!/usr/bin/env bash
# Off-manifold robustness and gradient alignment on Fashion-MNIST (the results
# in docs/manifold-and-alignment.md). Robust-training sweeps of LeNets
# (3 epochs each, AdamW) in two settings:
#   runs/manifold/        distractor data (56×28: the item in a random half, a
#                         fixed "A" in the other); the glyph half is exactly off
#                         the manifold
#   runs/fashion-mnist/   plain Fashion-MNIST
# and two objectives: the gradient-norm penalty (lambda 0.001 to 100, one per
# decade) and Gaussian noise augmentation (sigma 0.01 to 3, two per decade).
# Each setting folder holds its generative models (vae: k = 16 for the tangent
# spaces; denoiser: class-conditional with label dropout, the score of both
# pairings), the sweeps (sweep-OBJECTIVE: first-order regimes, the bayes-pairing
# alignment, as in the audit, and its Spearman correlation with off-manifold
# robustness), and every model's conditional-pairing alignment
# (strength-*/.../align-conditional).
# SETTINGS (default "distractor plain"), OBJECTIVES (default "gradnorm noise")
# and SEEDS (default 3) select a part. Reruns reuse finished training
# (checkpoints, and generative models already written). Threads: $THREADS
# (default 2). All of it takes about 4 hours on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
robustlens=${ROBUSTLENS:-${ROBUSTLENS_BUILD_DIR:-build}/tools/robustlens/robustlens}
threads="--threads ${THREADS:-2}"
recipe="--arch lenet --epochs 3 --optimizer adamw --lr 0.001"

# A generative model is trained only when its file is missing.
train_once() {
  local file=$1; shift
  [ -f "$file" ] || "$robustlens" "$@" $threads --out "$(dirname "$file")"
}

for setting in ${SETTINGS:-distractor plain}; do
  if [ "$setting" = distractor ]; then
    data="--data distractor:fashion-mnist"; out=runs/manifold
  else
    data="--data fashion-mnist"; out=runs/fashion-mnist
  fi
  train_once "$out/vae/vae.pt" train-vae $data --epochs 4
  train_once "$out/denoiser/denoiser.pt" train-denoiser $data --epochs 5
  for objective in ${OBJECTIVES:-gradnorm noise}; do
    if [ "$objective" = gradnorm ]; then strengths="--strengths 0.001,0.01,0.1,1,10,100"
    else strengths="--strengths 0.01,0.03,0.1,0.3,1,3"; fi
    "$robustlens" sweep $data $threads $recipe --objective "$objective" $strengths --seeds "${SEEDS:-3}" \
      --pairing bayes --vae "$out/vae/vae.pt" --denoiser "$out/denoiser/denoiser.pt" --out "$out/sweep-$objective"
    # Every model against s(x, y) alone too.
    find "$out/sweep-$objective" -name model.pt | sort | while read -r model; do
      "$robustlens" align $data $threads --model "$model" --denoiser "$out/denoiser/denoiser.pt" --pairing conditional \
        --samples 500 --figure-images 0 --out "$(dirname "$model")/align-conditional" | grep "<- summary"
    done
  done
done
