#!/usr/bin/env bash
# Off-manifold robustness and gradient alignment on Fashion-MNIST (the results
# in docs/manifold-and-alignment.md):
#   runs/manifold/vae, denoiser, denoiser-uncond
#       the generative models of the distractor data (56×28: the item in a
#       random half, a fixed "A" in the other): a VAE (k = 16) for the tangent
#       spaces, a class-conditional and an unconditional denoiser for the score
#   runs/manifold/sweep-gradnorm
#       11 LeNets trained with a gradient-norm penalty, lambda 0.001 to 100
#       (3 epochs each, AdamW), each measured on and off the manifold and for
#       alignment with the unconditional score (the reference's pairing)
#   runs/manifold/{weak,aligned,excessive}
#       the full manifold and align reports of three of them, the conditional
#       pairing included
#   runs/fashion-mnist/...
#       the same sweep on plain Fashion-MNIST (28×28, no distractor)
# Reruns reuse finished training (checkpoints). Threads: $THREADS (default 2).
# About 2 hours on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
robustlens=${ROBUSTLENS:-${ROBUSTLENS_BUILD_DIR:-build}/tools/robustlens/robustlens}
threads="--threads ${THREADS:-2}"
sweep_recipe="--arch lenet --objective gradnorm --epochs 3 --optimizer adamw --lr 0.001"

# Generative models are retrained only when their file is missing.
train_once() {
  local file=$1; shift
  [ -f "$file" ] || "$robustlens" "$@" $threads --out "$(dirname "$file")"
}

for setting in distractor plain; do
  if [ "$setting" = distractor ]; then
    data="--data distractor:fashion-mnist"; out=runs/manifold; strengths="--min 0.001 --max 100 --count 11"
  else
    data="--data fashion-mnist"; out=runs/fashion-mnist; strengths="--min 0.001 --max 100 --count 11"
  fi
  train_once "$out/vae/vae.pt" train-vae $data --epochs 4
  train_once "$out/denoiser/denoiser.pt" train-denoiser $data --epochs 3
  train_once "$out/denoiser-uncond/denoiser.pt" train-denoiser $data --epochs 3 --unconditional
  "$robustlens" sweep $data $threads $sweep_recipe $strengths \
    --vae "$out/vae/vae.pt" --denoiser "$out/denoiser-uncond/denoiser.pt" --out "$out/sweep-gradnorm"
  # Every model against the class-conditional score too.
  for model in "$out"/sweep-gradnorm/strength-*/model.pt; do
    "$robustlens" align $data $threads --model "$model" --denoiser "$out/denoiser/denoiser.pt" --samples 500 \
      --out "$(dirname "$model")/align-conditional" | tail -n 2 | head -n 1
  done
done

for pair in weak:0 aligned:5 excessive:10; do
  name=${pair%%:*}
  model="runs/manifold/sweep-gradnorm/strength-${pair##*:}/model.pt"
  "$robustlens" manifold --data distractor:fashion-mnist $threads --model "$model" --vae runs/manifold/vae/vae.pt \
    --out "runs/manifold/$name"
  "$robustlens" align --data distractor:fashion-mnist $threads --model "$model" \
    --denoiser runs/manifold/denoiser-uncond/denoiser.pt --out "runs/manifold/$name/align"
done
