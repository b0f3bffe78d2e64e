#!/usr/bin/env python3
"""Fails when the library's code leaves its shape.

- Floors: the library's folders stand on floors (the README's "Code shape"); a
  file may include headers of its own folder and of lower floors only, so that
  no folder depends on one above it and folders form no cycle. Includes of the
  library name their folder ("robustlens/<folder>/<file>.h").
- Owned randomness: no draw from LibTorch's process-wide generator; every
  random draw names its generator (core/random.h), so that an analysis gives
  the same numbers whatever ran before it in the process.
- Width: no line of C++ over 120 characters (clang-format keeps code within
  it; this also covers what it cannot break, such as raw strings).
- Length: no C++ file over 450 lines, and no function of the command-line
  tool (tools/) over 60 lines: it orchestrates and prints; what is longer
  belongs in the library.

    scripts/check_code_shape.py [ROOT]     # ROOT: the repository (default: this script's parent's parent)
"""
import pathlib
import re
import sys

# Lowest first. Folders on one floor do not include each other.
FLOORS = [
    ["core"],
    ["spectral"],
    ["data", "attacks", "explain"],
    ["models", "report"],
    ["generative", "train"],
    ["analyses"],
]
FLOOR_OF = {folder: level for level, folders in enumerate(FLOORS) for folder in folders}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
# LibTorch's random functions; a call passes a generator or draws from the global one.
RANDOM_DRAW = re.compile(r'\b(?:at|torch)::(?:rand|randn|randint|randperm|rand_like|randn_like|randint_like|bernoulli|'
                         r'normal|multinomial|manual_seed)\s*\(')
# The one file that wraps them.
RANDOM_HOME = "robustlens/core/random.cpp"
MAX_COLUMNS = 120
MAX_LINES = 450
# The command-line tool's functions: orchestration and printing, each short enough to read at once; what is
# longer belongs in the library.
MAX_FUNCTION_LINES = 60
FUNCTION_FOLDERS = ["tools"]
# A function at namespace scope (clang-format puts it at column 0): its signature's last line opens the body,
# which the first line "}" at column 0 closes.
NOT_A_FUNCTION = re.compile(r"^(namespace|struct|class|enum|union|extern|template\b.*\b(struct|class))\b")
CODE_FOLDERS = ["robustlens", "tools", "tests", "bench", "fuzz"]


def source_files(root, folder):
    """The C++ files under root/folder, outside installed packages and test fixtures."""
    for path in sorted((root / folder).rglob("*")):
        parts = path.relative_to(root).parts
        if path.suffix in (".h", ".cpp") and "node_modules" not in parts and "fixtures" not in parts:
            yield path


def floor_and_draw_violations(root):
    library = root / "robustlens"
    found = []
    folders = sorted(p.name for p in library.iterdir() if p.is_dir() and p.name != "web")
    for folder in folders:
        if folder not in FLOOR_OF:
            found.append(f"robustlens/{folder}/ stands on no floor: add it to FLOORS in {pathlib.Path(__file__).name}")
    for path in source_files(root, "robustlens"):
        relative = path.relative_to(root)
        folder = path.relative_to(library).parts[0] if len(path.relative_to(library).parts) > 1 else None
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("//")[0]
            if RANDOM_DRAW.search(code) and "generator" not in code and str(relative) != RANDOM_HOME:
                found.append(f"{relative}:{number}: draws from LibTorch's global generator; draw from a generator "
                             "of the analysis's own (core/random.h)")
            match = INCLUDE.match(line)
            if not match:
                continue
            target = match.group(1).split("/")
            if len(target) != 3 or target[0] != "robustlens":
                found.append(f"{relative}:{number}: includes \"{match.group(1)}\"; the library includes its own "
                             "headers as \"robustlens/<folder>/<file>.h\"")
                continue
            if folder is None or target[1] == folder or folder not in FLOOR_OF:
                continue
            if target[1] not in FLOOR_OF or FLOOR_OF[target[1]] >= FLOOR_OF[folder]:
                lower = [f for f, level in FLOOR_OF.items() if level < FLOOR_OF[folder]]
                found.append(f"{relative}:{number}: includes robustlens/{target[1]}/{target[2]}, but {folder}/ "
                             f"may include only {', '.join(lower) if lower else 'its own folder'}")
    return found


def size_violations(root):
    found = []
    for folder in CODE_FOLDERS:
        for path in source_files(root, folder):
            lines = path.read_text(encoding="utf-8").splitlines()
            for number, line in enumerate(lines, 1):
                if len(line) > MAX_COLUMNS:
                    found.append(f"{path.relative_to(root)}:{number}: {len(line)} characters, over {MAX_COLUMNS}")
            if len(lines) > MAX_LINES:
                found.append(f"{path.relative_to(root)}: {len(lines)} lines, over {MAX_LINES}: split it")
    return found


def long_functions(root):
    found = []
    for folder in FUNCTION_FOLDERS:
        for path in source_files(root, folder):
            start = None
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                opens = line.endswith("{") and line[:1] not in ("", " ", "}", "#", "/")
                if start is None and opens and not NOT_A_FUNCTION.match(line):
                    start = number
                elif start is not None and line == "}":
                    if number - start + 1 > MAX_FUNCTION_LINES:
                        found.append(f"{path.relative_to(root)}:{start}: a function of {number - start + 1} lines, "
                                     f"over {MAX_FUNCTION_LINES}: split it")
                    start = None
    return found


def main():
    root = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent
    found = floor_and_draw_violations(root) + size_violations(root) + long_functions(root)
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} problem(s); the floors are " + " < ".join("/".join(folders) for folders in FLOORS),
              file=sys.stderr)
        return 1
    print("includes follow the floors " + " < ".join("/".join(folders) for folders in FLOORS) +
          f"; every random draw names its generator; no line over {MAX_COLUMNS} characters; no file over "
          f"{MAX_LINES} lines; no function in {', '.join(FUNCTION_FOLDERS)}/ over {MAX_FUNCTION_LINES} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
