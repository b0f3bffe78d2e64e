#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks (apt-get; nothing else is
# downloaded), then configures and builds robustlens into ./build.
# Idempotent: a second run installs nothing and rebuilds only what changed.
# Extra arguments go to CMake, e.g. -DCMAKE_PREFIX_PATH=/path/to/libtorch.
set -euo pipefail
cd "$(dirname "$0")/.."

# libgloo-dev: the headers of c10d's Gloo process group (robustlens/core/distributed.h), for torchrun.
# clang-format: the code's format (.clang-format), which a test checks.
# libopenblas0-openmp: Debian's LibTorch otherwise runs its matrix products on the
# reference BLAS (measured: see docs/benchmarks.md); the OpenMP build shares
# LibTorch's thread pool instead of oversubscribing the cores.
# pybind11-dev, python3-dev, python3-pytest: the Python module (python/) and its tests; python3-tqdm its progress
# bars, python3-matplotlib the example notebook (examples/), python3-pip and python3-venv the test of
# `pip install .` (tests/python/test_pip_install.py).
packages=(g++ cmake ninja-build ccache pkg-config libtorch-dev libcli11-dev nlohmann-json3-dev libstb-dev
          zlib1g-dev libgtest-dev libgloo-dev dataset-fashion-mnist python3-torch
          libopenblas0-openmp clang-format pybind11-dev python3-dev python3-pytest python3-tqdm python3-matplotlib
          python3-pip python3-venv)
# Node.js and npm install the report's charting scripts (robustlens/report/web);
# a Node.js from elsewhere (with its own npm) is used as it is.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Vega, Vega-Lite and vega-embed, pinned by package-lock.json, inlined into every
# audit report. Reinstalled only when the lock file is newer than the install.
web=robustlens/report/web
if [ ! -f "$web/node_modules/.package-lock.json" ] || [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
  echo "setup: installing the report's scripts (npm ci in $web)"
  (cd "$web" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null)
fi

build_dir=${ROBUSTLENS_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build_dir" --parallel "$(nproc)"

# `import robustlens` in /usr/bin/python3 (Debian's, with python3-torch): a .pth file in its site-packages puts this
# build's python/ folder on its path, as `pip install -e` would (the last checkout set up wins).
site=$(/usr/bin/python3 -c 'import site; print(site.getsitepackages()[0])')
pth="$site/robustlens.pth"
target="$(pwd)/$build_dir/python"
if [ "$(cat "$pth" 2>/dev/null)" != "$target" ]; then
  $sudo mkdir -p "$site"
  echo "$target" | $sudo tee "$pth" >/dev/null
  echo "setup: /usr/bin/python3 imports robustlens from $target"
fi
