#!/usr/bin/env bash
# The main job: sets everything up, trains the default model (LeNet, 3 epochs)
# on Fashion-MNIST into runs/lenet and evaluates it on the test split.
# A second run reuses the finished training (it resumes from its checkpoint).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
robustlens=${ROBUSTLENS_BUILD_DIR:-build}/tools/robustlens/robustlens
"$robustlens" train --data fashion-mnist --arch lenet --epochs 3 --out runs/lenet
"$robustlens" eval --data fashion-mnist --model runs/lenet/model.pt --out runs/lenet/eval
