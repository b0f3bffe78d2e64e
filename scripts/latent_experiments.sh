#!/usr/bin/env bash
# Latent binary encoding on Fashion-MNIST (the results in
# docs/latent-binary-encoding.md): LeNets with the same backbone and recipe
# (AdamW, output layer held at the base learning rate, the latent penalty of
# binenc and wide growing ×2 per epoch from 0.01 to 300), one per head and
# seed; then `robustlens latent` on each seed's models.
#
#   scripts/latent_experiments.sh
#       binenc vs nopen, 40 epochs, seeds 0, 1, 2 (the three-seed table;
#       about 35 minutes on 2 cores)
#   EPOCHS=20 SEEDS=0 HEADS="nopen binenc linpen nonlinpen wide" scripts/latent_experiments.sh
#       every head, 20 epochs, seed 0 (the five-head table; about 15 minutes)
#
# EPOCHS (default 40), SEEDS (default "0 1 2"), HEADS (default "nopen binenc"),
# THREADS (default 2). Models go to runs/latent/eEPOCHS/seed-S/HEAD, the
# measures to runs/latent/eEPOCHS/seed-S/report. Reruns reuse finished
# training (each epoch count has its own folders: train resumes from its
# checkpoint only with the same recipe). With
# REFERENCE=path/to/a/checkout/of/luigisbailo/binary_encoding the numbers of
# seed 0 are recomputed with the reference code
# (scripts/latent_reference_check.py; needs Debian's python3-sklearn); the
# reference check in the docs is of the five-head run.
set -euo pipefail
cd "$(dirname "$0")/.."
robustlens=${ROBUSTLENS:-${ROBUSTLENS_BUILD_DIR:-build}/tools/robustlens/robustlens}
threads="--threads ${THREADS:-2}"
epochs=${EPOCHS:-40}
seeds=${SEEDS:-0 1 2}
heads=${HEADS:-nopen binenc}
recipe="--arch lenet --epochs $epochs --optimizer adamw --lr 0.001 --hold-output-lr --gamma0 0.01 --gamma-factor 2 --gamma-max 300"
runs=runs/latent/e$epochs

for seed in $seeds; do
  models=()
  for head in $heads; do
    "$robustlens" train $recipe --head "$head" --seed "$seed" $threads --out "$runs/seed-$seed/$head" | grep -v '^epoch'
    models+=(--model "$runs/seed-$seed/$head/model.pt")
  done
  "$robustlens" latent "${models[@]}" --seed "$seed" $threads --save-latents --out "$runs/seed-$seed/report"
done

if [ -n "${REFERENCE:-}" ]; then
  /usr/bin/python3 scripts/latent_reference_check.py "$REFERENCE" "$runs/seed-0/report"
fi
