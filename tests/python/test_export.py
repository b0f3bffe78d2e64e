#!/usr/bin/python3
"""End-to-end test of python/export_torchscript.py against the robustlens CLI.

A small CNN is exported from PyTorch; robustlens must load the file and give
the same logits, predictions and accuracy as PyTorch on the same idx data.

    /usr/bin/python3 tests/python/test_export.py --robustlens build/tools/robustlens/robustlens
"""

import argparse
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile

import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MEAN, STD = 0.2860, 0.3530
CLASS_NAMES = [f"class{k}" for k in range(10)]

MODEL_SOURCE = '''
import torch
from torch import nn

class SmallCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.hidden = nn.Linear(4 * 13 * 13, 16)
        self.out = nn.Linear(16, 10)

    def latent(self, x):
        x = torch.max_pool2d(torch.relu(self.conv(x)), 2)
        return torch.relu(self.hidden(x.flatten(1)))

    def forward(self, x):
        return self.out(self.latent(x))

def build():
    torch.manual_seed(3)
    return SmallCnn()
'''


def write_idx(path, magic, array_bytes, dims):
    with gzip.open(path, "wb") as out:
        out.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + array_bytes)


def make_dataset(directory):
    generator = torch.Generator().manual_seed(7)
    for prefix, count in (("train", 64), ("t10k", 50)):
        images = torch.randint(0, 256, (count, 28, 28), generator=generator, dtype=torch.uint8)
        labels = torch.randint(0, 10, (count,), generator=generator, dtype=torch.uint8)
        write_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte.gz"), 0x803, images.numpy().tobytes(),
                  (count, 28, 28))
        write_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte.gz"), 0x801, labels.numpy().tobytes(), (count,))
        if prefix == "t10k":
            return images.float().div(255).unsqueeze(1), labels.long()


def run(command):
    return subprocess.run(command, capture_output=True, text=True)


def export(helper, work, *extra):
    model_file = os.path.join(work, "models.py")
    with open(model_file, "w") as out:
        out.write(MODEL_SOURCE)
    return run([sys.executable, helper, "--model", f"{model_file}:build", "--input-shape", "1,28,28",
                "--mean", str(MEAN), "--std", str(STD), "--out", os.path.join(work, "model.ts"), *extra])


def eager_logits(work, images):
    sys.path.insert(0, work)
    import models  # the file written by export()
    model = models.build().eval()
    with torch.no_grad():
        return model((images - MEAN) / STD)


def test_exported_model_matches_pytorch_in_robustlens(cli, helper, work):
    test_images, test_labels = make_dataset(work)
    result = export(helper, work, "--class-names", ",".join(CLASS_NAMES))
    assert result.returncode == 0, result.stderr
    out = os.path.join(work, "eval")
    result = run([cli, "eval", "--model", os.path.join(work, "model.ts"), "--data", f"idx:{work}", "--split", "test",
                  "--save-logits", "--threads", "1", "--out", out])
    assert result.returncode == 0, result.stdout + result.stderr
    with open(os.path.join(out, "logits.csv")) as csv:
        robustlens_logits = torch.tensor([[float(v) for v in line.split(",")] for line in csv if line.strip()])
    expected = eager_logits(work, test_images)
    difference = (robustlens_logits - expected).abs().max().item()
    assert difference < 1e-4, f"logits differ by {difference}"
    assert torch.equal(robustlens_logits.argmax(1), expected.argmax(1))
    with open(os.path.join(out, "eval.json")) as record:
        accuracy = json.load(record)["accuracy"]
    expected_accuracy = expected.argmax(1).eq(test_labels).double().mean().item()
    assert abs(accuracy - expected_accuracy) < 1e-9, (accuracy, expected_accuracy)


def test_info_reads_the_metadata(cli, helper, work):
    result = run([cli, "info", "--model", os.path.join(work, "model.ts")])
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)["model"]
    assert info["kind"] == "torchscript"
    assert info["input_shape"] == [1, 28, 28]
    assert info["class_names"] == CLASS_NAMES
    assert info["has_latent"] is True


def test_helper_rejects_bad_input(cli, helper, work):
    cases = [(["--input-shape", "1,28"], "--input-shape"),
             (["--class-names", "a,b"], "--class-names"),
             (["--std", "0"], "--std"),
             (["--mean", "0.1,0.2"], "--mean")]
    for extra, fragment in cases:
        model_file = os.path.join(work, "models.py")
        arguments = [sys.executable, helper, "--model", f"{model_file}:build", "--input-shape", "1,28,28",
                     "--out", os.path.join(work, "bad.ts")]
        result = run(arguments + extra)
        assert result.returncode == 2, (extra, result.returncode, result.stderr)
        assert "error:" in result.stderr and fragment in result.stderr, (extra, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
    missing = run([sys.executable, helper, "--model", os.path.join(work, "absent.py:build"), "--input-shape",
                   "1,28,28", "--out", os.path.join(work, "bad.ts")])
    assert missing.returncode == 2 and "does not exist" in missing.stderr, missing.stderr
    assert not os.path.exists(os.path.join(work, "bad.ts"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--robustlens", required=True, help="the robustlens binary")
    parser.add_argument("--helper", default=os.path.join(REPO, "python", "export_torchscript.py"))
    args = parser.parse_args()
    tests = [test_exported_model_matches_pytorch_in_robustlens, test_info_reads_the_metadata,
             test_helper_rejects_bad_input]
    failed = 0
    with tempfile.TemporaryDirectory() as work:
        for test in tests:  # in order: later tests use the file the first one exported
            try:
                test(args.robustlens, args.helper, work)
                print(f"PASS {test.__name__}")
            except AssertionError as error:
                failed += 1
                print(f"FAIL {test.__name__}: {error}")
    print(f"{len(tests) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
