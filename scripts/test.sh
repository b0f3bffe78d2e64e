#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh), installs Chromium for the report test,
# and runs the whole test suite with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh "$@"
# The report test opens the audit report in Debian's headless Chromium.
if ! command -v chromium >/dev/null 2>&1; then
  echo "test: installing chromium (for the report test)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
cd "${ROBUSTLENS_BUILD_DIR:-build}"
ctest --output-on-failure --parallel "$(nproc)"
