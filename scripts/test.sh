#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the whole test suite with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh "$@"
cd "${ROBUSTLENS_BUILD_DIR:-build}"
ctest --output-on-failure --parallel "$(nproc)"
