#!/usr/bin/env bash
# Out-of-distribution detection from the latent code on Fashion-MNIST (the results in
# docs/latent-binary-encoding.md#out-of-distribution-detection): LeNets trained without two classes (8 Bag and
# 9 Ankle boot) with scripts/latent_experiments.sh's recipe at 20 epochs, binenc and nopen, seeds 0, 1, 2; then
# `robustlens latent` on each seed's pair with six OOD sets: the held-out classes' test images, the test images
# under three strong corruptions (contrast, impulse noise and brightness at severity 5, which the models never
# saw), and the distractor glyph (an "A"), as it is and randomly warped (elastic, severity 1). About 15 minutes on
# 2 cores.
# SEEDS (default "0 1 2"), EXCLUDE (default 8,9), THREADS (default 2). Models go to runs/ood/seed-S/HEAD, the
# measures to runs/ood/seed-S/report. Reruns reuse finished training.
set -euo pipefail
cd "$(dirname "$0")/.."
robustlens=${ROBUSTLENS:-${ROBUSTLENS_BUILD_DIR:-build}/tools/robustlens/robustlens}
threads="--threads ${THREADS:-2}"
exclude="--exclude-classes ${EXCLUDE:-8,9}"
recipe="--arch lenet --epochs 20 --optimizer adamw --lr 0.001 --hold-output-lr --gamma0 0.01 --gamma-factor 2 --gamma-max 300"
sets=(--ood held-out)
for corruption in contrast:5 impulse-noise:5 brightness:5; do sets+=(--ood "fashion-mnist+corrupt:$corruption"); done
sets+=(--ood glyphs --ood glyphs+corrupt:elastic:1)

for seed in ${SEEDS:-0 1 2}; do
  models=()
  for head in nopen binenc; do
    "$robustlens" train $recipe $exclude --head "$head" --seed "$seed" $threads --out "runs/ood/seed-$seed/$head" |
      grep -v '^epoch'
    models+=(--model "runs/ood/seed-$seed/$head/model.pt")
  done
  "$robustlens" latent "${models[@]}" $exclude "${sets[@]}" --samples 2000 --train-samples 10000 --deepfool-samples 0 \
    --seed "$seed" $threads --out "runs/ood/seed-$seed/report"
done
