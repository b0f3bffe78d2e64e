#!/usr/bin/python3
"""The Python module's calling overhead: each call through `import robustlens` against the same subcommand run
in-process from C++ (build/bench/bench_command_call, cli::run_command as the module calls it), on LeNet and 1,000
Fashion-MNIST test images, one thread, in one run: blocks of calls alternate, the first call of each block warms up
and is not counted, and the medians are printed.

    PYTHONPATH=build/python /usr/bin/python3 bench/bench_python.py [--repeats 3] [--blocks 2] [--tables library]

Rows: the data as the spec fashion-mnist (the same command line in both), and as tensors read here (the module
hands them over as memory:data).

A second table times the library functions (robustlens.deepfool, pgd, attribute) on the same images for three
forms of one PyTorch CNN (the notebook's): its traced file (run by C++ alone), the ScriptModule and the eager
torch.nn.Module (both called through Python at each forward pass, the GIL taken for the call).
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
        function(model, data, progress=False, quiet=True, **options)
        times.append(time.perf_counter() - start)
    return times[1:]


def small_cnn():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 8, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                               torch.nn.Linear(8 * 12 * 12, 10)).eval()


def library_table(images, labels, work, repeats, blocks):
    """Median seconds of each library function for the model as a file, a ScriptModule and an nn.Module."""
    module = small_cnn()
    script = torch.jit.trace(module, images[:8])
    path = os.path.join(work, "cnn.pt")
    torch.jit.save(script, path)
    calls = {
        "deepfool": lambda m: robustlens.deepfool(m, images, progress=False),
        "pgd, 10 steps": lambda m: robustlens.pgd(m, images, labels, steps=10),
        "attribute, ig 32 steps": lambda m: robustlens.attribute(m, images, labels, method="ig"),
    }
    forms = {"file": path, "ScriptModule": script, "nn.Module": module}
    print(f"\nA PyTorch CNN (conv 8x5x5, ReLU, pool, linear), {len(images)} Fashion-MNIST test images, 1 thread; "
          f"medians of {repeats * blocks} calls after a warm-up call per block")
    print(f"{'library function':24}" + "".join(f"{form:>14}" for form in forms) + f"{'nn.Module/file':>16}")
    for name, call in calls.items():
        times = {form: [] for form in forms}
        for _ in range(blocks):
            for form, model in forms.items():
                for repeat in range(repeats + 1):
                    start = time.perf_counter()
                    call(model)
                    if repeat > 0:
                        times[form].append(time.perf_counter() - start)
        medians = {form: statistics.median(t) for form, t in times.items()}
        print(f"{name:24}" + "".join(f"{medians[form]:13.3f}s" for form in forms) +
              f"{medians['nn.Module'] / medians['file']:15.3f}x", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="counted calls per block")
    parser.add_argument("--blocks", type=int, default=2, help="alternating blocks of each")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--tables", default="commands,library", help="which tables: commands, library or both")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="robustlens-bench-python-")
    tensors = fashion_test_tensors()
    tables = args.tables.split(",")
    if "commands" in tables:
        commands_table(tensors, work, args)
    if "library" in tables:
        torch.set_num_threads(1)
        library_table(tensors[0][:args.samples], tensors[1][:args.samples], work, args.repeats, args.blocks)


def commands_table(tensors, work, args):
    """Median seconds of each command called from Python and from C++ in-process."""
    model = os.path.join(work, "lenet", "model.pt")
    subprocess.run([CLI, "train", "--arch", "lenet", "--epochs", "1", "--samples", "5000", "--threads", "1",
                    "--out", os.path.dirname(model)], check=True, capture_output=True)
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
