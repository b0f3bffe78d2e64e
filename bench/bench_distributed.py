#!/usr/bin/env python3
"""Data-parallel scaling: each command in 1 process x 1 thread against 2 ranks x 1 thread under torchrun (Gloo),
run alternately --repeats times in one run; medians and their ratio (docs/distributed.md).

  --suite lenet:    the built-in LeNet on Fashion-MNIST (train, eval, attack, margins, spectral, upi, latent,
                    corruptions, manifold, explain, sweep).
  --suite resnet18: an ImageNet-sized model: a ResNet-18 (He et al. 2016, written out here: torchvision is not in
                    Debian) with random weights, traced to TorchScript, on 3x224x224 random images in 10 classes;
                    the seconds per image and the peak resident memory of each analysis in one process, and the
                    2-rank ratio.
  --suite divergence: not speed but the weights: LeNet trained for 10 to 640 steps in 2 ranks against one process
                    (1 thread), beside one process with 2 threads against 1: how far rounding (reduction order)
                    carries the weights apart as training goes on.
  --device cuda:    the same on the GPUs under torchrun (then NCCL is not used: LibTorch's Gloo reduces host
                    copies; docs/distributed.md), for a machine that has them.

Wall seconds are whole commands, as a user waits for them: the 2-rank time includes torchrun's start (measured
alone as "launcher", a Python interpreter importing torch). Never run it beside other work.
"""
import argparse
import os
import random
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from distributed_trials import weight_difference  # noqa: E402
ROBUSTLENS = os.environ.get("ROBUSTLENS", os.path.join(ROOT, "build/tools/robustlens/robustlens"))
TORCHRUN = ["torchrun", "--standalone", "--nproc_per_node=2", "--no_python", "--redirects", "1", "--tee", "1",
            "--monitor_interval", "0.2"]


