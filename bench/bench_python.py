#!/usr/bin/python3
"""The Python module's calling overhead: each call through `import robustlens` against the same subcommand run
in-process from C++ (build/bench/bench_command_call, cli::run_command as the module calls it), on LeNet and 1,000
Fashion-MNIST test images, one thread, in one run: blocks of calls alternate, the first call of each block warms up
and is not counted, and the medians are printed.

    PYTHONPATH=build/python /usr/bin/python3 bench/bench_python.py [--repeats 3] [--blocks 2]

Rows: the data as the spec fashion-mnist (the same command line in both), and as tensors read here (the module
hands them over as memory:data).
"""

import argparse
import gzip
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

import robustlens

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, os.environ.get("ROBUSTLENS_BUILD_DIR", "build"))
CLI = os.path.join(BUILD, "tools", "robustlens", "robustlens")
COMMAND_CALL = os.path.join(BUILD, "bench", "bench_command_call")
FASHION = os.environ.get("ROBUSTLENS_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
CASES = {
    "eval": ["eval"],
    "attack": ["attack"],
}


def fashion_test_tensors():
    """Fashion-MNIST's test split as the idx reader gives it: bytes / 255 in float32."""
    def read(name, offset):
        with gzip.open(os.path.join(FASHION, name)) as f:
            return torch.frombuffer(bytearray(f.read()[offset:]), dtype=torch.uint8)
    images = read("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28).float() / 255
    return images, read("t10k-labels-idx1-ubyte.gz", 8).long()


def cpp_seconds(arguments, repeats):
    output = subprocess.run([COMMAND_CALL, "--repeats", str(repeats + 1), "--"] + arguments, check=True,
                            capture_output=True, text=True).stdout
    return [float(line.split()[1]) for line in output.splitlines() if line.startswith("seconds ")][1:]


def python_seconds(function, model, data, options, repeats):
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        function(model, data, progress=False, **options)
        times.append(time.perf_counter() - start)
    return times[1:]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="counted calls per block")
    parser.add_argument("--blocks", type=int, default=2, help="alternating blocks of each")
    parser.add_argument("--samples", type=int, default=1000)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="robustlens-bench-python-")
    model = os.path.join(work, "lenet", "model.pt")
    subprocess.run([CLI, "train", "--arch", "lenet", "--epochs", "1", "--samples", "5000", "--threads", "1",
                    "--out", os.path.dirname(model)], check=True, capture_output=True)
    tensors = fashion_test_tensors()
    print(f"LeNet, {args.samples} Fashion-MNIST test images, 1 thread; medians of {args.repeats * args.blocks} "
          "calls after a warm-up call per block")
    print(f"{'command':28} {'C++ in-process':>15} {'Python':>9} {'ratio':>7}")
    for name, command in CASES.items():
        options = {"samples": args.samples, "threads": 1, "seed": 0, "out": os.path.join(work, "py-" + name)}
        cpp_arguments = command + ["--model", model, "--data", "fashion-mnist", "--samples", str(args.samples),
                                   "--threads", "1", "--seed", "0", "--out", os.path.join(work, "cpp-" + name)]
        function = getattr(robustlens, name)
        for label, data in (("spec", "fashion-mnist"), ("tensors", tensors)):
            cpp, python = [], []
            for _ in range(args.blocks):
                cpp += cpp_seconds(cpp_arguments, args.repeats)
                python += python_seconds(function, model, data, options, args.repeats)
            c, p = statistics.median(cpp), statistics.median(python)
            print(f"{name + ', data as ' + label:28} {c:14.3f}s {p:8.3f}s {p / c:6.3f}x", flush=True)


if __name__ == "__main__":
    sys.exit(main())
