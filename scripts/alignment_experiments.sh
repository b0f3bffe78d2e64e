#!/usr/bin/env bash
# Perceptually aligned gradients on Fashion-MNIST: the standard and the L2-PGD
# LeNet of the demo's trio (runs/trio, trained here if missing, same recipes)
# against the scores of label-dropout denoisers trained for 1, 3, 5 (the
# default) and 10 epochs with 16 channels (the default), and for 3 epochs with
# 32 (runs/alignment/denoiser-E-cC), with the conditional and the bayes
# pairings at every noise level, on the first 1000 test images. Prints one line
# per (denoiser, model, pairing) and writes each align record to
# runs/alignment/E-epochs-cC/MODEL-PAIRING/alignment.json (the results in
# docs/manifold-and-alignment.md). Reruns reuse what is trained.
# Threads: $THREADS (default 2). About 30 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
robustlens=${ROBUSTLENS:-${ROBUSTLENS_BUILD_DIR:-build}/tools/robustlens/robustlens}
threads="--threads ${THREADS:-2}"

[ -f runs/trio/standard/model.pt ] || "$robustlens" train --arch lenet --epochs 3 $threads --out runs/trio/standard
[ -f runs/trio/pgd-l2/model.pt ] || "$robustlens" train --arch lenet --epochs 3 --objective pgd-l2 --eps 2 $threads \
  --out runs/trio/pgd-l2

for variant in 1:16 3:16 5:16 10:16 3:32; do
  epochs=${variant%%:*} channels=${variant##*:}
  denoiser=runs/alignment/denoiser-$epochs-c$channels/denoiser.pt
  [ -f "$denoiser" ] || "$robustlens" train-denoiser --epochs "$epochs" --channels "$channels" $threads \
    --out "$(dirname "$denoiser")" | grep -A6 "denoising error"
  for model in standard pgd-l2; do
    for pairing in conditional bayes; do
      out=runs/alignment/$epochs-epochs-c$channels/$model-$pairing
      mkdir -p "$(dirname "$out")"
      "$robustlens" align --model runs/trio/$model/model.pt --denoiser "$denoiser" --pairing "$pairing" \
        --samples 1000 $threads --out "$out" > "$out.txt" 2>&1 || { cat "$out.txt"; exit 1; }
      printf '%2s epochs, %2s channels  %-8s %-12s' "$epochs" "$channels" "$model" "$pairing"
      /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print("  ".join("sigma %g: %.4f ± %.4f" % (l["sigma"], l["mean_cosine"], l["cosine_standard_error"]) for l in r["per_sigma"]))
' "$out/alignment.json"
    done
  done
done
