#!/usr/bin/env bash
# Off-manifold robustness and gradient alignment on Fashion-MNIST with a
# distractor (56×28: the item in a random half, a fixed "A" in the other):
#   runs/manifold/vae          a VAE (k = 16, 4 epochs) for the tangent spaces
#   runs/manifold/denoiser     a class-conditional denoiser (2 epochs on 20,000 images) for the data score
#   runs/manifold/sweep-noise  LeNets trained with Gaussian noise of 6 strengths
#                              (sigma 0.01 to 3, 2 epochs on 20,000 images each)
#   runs/manifold/standard, runs/manifold/smoothed
#                              the full manifold and align reports of the
#                              weakest and of the sigma = 0.30 model
# Reruns reuse finished classifier training (checkpoints). Threads: $THREADS (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
robustlens=${ROBUSTLENS:-${ROBUSTLENS_BUILD_DIR:-build}/tools/robustlens/robustlens}
data="--data distractor:fashion-mnist --threads ${THREADS:-1}"
out=runs/manifold

"$robustlens" train-vae $data --epochs 4 --out "$out/vae"
"$robustlens" train-denoiser $data --epochs 2 --samples 20000 --out "$out/denoiser"
"$robustlens" sweep $data --arch lenet --objective noise --min 0.01 --max 3 --count 6 --epochs 2 --samples 20000 \
  --vae "$out/vae/vae.pt" --denoiser "$out/denoiser/denoiser.pt" --out "$out/sweep-noise"
for pair in standard:0 smoothed:3; do
  name=${pair%%:*}
  model="$out/sweep-noise/strength-${pair##*:}/model.pt"
  "$robustlens" manifold $data --model "$model" --vae "$out/vae/vae.pt" --out "$out/$name"
  "$robustlens" align $data --model "$model" --denoiser "$out/denoiser/denoiser.pt" --out "$out/$name/align"
done
