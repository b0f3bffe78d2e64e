"""`import robustlens` against the command line: the same numbers for the same model, data and seed.

    PYTHONPATH=build/python /usr/bin/python3 -m pytest -q tests/python/test_module.py

The data are small 12×12 images written as idx files for the command line and handed to Python as tensors (the
idx reader divides the bytes by 255 in float32, as torch does, so both see the same pixels). The model is a small
CNN given to Python as a torch.nn.Module, which robustlens traces; the command line gets the same trace saved.
"""

import gzip
import json
import math
import os
import random
import struct
import subprocess
import threading

import pytest
import torch

import robustlens

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.environ.get("ROBUSTLENS", os.path.join(REPO, "build", "tools", "robustlens", "robustlens"))
SIDE, CLASSES = 12, 3
# Keys whose values name where things are or how long they took, not what was computed.
VOLATILE = {"out", "data", "model", "models", "name", "seconds", "versions", "build", "path", "paths", "files",
            "maps", "threads"}


class SmallCnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.out = torch.nn.Linear(4 * 5 * 5, CLASSES)

    def forward(self, x):
        return self.out(torch.max_pool2d(torch.relu(self.conv(x)), 2).flatten(1))


def write_idx(path, data, dims, type_code=0x08):
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, type_code, len(dims)))
        for d in dims:
            f.write(struct.pack(">I", d))
        f.write(bytes(data))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """idx files of images whose class is the brightest third, the same as tensors, and the model traced."""
    folder = tmp_path_factory.mktemp("data")
    rng = random.Random(5)
    tensors = {}
    for prefix, count in (("train", 120), ("t10k", 60)):
        pixels, labels = [], []
        for _ in range(count):
            label = rng.randrange(CLASSES)
            labels.append(label)
            pixels += [min(255, max(0, int(rng.gauss(150 if (x * CLASSES) // SIDE == label else 80, 40))))
                       for y in range(SIDE) for x in range(SIDE)]
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", pixels, (count, SIDE, SIDE))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels, (count,))
        images = torch.tensor(pixels, dtype=torch.uint8).reshape(count, 1, SIDE, SIDE).float() / 255
        tensors[prefix] = (images, torch.tensor(labels))
    torch.manual_seed(0)
    model = SmallCnn().eval()
    traced = torch.jit.trace(model, tensors["t10k"][0][:8])
    model_file = str(folder / "model.pt")
    torch.jit.save(traced, model_file)
    return {"spec": f"idx:{folder}", "train": tensors["train"], "test": tensors["t10k"], "model": model,
            "model_file": model_file, "folder": folder}


def command_line(arguments, out):
    subprocess.run([CLI] + arguments + ["--out", str(out)], check=True, capture_output=True, timeout=600)


def same_numbers(python, cli, where=""):
    """Every number of the command line's record in Python's, equal; the keys that name places are skipped."""
    if isinstance(cli, dict):
        for key, value in cli.items():
            if key not in VOLATILE:
                assert key in python, f"{where}.{key} missing"
                same_numbers(python[key], value, f"{where}.{key}")
    elif isinstance(cli, list):
        assert len(python) == len(cli), f"{where}: {len(python)} items against {len(cli)}"
        for i, (p, c) in enumerate(zip(python, cli)):
            same_numbers(p, c, f"{where}[{i}]")
    elif isinstance(cli, float) and math.isnan(cli):
        assert isinstance(python, float) and math.isnan(python), where
    else:
        assert python == cli, f"{where}: {python} against {cli}"


ANALYSES = {
    "eval": {},
    "margins": {"samples": 6, "subspaces": "dct:4:4"},
    "attack": {"samples": 8, "eps": "0.1,0.3"},
    "explain": {"samples": 4, "method": "ig", "steps": 8},
    "spectral": {"samples": 12},
    "upi": {"samples": 6, "attack_samples": 6, "eps": "0.5", "passes": 2},
}


@pytest.mark.parametrize("name", sorted(ANALYSES))
def test_analysis_equals_the_command_line(setup, tmp_path, name):
    options = dict(ANALYSES[name], seed=3)
    data = {"train": setup["train"], "test": setup["test"]}
    result = getattr(robustlens, name)(setup["model"], data, progress=False, **options)
    arguments = [name, "--model", setup["model_file"], "--data", setup["spec"]]
    for keyword, value in options.items():
        arguments += ["--" + keyword.replace("_", "-"), str(value)]
    command_line(arguments, tmp_path)
    result_file = os.path.basename(next(f for f in result.files if f.endswith(".json") and os.path.basename(
        f) in {"eval.json", "margins.json", "attack.json", "explain.json", "spectral.json", "upi.json"}))
    with open(tmp_path / result_file) as f:
        cli = json.load(f)
    same_numbers(json.loads(result.to_json()), cli)
    assert isinstance(result, dict) and result["command"] == name


def test_margins_per_sample_are_tensors_equal_to_the_command_line(setup, tmp_path):
    result = robustlens.margins(setup["model"], setup["test"], samples=6, subspaces="dct:4:4", progress=False)
    command_line(["margins", "--model", setup["model_file"], "--data", setup["spec"], "--samples", "6",
                  "--subspaces", "dct:4:4"], tmp_path)
    with open(tmp_path / "margins.json") as f:
        cli = json.load(f)
    margins = result["per_subspace"][0]["margins"]
    assert isinstance(margins, torch.Tensor) and margins.shape == (6,)
    assert margins.tolist() == cli["per_subspace"][0]["margins"]


def test_a_script_module_a_model_file_and_a_spec_give_the_same_numbers(setup):
    traced = torch.jit.load(setup["model_file"])
    by_module = robustlens.eval(traced, setup["test"], progress=False)
    by_file = robustlens.eval(setup["model_file"], setup["spec"], progress=False)
    assert by_module["accuracy"] == by_file["accuracy"]


def test_training_equals_the_command_line(setup, tmp_path):
    options = {"arch": "mlp", "epochs": 1, "batch_size": 32, "seed": 1}
    result = robustlens.train(data={"train": setup["train"], "test": setup["test"]}, progress=False, **options)
    command_line(["train", "--data", setup["spec"], "--arch", "mlp", "--epochs", "1", "--batch-size", "32",
                  "--seed", "1"], tmp_path)
    with open(tmp_path / "train_log.json") as f:
        cli = json.load(f)
    same_numbers(json.loads(result.to_json())["result"], cli["result"])
    assert os.path.join(result.out, "model.pt") in result.files


def test_a_dataset_and_a_data_loader_are_read_as_the_tensors(setup):
    images, labels = setup["test"]
    dataset = torch.utils.data.TensorDataset(images, labels)
    loader = torch.utils.data.DataLoader(dataset, batch_size=7)
    expected = robustlens.eval(setup["model"], (images, labels), progress=False)["accuracy"]
    assert robustlens.eval(setup["model"], dataset, progress=False)["accuracy"] == expected
    assert robustlens.eval(setup["model"], loader, progress=False)["accuracy"] == expected


def test_bad_input_names_the_argument(setup):
    images, labels = setup["test"]
    with pytest.raises(TypeError, match="unexpected keyword argument 'sampels'"):
        robustlens.margins(setup["model"], setup["test"], sampels=3)
    with pytest.raises(ValueError, match="data argument.s test split.*\\[0,1\\]"):
        robustlens.eval(setup["model"], (images * 2, labels), progress=False)
    with pytest.raises(ValueError, match="data argument.s test split"):
        robustlens.eval(setup["model"], (images.clone().fill_(float("nan")), labels), progress=False)
    with pytest.raises(ValueError, match="data: images must be a float tensor N×C×H×W"):
        robustlens.eval(setup["model"], (images[:, 0], labels), progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        robustlens.eval(setup["model"], setup["test"], batch_size=0, progress=False)

    class WrongShape(torch.nn.Module):
        def forward(self, x):
            return x.flatten(1)[:, :CLASSES].unsqueeze(2)

    with pytest.raises(ValueError, match="model argument.*must return N×K logits"):
        robustlens.eval(WrongShape(), setup["test"], progress=False)


def test_a_module_whose_trace_differs_is_refused(setup):
    class DataDependent(SmallCnn):
        def forward(self, x):
            logits = super().forward(x)
            return logits * 2 if x.shape[0] > 1 else logits  # tracing keeps one branch

    with pytest.raises(ValueError, match="model: its trace computes other outputs"):
        robustlens.eval(DataDependent(), setup["test"], progress=False)


def test_progress_reaches_the_callback_and_ctrl_c_stops_the_work(setup, stopped_by_ctrl_c):
    seen = []
    robustlens.margins(setup["model"], setup["test"], samples=4, subspaces="dct:4:4",
                       progress=lambda *update: seen.append(update))
    assert seen and seen[-1][1] == seen[-1][2]
    stopped_by_ctrl_c(lambda: robustlens.margins(setup["model"], setup["test"], samples=60, subspaces="dct:1:1",
                                                 max_iterations=500))


def test_the_gil_is_released_while_it_computes(setup, ticks_while):
    ticks, seconds = ticks_while(lambda: robustlens.margins(setup["model"], setup["test"], samples=30,
                                                            subspaces="dct:4:2", progress=False))
    assert ticks > seconds * 100


def test_calls_from_two_threads_each_get_their_own_data(setup):
    expected = {split: robustlens.eval(setup["model"], setup[split], progress=False)["accuracy"]
                for split in ("train", "test")}
    got = {}
    threads = [threading.Thread(target=lambda s=split: got.__setitem__(
        s, robustlens.eval(setup["model"], setup[s], progress=False)["accuracy"])) for split in ("train", "test")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert got == expected and expected["train"] != expected["test"]


def test_maps_come_back_as_the_tensors_the_command_line_writes(setup, tmp_path):
    result = robustlens.explain(setup["model"], setup["test"], samples=5, progress=False)
    command_line(["explain", "--model", setup["model_file"], "--data", setup["spec"], "--samples", "5"], tmp_path)
    cli = torch.load(tmp_path / "maps.pt")
    assert set(result.tensors) == set(cli) and result.tensors["maps"].shape == (5, SIDE, SIDE)
    for key, tensor in cli.items():
        assert torch.equal(result.tensors[key], tensor), key


def test_the_summary_reaches_sys_stdout_unless_quiet(setup, capfd, tmp_path):
    # capfd sees the file descriptor too: a line printed past console::print would show there.
    shown = robustlens.eval(setup["model"], setup["test"], progress=False, out=str(tmp_path))
    printed = capfd.readouterr().out
    assert "accuracy" in printed and printed == shown.printed
    hidden = robustlens.eval(setup["model"], setup["test"], progress=False, out=str(tmp_path), quiet=True)
    assert capfd.readouterr().out == "" and hidden.printed == shown.printed


def test_an_exception_of_the_progress_callable_reaches_the_caller_as_it_is(setup):
    class OwnFailure(Exception):
        pass

    def failing(*update):
        raise OwnFailure("the progress callable's own failure")

    for command in (robustlens.eval, robustlens.audit):
        with pytest.raises(OwnFailure, match="progress callable's own failure"):
            command(setup["model"], setup["test"], progress=failing, quiet=True)


def test_info_returns_the_record_the_command_line_prints(setup):
    cli = subprocess.run([CLI, "info", "--model", setup["model_file"]], check=True, capture_output=True, text=True)
    got = robustlens.info(setup["model_file"], quiet=True)
    assert got["model"]["kind"] == "torchscript"
    assert got["model"]["parameters"] == sum(p.numel() for p in setup["model"].parameters())
    got, expected = json.loads(got.to_json()), json.loads(cli.stdout)
    # The thread count is the process's: another test's threads= may have set this one's.
    del got["versions"]["threads"], expected["versions"]["threads"]
    assert got == expected
