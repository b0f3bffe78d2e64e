#!/usr/bin/env bash
# Common corruptions on Fashion-MNIST (the results in docs/corruptions.md): the accuracy of the plain
# Fashion-MNIST robust-training sweeps of scripts/manifold_experiments.sh (SETTINGS=plain; gradient-norm penalty
# and Gaussian noise, 6 strengths × 3 seeds each) under the ten corruptions at five severities, mCE against the
# weakest model of each sweep, and I-ASIDE's validation: Spearman's correlation of every model's spectral
# robustness score with its accuracy under corruptions and with the drop from its clean accuracy. Writes
# runs/corruptions/sweep-OBJECTIVE. Needs the sweeps (about an hour: SETTINGS=plain SEEDS=3
# scripts/manifold_experiments.sh); each sweep's 18 models then take about 3 minutes on 2 threads.
set -euo pipefail
cd "$(dirname "$0")/.."
robustlens=${ROBUSTLENS:-${ROBUSTLENS_BUILD_DIR:-build}/tools/robustlens/robustlens}
for objective in ${OBJECTIVES:-gradnorm noise}; do
  sweep=runs/fashion-mnist/sweep-$objective
  models=()
  for model in "$sweep"/strength-*/seed-*/model.pt; do
    [ -f "$model" ] || { echo "no models in $sweep: run SETTINGS=plain scripts/manifold_experiments.sh first" >&2; exit 2; }
    name=$(echo "$model" | sed -E 's|.*strength-([0-9]+)/seed-([0-9]+)/.*|s\1-\2|')
    models+=(--model "$model" --name "$name")
  done
  "$robustlens" corruptions "${models[@]}" --samples 1000 --spectral-samples 200 --threads "${THREADS:-2}" \
    --out "runs/corruptions/sweep-$objective"
done
