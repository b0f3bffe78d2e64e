#!/usr/bin/env bash
# Formats every C++ file of the project with .clang-format (Debian's clang-format).
# scripts/format.sh --check lists the files that differ from their formatted text and fails when there are any.
set -euo pipefail
cd "$(dirname "$0")/.."
formatter=$(command -v clang-format-14 || command -v clang-format || true)
[ -n "$formatter" ] || { echo "clang-format is not installed (apt-get install clang-format)" >&2; exit 2; }
mapfile -t files < <(git ls-files 'robustlens/*.h' 'robustlens/*.cpp' 'tools/*.h' 'tools/*.cpp' 'tests/*.h' 'tests/*.cpp' \
                                  'bench/*.h' 'bench/*.cpp' 'fuzz/*.h' 'fuzz/*.cpp' | grep -v '^tests/fixtures/')
if [ "${1:-}" = "--check" ]; then
  status=0
  for file in "${files[@]}"; do
    if ! "$formatter" "$file" | cmp -s - "$file"; then echo "$file is not formatted (scripts/format.sh)"; status=1; fi
  done
  exit $status
fi
"$formatter" -i "${files[@]}"
