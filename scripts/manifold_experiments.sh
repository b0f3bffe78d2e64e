#!/usr/bin/env bash
# Off-manifold robustness and gradient alignment on Fashion-MNIST (the results
# in docs/manifold-and-alignment.md). Two gradient-norm sweeps of LeNets
# (3 epochs each, AdamW):
#   runs/manifold/        distractor data (56×28: the item in a random half, a
#                         fixed "A" in the other): lambda 0.001 to 100, one per
#                         decade, 3 seeds each; the glyph half is exactly off
#                         the manifold
#   runs/fashion-mnist/   plain Fashion-MNIST: lambda 0.001 to 100, two per
#                         decade, one seed
# Each folder holds its generative models (vae: k = 16 for the tangent spaces;
# denoiser, denoiser-uncond: the class-conditional and unconditional score),
# the sweep (sweep-gradnorm, measured against the unconditional score: the
# reference's pairing) and every model's alignment with the conditional score
# (strength-*/.../align-conditional). runs/manifold/lambda-0.001 and
# lambda-10 hold the full manifold and align reports of two distractor models.
# Reruns reuse finished training (checkpoints, and generative models already
# written). Threads: $THREADS (default 2). About 2.5 hours on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
robustlens=${ROBUSTLENS:-${ROBUSTLENS_BUILD_DIR:-build}/tools/robustlens/robustlens}
threads="--threads ${THREADS:-2}"
recipe="--arch lenet --objective gradnorm --epochs 3 --optimizer adamw --lr 0.001"

# A generative model is trained only when its file is missing.
train_once() {
  local file=$1; shift
  [ -f "$file" ] || "$robustlens" "$@" $threads --out "$(dirname "$file")"
}

for setting in distractor plain; do
  if [ "$setting" = distractor ]; then
    data="--data distractor:fashion-mnist"; out=runs/manifold; strengths="--strengths 0.001,0.01,0.1,1,10,100 --seeds 3"
  else
    data="--data fashion-mnist"; out=runs/fashion-mnist; strengths="--min 0.001 --max 100 --count 11"
  fi
  train_once "$out/vae/vae.pt" train-vae $data --epochs 4
  train_once "$out/denoiser/denoiser.pt" train-denoiser $data --epochs 3
  train_once "$out/denoiser-uncond/denoiser.pt" train-denoiser $data --epochs 3 --unconditional
  "$robustlens" sweep $data $threads $recipe $strengths \
    --vae "$out/vae/vae.pt" --denoiser "$out/denoiser-uncond/denoiser.pt" --out "$out/sweep-gradnorm"
  # Every model against the class-conditional score too.
  find "$out/sweep-gradnorm" -name model.pt | sort | while read -r model; do
    "$robustlens" align $data $threads --model "$model" --denoiser "$out/denoiser/denoiser.pt" --samples 500 \
      --figure-images 0 --out "$(dirname "$model")/align-conditional" | grep cosine
  done
done

for pair in 0.001:0 10:4; do
  model="runs/manifold/sweep-gradnorm/strength-${pair##*:}/seed-0/model.pt"
  report="runs/manifold/lambda-${pair%%:*}"
  "$robustlens" manifold --data distractor:fashion-mnist $threads --model "$model" --vae runs/manifold/vae/vae.pt \
    --out "$report"
  "$robustlens" align --data distractor:fashion-mnist $threads --model "$model" \
    --denoiser runs/manifold/denoiser-uncond/denoiser.pt --out "$report/align"
done
