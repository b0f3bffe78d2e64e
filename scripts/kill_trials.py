#!/usr/bin/env python3
"""kill -9 trials of train, margins and audit (issue 19; docs/reliability.md).

Each command first runs uninterrupted (the reference, also its duration T).
Then, per trial, it starts afresh, is killed with SIGKILL after a uniformly
random time in (0, T), and the folder is checked:
  - no output under a final name without a committed run: every file is a
    run's state (checkpoint.pt, audit_step.json, the manifest) or listed in
    the manifest (robustlens-run.json) of its folder or a folder above it;
  - every file a manifest lists exists, and every JSON file parses.
The command then runs again to completion, and its results must equal the
reference's, number for number (timings, paths and resume counters aside).

Usage: scripts/kill_trials.py [--trials 20] [--commands train,margins,audit]
Needs only the Python standard library; the data is a small synthetic idx
data set written here.
"""
import argparse
import gzip
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROBUSTLENS = os.environ.get("ROBUSTLENS", os.path.join(ROOT, os.environ.get("ROBUSTLENS_BUILD_DIR", "build"),
                                                       "tools/robustlens/robustlens"))
STATE_FILES = {"checkpoint.pt", "audit_step.json", "robustlens-run.json"}
# Keys whose values differ between two correct runs: timings, where the files are, how much was resumed.
VOLATILE = {"out", "folder", "folders", "command", "commands", "vae", "denoiser", "versions", "build",
            "resumed_after_epoch"}


def write_idx(path, array_bytes, dims, type_code=0x08):
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, type_code, len(dims)))
        for d in dims:
            f.write(struct.pack(">I", d))
        f.write(array_bytes)


def make_data(folder, seed=7, side=12, classes=3, train=3000, test=1000):
    """Images whose class is the brightest of three regions, with noise: learnable in one epoch."""
    rng = random.Random(seed)
    os.makedirs(folder, exist_ok=True)
    for split, count, prefix in (("train", train, "train"), ("test", test, "t10k")):
        pixels, labels = bytearray(), bytearray()
        for _ in range(count):
            label = rng.randrange(classes)
            for y in range(side):
                for x in range(side):
                    bright = (x * classes) // side == label
                    pixels.append(min(255, max(0, int(rng.gauss(150 if bright else 80, 40)))))
            labels.append(label)
        write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz"), bytes(pixels), (count, side, side))
        write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte.gz"), bytes(labels), (count,))


def run(arguments, out, kill_after=None):
    """Runs robustlens ARGUMENTS --out OUT; with kill_after, SIGKILLs it then. Returns (exit code, output, seconds)."""
    started = time.monotonic()
    process = subprocess.Popen([ROBUSTLENS] + arguments + ["--out", out], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=kill_after)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        output, _ = process.communicate()
    return process.returncode, output, time.monotonic() - started


def manifests(folder):
    """{folder: set of the outputs its manifest lists (relative to it)} for every manifest at or below folder."""
    listed = {}
    for directory, _, names in os.walk(folder):
        if "robustlens-run.json" in names:
            with open(os.path.join(directory, "robustlens-run.json")) as f:
                listed[directory] = set(json.load(f).get("outputs", []))
    return listed


def check_folder(folder):
    """The problems of a folder a killed run left: outputs no committed run lists, listed files missing, bad JSON."""
    problems = []
    listed = manifests(folder)
    for directory, subfolders, names in os.walk(folder):
        subfolders[:] = [s for s in subfolders if not s.startswith(".robustlens-staging-")]
        for name in names:
            path = os.path.join(directory, name)
            if ".tmp" in name:
                continue  # a temporary (NAME.tmpPID), never a final name
            if name.endswith(".json"):
                try:
                    with open(path) as f:
                        json.load(f)
                except ValueError as error:
                    problems.append(f"{path}: not valid JSON ({error})")
            if name in STATE_FILES:
                continue
            owner, covered = directory, False
            while True:
                if owner in listed and os.path.relpath(path, owner) in listed[owner]:
                    covered = True
                    break
                if owner == folder:
                    break
                owner = os.path.dirname(owner)
            if not covered:
                problems.append(f"{path}: an output that no committed run lists")
    for directory, outputs in listed.items():
        problems += [f"{directory}/{o}: listed in the manifest but missing" for o in sorted(outputs)
                     if not os.path.exists(os.path.join(directory, o))]
    return problems


def stable(value):
    """The JSON without the values that differ between two correct runs."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE and not k.endswith("seconds")}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


def results(folder, names):
    out = {}
    for name in names:
        with open(os.path.join(folder, name)) as f:
            out[name] = stable(json.load(f))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--commands", default="train,margins,audit")
    parser.add_argument("--work", default="/tmp/robustlens-kill-trials")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill times")
    options = parser.parse_args()
    rng = random.Random(options.seed)
    shutil.rmtree(options.work, ignore_errors=True)
    data = os.path.join(options.work, "data")
    make_data(data)
    common = ["--data", "idx:" + data, "--threads", "1"]
    model = os.path.join(options.work, "reference-train", "model.pt")
    commands = {
        "train": (["train", "--arch", "mlp", "--epochs", "20", "--batch-size", "16"] + common,
                  ["train_log.json"]),
        "margins": (["margins", "--model", model, "--samples", "1000"] + common, ["margins.json"]),
        "audit": (["audit", "--quick", "--fit-generative", "--model", model] + common, ["audit.json"]),
    }
    failures = 0
    for name in ["train"] + [c for c in options.commands.split(",") if c != "train"]:
        arguments, result_files = commands[name]
        reference = os.path.join(options.work, "reference-" + name)
        code, output, duration = run(arguments, reference)
        if code != 0:
            sys.exit(f"{name}: the reference run failed ({code}):\n{output}")
        expected = results(reference, result_files)
        if name not in options.commands.split(","):
            continue
        killed_outputs, problems_total = 0, 0
        for trial in range(options.trials):
            out = os.path.join(options.work, f"{name}-trial")
            shutil.rmtree(out, ignore_errors=True)
            kill_after = rng.uniform(0.05, duration)
            code, _, _ = run(arguments, out, kill_after)
            problems = check_folder(out) if os.path.isdir(out) else []
            left = sorted(os.path.relpath(os.path.join(d, n), out) for d, subfolders, names in os.walk(out)
                          for n in names if ".robustlens-staging-" not in d) if os.path.isdir(out) else []
            killed_outputs += code == -signal.SIGKILL
            code, output, _ = run(arguments, out)
            if code != 0:
                problems.append(f"the rerun failed ({code}): {output[-2000:]}")
            elif results(out, result_files) != expected:
                problems.append("the rerun's results differ from the uninterrupted run's")
            problems += check_folder(out)
            problems_total += len(problems)
            print(f"{name} trial {trial + 1}: killed after {kill_after:.2f} s of {duration:.2f} s, leaving {len(left)} "
                  f"files under final names: " + ("ok" if not problems else "; ".join(problems)), flush=True)
        print(f"{name}: {options.trials} trials ({killed_outputs} killed before finishing), "
              f"{problems_total} problems", flush=True)
        failures += problems_total
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
