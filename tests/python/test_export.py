#!/usr/bin/python3
"""End-to-end test of python/export_torchscript.py against the robustlens CLI.

A small CNN (with a latent() method) is exported from PyTorch with its
normalisation and class names; robustlens must load the file and give the same
logits, predictions and accuracy as eager PyTorch on a synthetic idx dataset.
The helper must also reject bad input with one `error:` line and exit status 2.

    /usr/bin/python3 tests/python/test_export.py --robustlens build/tools/robustlens/robustlens

Prints PASS/FAIL per test, then `N passed, M failed`; exits non-zero on any
failure. `--skip-cli` runs only the tests that do not need the robustlens
binary (for working on the helper alone).
"""

import argparse
import gzip
import importlib.util
import json
import os
import struct
import subprocess
import sys
import tempfile
import traceback

import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MEAN, STD = 0.2860, 0.3530
CLASS_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TRAIN_IMAGES, TEST_IMAGES = 64, 50
TIMEOUT_S = 300

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


def write_idx(path, magic, dims, data: torch.Tensor):
    """An idx file: big-endian magic and dimensions, then the uint8 data."""
    with gzip.open(path, "wb") as out:
        out.write(struct.pack(f">{1 + len(dims)}I", magic, *dims) + data.numpy().tobytes())


def write_dataset(directory):
    """Seeded random MNIST-style train/t10k files; returns the test images as [0, 1] floats and the labels."""
    os.makedirs(directory)
    generator = torch.Generator().manual_seed(7)
    for prefix, count in (("train", TRAIN_IMAGES), ("t10k", TEST_IMAGES)):
        images = torch.randint(0, 256, (count, 28, 28), generator=generator, dtype=torch.uint8)
        labels = torch.randint(0, len(CLASS_NAMES), (count,), generator=generator, dtype=torch.uint8)
        write_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte.gz"), 0x00000803, (count, 28, 28), images)
        write_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte.gz"), 0x00000801, (count,), labels)
    return images.float().div(255).unsqueeze(1), labels.long()


def run(command):
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)


