#!/usr/bin/env bash
# The main job: sets everything up, trains four LeNets on Fashion-MNIST into
# runs/trio/ and audits them into one self-contained report, report/index.html
# (every number in report/audit.json). Each differs in one factor from the one
# it is compared with (the report lists the differences):
#   standard     SGD, 3 epochs
#   pgd-l2       the same recipe, L2-PGD adversarial training (the objective;
#                5 PGD steps: as robust as 10 at half the time, README)
#   nopen-adamw  AdamW, 20 epochs: the BinEnc recipe without its head
#   binenc       the same recipe, the BinEnc bottleneck with its growing
#                latent penalty (the head)
# A second run reuses what the first trained and analysed: training resumes
# from its checkpoints, the audit skips its finished steps.
# THREADS (default 0 = all cores) sets the CPU threads.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
robustlens=${ROBUSTLENS_BUILD_DIR:-build}/tools/robustlens/robustlens
threads=(--threads "${THREADS:-0}")

"$robustlens" train --arch lenet --epochs 3 "${threads[@]}" --out runs/trio/standard
"$robustlens" train --arch lenet --epochs 3 --objective pgd-l2 --eps 2 --pgd-steps 5 "${threads[@]}" --out runs/trio/pgd-l2
binenc_recipe=(--epochs 20 --optimizer adamw --lr 0.001 --hold-output-lr)
"$robustlens" train --arch lenet --head nopen "${binenc_recipe[@]}" "${threads[@]}" --out runs/trio/nopen-adamw
"$robustlens" train --arch lenet --head binenc "${binenc_recipe[@]}" --gamma0 0.01 --gamma-factor 2 --gamma-max 300 \
  "${threads[@]}" --out runs/trio/binenc
"$robustlens" audit --fit-generative "${threads[@]}" --out report \
  --model runs/trio/standard/model.pt --model runs/trio/pgd-l2/model.pt \
  --model runs/trio/nopen-adamw/model.pt --model runs/trio/binenc/model.pt
