#!/usr/bin/env bash
# The unit tests under AddressSanitizer and UndefinedBehaviorSanitizer (docs/reliability.md).
#   scripts/sanitize.sh [CTEST ARGUMENTS...]
# Builds everything of robustlens in build-sanitize with -fsanitize=address,undefined (ROBUSTLENS_SANITIZE,
# the compiler CMake finds; LibTorch itself is not instrumented) and runs the tests there with CTest; the
# CLI tests run the instrumented robustlens. A sanitizer report stops the process, so the test that caused
# it fails and its output shows the report. Extra arguments go to ctest (e.g. -E Acceptance to leave out the
# long training tests, -R ImageFolder for some).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${ROBUSTLENS_SANITIZE_BUILD_DIR:-build-sanitize}
if [ ! -f "$build/build.ninja" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DROBUSTLENS_SANITIZE=ON \
    -DROBUSTLENS_BUILD_BENCH=OFF >/dev/null
fi
ninja -C "$build"
# Leak checking stays on: LibTorch's static registries are reachable at exit and not reported.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$build"
ctest --output-on-failure --parallel "$(nproc)" "$@"
