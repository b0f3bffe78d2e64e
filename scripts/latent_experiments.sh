#!/usr/bin/env bash
# Latent binary encoding on Fashion-MNIST (the results in
# docs/latent-binary-encoding.md): LeNets with the same backbone and recipe
# (20 epochs, AdamW, output layer held at the base learning rate, the latent
# penalty of binenc and wide growing ×2 per epoch from 0.01 to 300), one per
# head for seed 0, and nopen and binenc again for seeds 1 and 2; then
# `robustlens latent` on each seed's models into runs/latent/seed-S/report.
# With REFERENCE=path/to/a/checkout/of/luigisbailo/binary_encoding the
# numbers of seed 0 are recomputed with the reference code
# (scripts/latent_reference_check.py; needs Debian's python3-sklearn).
# Reruns reuse finished training. Threads: $THREADS (default 2). About 25
# minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
robustlens=${ROBUSTLENS:-${ROBUSTLENS_BUILD_DIR:-build}/tools/robustlens/robustlens}
threads="--threads ${THREADS:-2}"
recipe="--arch lenet --epochs 20 --optimizer adamw --lr 0.001 --hold-output-lr --gamma0 0.01 --gamma-factor 2 --gamma-max 300"

for seed in 0 1 2; do
  heads="nopen binenc"
  [ "$seed" = 0 ] && heads="nopen binenc linpen nonlinpen wide"
  models=()
  for head in $heads; do
    "$robustlens" train $recipe --head "$head" --seed "$seed" $threads --out "runs/latent/seed-$seed/$head" | grep -v '^epoch'
    models+=(--model "runs/latent/seed-$seed/$head/model.pt")
  done
  "$robustlens" latent "${models[@]}" --seed "$seed" $threads --save-latents --out "runs/latent/seed-$seed/report"
done

if [ -n "${REFERENCE:-}" ]; then
  /usr/bin/python3 scripts/latent_reference_check.py "$REFERENCE" runs/latent/seed-0/report
fi