class Setup:
    """What the tests share: the dataset, the model file, and the helper's export of it."""

    def __init__(self, work, helper, cli):
        self.work, self.helper, self.cli = work, helper, cli
        self.data_dir = os.path.join(work, "data")
        self.test_images, self.test_labels = write_dataset(self.data_dir)
        self.model_file = os.path.join(work, "models.py")
        with open(self.model_file, "w") as out:
            out.write(MODEL_SOURCE)
        self.exported = os.path.join(work, "model.ts")
        self.export_result = self.run_helper("--mean", str(MEAN), "--std", str(STD),
                                             "--class-names", ",".join(CLASS_NAMES), "--out", self.exported)

    def run_helper(self, *arguments):
        return run([sys.executable, self.helper, "--model", f"{self.model_file}:build", "--input-shape", "1,28,28",
                    *arguments])

    def exported_model(self):
        result = self.export_result
        assert result.returncode == 0, f"the export failed (exit {result.returncode}): {result.stderr.strip()}"
        return self.exported

    def eager(self, images):
        """Logits and latent features of the model file's model in PyTorch, normalised as the export is."""
        spec = importlib.util.spec_from_file_location("test_export_models", self.model_file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        model = module.build().eval()
        with torch.no_grad():
            normalised = (images - MEAN) / STD
            return model(normalised), model.latent(normalised)


def test_export_stores_metadata_and_reproduces_pytorch(setup):
    path = setup.exported_model()
    summary = setup.export_result.stdout
    assert "10 classes" in summary and "latent yes" in summary, f"unexpected summary: {summary!r}"
    loaded = torch.jit.load(path)
    assert list(loaded.robustlens_input_shape) == [1, 28, 28], loaded.robustlens_input_shape
    assert list(loaded.robustlens_class_names) == CLASS_NAMES, loaded.robustlens_class_names
    logits, latent = setup.eager(setup.test_images)
    with torch.no_grad():
        logit_difference = (loaded(setup.test_images) - logits).abs().max().item()
        latent_difference = (loaded.latent(setup.test_images) - latent).abs().max().item()
    assert logit_difference < 1e-4, f"reloaded logits differ from PyTorch's by {logit_difference}"
    assert latent_difference < 1e-4, f"reloaded latent features differ from PyTorch's by {latent_difference}"


def test_helper_rejects_bad_input(setup):
    bad = os.path.join(setup.work, "bad.ts")
    cases = [(["--input-shape", "1,28"], "--input-shape"),
             (["--class-names", "a,b"], "--class-names"),
             (["--mean", "0.1,0.2"], "--mean"),
             (["--std", "0"], "--std"),
             (["--model", os.path.join(setup.work, "absent.py") + ":build"], "absent.py"),
             (["--model", f"{setup.model_file}:no_such_function"], "no_such_function"),
             (["--weights", os.path.join(setup.work, "absent.pth")], "absent.pth")]
    for extra, named in cases:
        result = setup.run_helper("--out", bad, *extra)  # argparse keeps the last --model/--input-shape
        assert result.returncode == 2, f"{extra}: exit {result.returncode}, expected 2; stderr {result.stderr!r}"
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and named in lines[0], \
            f"{extra}: expected one 'error: ...' line naming {named!r}, got {result.stderr!r}"
    assert not os.path.exists(bad), "a rejected export left a file behind"


def test_eval_matches_pytorch(setup):
    out = os.path.join(setup.work, "eval")
    result = run([setup.cli, "eval", "--model", setup.exported_model(), "--data", f"idx:{setup.data_dir}",
                  "--split", "test", "--save-logits", "--out", out, "--threads", "1"])
    assert result.returncode == 0, f"robustlens eval exited {result.returncode}: {result.stdout}{result.stderr}"
    with open(os.path.join(out, "logits.csv")) as csv:
        rows = [[float(v) for v in line.split(",")] for line in csv if line.strip()]
    assert len(rows) == TEST_IMAGES and all(len(row) == len(CLASS_NAMES) for row in rows), \
        f"logits.csv: expected {TEST_IMAGES} rows of {len(CLASS_NAMES)} values"
    robustlens_logits = torch.tensor(rows)
    expected, _ = setup.eager(setup.test_images)
    difference = (robustlens_logits - expected).abs().max().item()
    assert difference < 1e-4, f"robustlens's logits differ from PyTorch's by {difference}"
    predictions = expected.argmax(1)
    assert torch.equal(robustlens_logits.argmax(1), predictions), "robustlens predicts other classes than PyTorch"
    with open(os.path.join(out, "eval.json")) as record:
        accuracy = json.load(record)["accuracy"]
    expected_accuracy = predictions.eq(setup.test_labels).double().mean().item()
    assert 0 <= accuracy <= 1 and abs(accuracy - expected_accuracy) < 1e-9, \
        f"eval.json accuracy {accuracy}, PyTorch {expected_accuracy}"


def test_info_reports_torchscript(setup):
    result = run([setup.cli, "info", "--model", setup.exported_model()])
    assert result.returncode == 0, f"robustlens info exited {result.returncode}: {result.stderr}"
    assert "torchscript" in result.stdout, f"info does not mention torchscript: {result.stdout!r}"
    missing = [name for name in CLASS_NAMES if name not in result.stdout]
    assert not missing, f"info does not show the stored class names {missing}: {result.stdout!r}"


HELPER_TESTS = [test_export_stores_metadata_and_reproduces_pytorch, test_helper_rejects_bad_input]
CLI_TESTS = [test_eval_matches_pytorch, test_info_reports_torchscript]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--robustlens", help="the robustlens binary (required unless --skip-cli)")
    parser.add_argument("--helper", default=os.path.join(REPO, "python", "export_torchscript.py"),
                        help="the export helper (default: python/export_torchscript.py of this repository)")
    parser.add_argument("--skip-cli", action="store_true", help="skip the tests that run the robustlens binary")
    args = parser.parse_args()
    if not args.skip_cli and not (args.robustlens and os.access(args.robustlens, os.X_OK)):
        parser.error(f"--robustlens: expected an executable robustlens binary, got {args.robustlens!r}")

    tests = HELPER_TESTS + ([] if args.skip_cli else CLI_TESTS)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="robustlens-export-test-") as work:
        setup = Setup(work, os.path.abspath(args.helper), args.robustlens and os.path.abspath(args.robustlens))
        for test in tests:
            try:
                test(setup)
                print(f"PASS {test.__name__}")
            except AssertionError as error:
                failed += 1
                print(f"FAIL {test.__name__}: {error}")
            except Exception:  # an unexpected error: the traceback is the useful report
                failed += 1
                print(f"FAIL {test.__name__}:\n{traceback.format_exc()}")
    if args.skip_cli:
        print(f"skipped (--skip-cli): {', '.join(test.__name__ for test in CLI_TESTS)}")
    print(f"{len(tests) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