def timed(arguments):
    """(wall seconds, peak resident MiB of the largest process) of a command; exits on failure."""
    started = time.monotonic()
    result = subprocess.run(["/usr/bin/time", "-f", "%M"] + arguments, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {' '.join(arguments)}\n{result.stderr[-3000:]}")
    peak_kib = [int(line) for line in result.stderr.split() if line.isdigit()]
    return seconds, (peak_kib[-1] / 1024 if peak_kib else float("nan"))


def epoch_seconds(folder):
    """The first epoch's seconds in a training run's train_log.json (training alone, without loading); else None."""
    import json
    try:
        with open(os.path.join(folder, "train_log.json")) as f:
            return json.load(f)["result"]["epochs"][0]["seconds"]
    except (OSError, KeyError, IndexError, ValueError):
        return None


def lenet_commands(work, device):
    model = os.path.join(work, "lenet", "model.pt")
    common = ["--threads", "1", "--device", device]
    if not os.path.exists(model):
        subprocess.run([ROBUSTLENS, "train", "--arch", "lenet", "--epochs", "1", "--out", os.path.dirname(model)]
                       + common, check=True, stdout=subprocess.DEVNULL)
    return {
        "train (1 epoch, 20000 images)": (["train", "--arch", "lenet", "--epochs", "1", "--samples", "20000",
                                           "--restart"] + common, 20000),
        "train (batch 512)": (["train", "--arch", "lenet", "--epochs", "1", "--samples", "20000", "--batch-size", "512",
                               "--restart"] + common, 20000),
        "eval (10000 images)": (["eval", "--model", model, "--samples", "10000"] + common, 10000),
        "attack (500 images)": (["attack", "--model", model, "--samples", "500"] + common, 500),
        "margins (200 images)": (["margins", "--model", model, "--samples", "200"] + common, 200),
        "spectral (500 images)": (["spectral", "--model", model, "--samples", "500"] + common, 500),
        "upi (100 images)": (["upi", "--model", model, "--samples", "100"] + common, 100),
        "latent (1000 images)": (["latent", "--model", model, "--samples", "1000"] + common, 1000),
        "corruptions, 50 sets (2000 images)": (["corruptions", "--model", model, "--samples", "2000"] + common, 2000),
        "sweep, 4 models (1 epoch of 5000 images)": (["sweep", "--objective", "noise", "--strengths",
                                                      "0.05,0.1,0.2,0.4", "--epochs", "1", "--samples", "5000",
                                                      "--analysis-samples", "200", "--restart"] + common, 4),
        "manifold, local PCA (2000 images)": (["manifold", "--model", model, "--samples", "2000"] + common, 2000),
        "explain, integrated gradients (5000 images)": (["explain", "--model", model, "--samples", "5000", "--method",
                                                        "ig"] + common, 5000),
    }


def write_resnet18(work):
    """A ResNet-18 with random weights for 3x224x224 images in 10 classes, traced, and 20 random PNG images."""
    model, data = os.path.join(work, "resnet18.pt"), os.path.join(work, "images224")
    if os.path.exists(model) and os.path.isdir(data):
        return model, data
    script = r'''
import os, sys, torch, torch.nn as nn, numpy as np
torch.manual_seed(0)
class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False); self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False); self.b2 = nn.BatchNorm2d(cout)
        self.short = nn.Sequential() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    def forward(self, x):
        return torch.relu(self.b2(self.c2(torch.relu(self.b1(self.c1(x))))) + self.short(x))
class ResNet18(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        layers, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [Block(cin, cout, stride), Block(cout, cout, 1)]; cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(512, classes)
    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.layers(self.stem(x)), 1), 1))
model = ResNet18().eval()
torch.jit.trace(model, torch.rand(1, 3, 224, 224)).save(sys.argv[1])
'''
    subprocess.run(["/usr/bin/python3", "-c", script, model], check=True)
    rng = random.Random(0)
    for c in range(10):
        os.makedirs(os.path.join(data, f"class{c}"), exist_ok=True)
        for i in range(2):
            write_png(os.path.join(data, f"class{c}", f"{i}.png"), 224, 224,
                      bytes(rng.randrange(256) for _ in range(224 * 224 * 3)))
    return model, data


def write_png(path, width, height, rgb):
    import struct
    import zlib

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    rows = b"".join(b"\0" + rgb[y * width * 3:(y + 1) * width * 3] for y in range(height))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def resnet_commands(work, device):
    model, data = write_resnet18(work)
    common = ["--model", model, "--data", "folder:" + data, "--image-shape", "3,224,224", "--threads", "1",
              "--device", device]
    # Settings cut to fit a 2-core machine in minutes; the names say them.
    return {
        "eval (20 images)": (["eval", "--samples", "20"] + common, 20),
        "attack, PGD-L2 eps 0.5, no ensemble (4)": (["attack", "--samples", "4", "--eps", "0.5", "--no-ensemble"]
                                                    + common, 4),
        "explain, integrated gradients (2)": (["explain", "--samples", "2", "--method", "ig"] + common, 2),
        "spectral, 4 bands, no SNR (4)": (["spectral", "--samples", "4", "--bands", "4", "--snr", "none"]
                                          + common, 4),
        "margins, 4 subspaces, 3 cand., 5 it. (2)": (["margins", "--samples", "2", "--subspaces", "dct:112:112",
                                                      "--candidates", "3", "--max-iterations", "5",
                                                      "--no-full-space"] + common, 2),
    }


def divergence(work, device):
    print("LeNet on Fashion-MNIST, SGD lr 0.1 (one-cycle), batch 64; largest weight difference / largest weight")
    print(f"{'steps':>6} {'2 ranks vs 1 process':>22} {'2 threads vs 1 thread':>23}")
    for steps in (10, 40, 160, 640):
        train = ["train", "--arch", "lenet", "--epochs", "1", "--batch-size", "64", "--samples", str(64 * steps),
                 "--device", device, "--restart"]
        folders = {k: os.path.join(work, "divergence", k) for k in ("one", "ranks", "threads")}
        subprocess.run([ROBUSTLENS] + train + ["--threads", "1", "--out", folders["one"]], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(TORCHRUN + [ROBUSTLENS] + train + ["--threads", "1", "--out", folders["ranks"]], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run([ROBUSTLENS] + train + ["--threads", "2", "--out", folders["threads"]], check=True,
                       stdout=subprocess.DEVNULL)
        model = {k: os.path.join(v, "model.pt") for k, v in folders.items()}
        print(f"{steps:6d} {weight_difference(model['one'], model['ranks']):22.1e} "
              f"{weight_difference(model['one'], model['threads']):23.1e}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=["lenet", "resnet18", "divergence"], default="lenet")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated prefixes of the commands to run")
    parser.add_argument("--work", default=os.path.join(ROOT, "runs", "bench-distributed"))
    options = parser.parse_args()
    os.makedirs(options.work, exist_ok=True)
    if options.suite == "divergence":
        return divergence(options.work, options.device)
    table = (lenet_commands if options.suite == "lenet" else resnet_commands)(options.work, options.device)
    if options.only:
        table = {k: v for k, v in table.items() if any(k.startswith(p) for p in options.only.split(","))}
    launcher = statistics.median(timed(TORCHRUN + ["/bin/true"])[0] for _ in range(3))
    print(f"{options.suite} on {options.device}, {options.repeats} repeats, medians; launcher alone {launcher:.1f} s")
    print(f"{'command':44} {'1 process':>10} {'2 ranks':>9} {'ratio':>6} {'ratio w/o launcher':>19} "
          f"{'s/image':>8} {'peak MiB':>9}")
    for name, (arguments, images) in table.items():
        one, two, peak, epochs = [], [], 0.0, ([], [])
        for repeat in range(options.repeats):
            folder = os.path.join(options.work, "out", str(repeat))
            seconds, memory = timed([ROBUSTLENS] + arguments + ["--out", folder])
            one.append(seconds)
            peak = max(peak, memory)
            epochs[0].append(epoch_seconds(folder))
            two.append(timed(TORCHRUN + [ROBUSTLENS] + arguments + ["--out", folder])[0])
            epochs[1].append(epoch_seconds(folder))
        a, b = statistics.median(one), statistics.median(two)
        print(f"{name:44} {a:9.1f}s {b:8.1f}s {a / b:5.2f}x {a / max(b - launcher, 1e-9):18.2f}x "
              f"{a / images:8.3g} {peak:9.0f}", flush=True)
        if epochs[0][0] is not None:
            e1, e2 = statistics.median(epochs[0]), statistics.median(epochs[1])
            print(f"{'  its epoch alone (train_log.json)':44} {e1:9.1f}s {e2:8.1f}s {e1 / e2:5.2f}x", flush=True)


if __name__ == "__main__":
    main()
