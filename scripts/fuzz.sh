#!/usr/bin/env bash
# Coverage-guided fuzzing of every reader and option parser (libFuzzer, ASan and UBSan; docs/reliability.md).
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# Builds the targets in build-fuzz with Debian's clang (everything instrumented), writes the seed corpora
# (fuzz/make_seeds.cpp) and runs each target for SECONDS (default 60) on one core, keeping its corpus in
# build-fuzz/corpus/TARGET between runs. Prints executions and findings per target; a crashing input is saved
# in build-fuzz/findings/TARGET/ and the script exits 1. Inputs that found a bug are kept in fuzz/regressions/TARGET
# (and tested by the unit tests). Targets: idx cifar10 image model_metadata
# generative_metadata checkpoint_state audit_step option_specs (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=${*:-idx cifar10 image model_metadata generative_metadata checkpoint_state audit_step option_specs}
build=${ROBUSTLENS_FUZZ_BUILD_DIR:-build-fuzz}

if ! command -v clang++ >/dev/null 2>&1; then
  echo "fuzz: installing clang (libFuzzer and the sanitizers)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends clang >/dev/null
fi
if [ ! -f "$build/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DROBUSTLENS_FUZZ=ON \
    -DROBUSTLENS_BUILD_TESTS=OFF -DROBUSTLENS_BUILD_BENCH=OFF >/dev/null
fi
ninja -C "$build" fuzz_targets
"$build/fuzz/fuzz_make_seeds" "$build/seeds" >/dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
printf '%-20s %12s %9s %8s %s\n' target executions "exec/s" corpus findings
for target in $targets; do
  corpus="$build/corpus/$target"
  findings="$build/findings/$target"
  mkdir -p "$corpus" "$findings"
  log="$build/fuzz-$target.log"
  set +e
  # The inputs that once found a bug (fuzz/regressions/TARGET) are run first, with the seeds.
  regressions=fuzz/regressions/$target
  [ -d "$regressions" ] || regressions=""
  # The image target also starts from the JPEG kinds other encoders write (progressive, restart markers, 4:2:0).
  fixtures=""
  [ "$target" = image ] && fixtures=tests/fixtures/jpeg
  OMP_NUM_THREADS=1 "$build/fuzz/fuzz_$target" "$corpus" "$build/seeds/$target" $regressions $fixtures -max_total_time="$seconds" \
    -max_len=65536 -rss_limit_mb=4096 -timeout=10 -artifact_prefix="$findings/" -print_final_stats=1 >"$log" 2>&1
  code=$?
  set -e
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  size=$(ls "$corpus" | wc -l)
  found=$(ls "$findings" | wc -l)
  printf '%-20s %12s %9s %8s %s\n' "$target" "${executions:-?}" "${rate:-?}" "$size" "$found"
  if [ "$code" -ne 0 ] || [ "$found" -ne 0 ]; then
    status=1
    echo "  $target: exit $code; see $log and $findings/" >&2
    grep -m3 -E "ERROR|runtime error|deadly signal|Exception" "$log" >&2 || true
  fi
done
exit $status
