#!/usr/bin/env python3
"""Fails when a library folder includes a folder on its own or a higher floor.

The library's folders stand on floors (the README's "Code shape"); a file may
include headers of its own folder and of lower floors only, so that no folder
depends on one above it and folders form no cycle. Also refuses includes of
the library that do not name their folder ("robustlens/<folder>/<file>.h").

    scripts/check_layers.py [ROOT]     # ROOT: the repository (default: this script's parent's parent)
"""
import pathlib
import re
import sys

# Lowest first. Folders on one floor do not include each other.
FLOORS = [
    ["core"],
    ["data", "attacks", "spectral", "explain"],
    ["models", "report"],
    ["generative", "train"],
    ["analyses"],
]
FLOOR_OF = {folder: level for level, folders in enumerate(FLOORS) for folder in folders}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def violations(root):
    library = root / "robustlens"
    found = []
    folders = sorted(p.name for p in library.iterdir() if p.is_dir() and p.name != "web")
    for folder in folders:
        if folder not in FLOOR_OF:
            found.append(f"robustlens/{folder}/ stands on no floor: add it to FLOORS in {pathlib.Path(__file__).name}")
    for path in sorted(library.rglob("*")):
        if path.suffix not in (".h", ".cpp") or "node_modules" in path.parts:
            continue
        relative = path.relative_to(root)
        folder = path.relative_to(library).parts[0] if len(path.relative_to(library).parts) > 1 else None
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
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


def main():
    root = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent
    found = violations(root)
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} include(s) against the floors " +
              " < ".join("/".join(folders) for folders in FLOORS), file=sys.stderr)
        return 1
    print("includes follow the floors " + " < ".join("/".join(folders) for folders in FLOORS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
