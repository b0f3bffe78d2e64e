#!/usr/bin/env python3
"""Damaged-file trials: the files robustlens writes and reads again, damaged at random (issue 19;
docs/reliability.md).

Writes a classifier (with its training checkpoint), a VAE and a denoiser on a small synthetic data set, then
per trial damages a copy of one of them in one of three ways: flips 1, 4 or 64 random bits, cuts the file at
a random length, or overwrites 4, 64 or 1024 bytes at a random place with random bytes. Each damaged copy goes
through the commands that read that kind of file:
  - classifier: `info` and `eval` (whose accuracy is compared with the undamaged file's);
  - VAE and denoiser: `info`;
  - checkpoint: `train` resuming from it (the same command that wrote it).
A command may exit 2 (a clear message for bad input) or 0 with the undamaged file's numbers (damage in bytes
the readers do not use: the zip's alignment padding, say). Anything else is a problem: exit 1 (an internal
error), a signal (a crash), a hang, or exit 0 with other numbers (a silent wrong number).

Usage: scripts/damage_trials.py [--trials 200] [--seed 0] [--work DIR]
Needs only the Python standard library.
"""
import argparse
import collections
import os
import random
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kill_trials import ROBUSTLENS, make_data  # noqa: E402

THREADS = ["--threads", "1"]


def run(arguments):
    result = subprocess.run([ROBUSTLENS] + arguments, capture_output=True, text=True, timeout=300)
    return result.returncode, result.stdout + result.stderr


def accuracy(output):
    found = re.findall(r"accuracy[^0-9]*([0-9.]+)%", output)
    return found[-1] if found else None


def damage(original, rng):
    data = bytearray(original)
    kind = rng.choice(["flip", "cut", "overwrite"])
    if kind == "flip":
        for _ in range(rng.choice([1, 4, 64])):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif kind == "cut":
        data = data[:rng.randrange(len(data))]
    else:
        i = rng.randrange(len(data))
        length = min(rng.choice([4, 64, 1024]), len(data) - i)
        data[i:i + length] = bytes(rng.randrange(256) for _ in range(length))
    return kind, bytes(data)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0, help="seed of the damage")
    parser.add_argument("--work", default="/tmp/robustlens-damage-trials")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    data = os.path.join(args.work, "data")
    make_data(data, train=600, test=200)
    data_args = ["--data", "idx:" + data] + THREADS
    train_args = ["train", "--arch", "mlp", "--epochs", "1"] + data_args
    files = os.path.join(args.work, "files")
    setup = [train_args + ["--out", os.path.join(files, "model")],
             ["train-vae", "--epochs", "1", "--latent-dim", "4", "--out", os.path.join(files, "vae")] + data_args,
             ["train-denoiser", "--epochs", "1", "--out", os.path.join(files, "denoiser")] + data_args]
    for arguments in setup:
        code, output = run(arguments)
        if code != 0:
            sys.exit(f"damage trials: could not write the files: robustlens {' '.join(arguments)}\n{output}")
    originals = {"classifier": os.path.join(files, "model", "model.pt"),
                 "checkpoint": os.path.join(files, "model", "checkpoint.pt"),
                 "vae": os.path.join(files, "vae", "vae.pt"),
                 "denoiser": os.path.join(files, "denoiser", "denoiser.pt")}
    eval_args = ["eval", "--out", os.path.join(args.work, "eval")] + data_args
    code, output = run(eval_args + ["--model", originals["classifier"]])
    reference_accuracy = accuracy(output)
    if code != 0 or reference_accuracy is None:
        sys.exit(f"damage trials: the undamaged model does not evaluate\n{output}")

    rng = random.Random(args.seed)
    counts = collections.Counter()
    problems = []
    trial_folder = os.path.join(args.work, "trial")
    for trial in range(args.trials):
        kind_of_file = rng.choice(sorted(originals))
        kind, damaged = damage(open(originals[kind_of_file], "rb").read(), rng)
        shutil.rmtree(trial_folder, ignore_errors=True)
        if kind_of_file == "checkpoint":
            # A training folder whose checkpoint was damaged, resumed by the command that wrote it.
            shutil.copytree(os.path.dirname(originals["checkpoint"]), trial_folder)
            open(os.path.join(trial_folder, "checkpoint.pt"), "wb").write(damaged)
            commands = [("train", train_args + ["--out", trial_folder])]
        else:
            os.makedirs(trial_folder)
            path = os.path.join(trial_folder, os.path.basename(originals[kind_of_file]))
            open(path, "wb").write(damaged)
            commands = [("info", ["info", "--model", path])]
            if kind_of_file == "classifier":
                commands.append(("eval", eval_args + ["--model", path]))
        for name, arguments in commands:
            try:
                code, output = run(arguments)
            except subprocess.TimeoutExpired:
                code, output = "hang", ""
            counts[(kind_of_file, name, code)] += 1
            wrong_number = name == "eval" and code == 0 and accuracy(output) != reference_accuracy
            if code not in (0, 2) or wrong_number:
                problems.append((trial, kind_of_file, kind, name, code, output.strip()[-300:]))
                open(os.path.join(args.work, f"problem-{trial}-{kind_of_file}.bin"), "wb").write(damaged)

    print(f"{args.trials} trials (seed {args.seed}); exit codes per file and command:")
    for (kind_of_file, name, code), count in sorted(counts.items(), key=str):
        print(f"  {kind_of_file:10} {name:6} exit {code}: {count}")
    print(f"problems: {len(problems)}")
    for problem in problems:
        print("  trial %d: %s damaged by %s, %s: exit %s\n    %s" % problem)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
