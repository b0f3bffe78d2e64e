"""robustlens from Python: every subcommand of the command-line tool as a function, on PyTorch models and tensors.

    import robustlens, torch
    result = robustlens.margins(model, (images, labels), samples=20, seed=0)
    result["per_subspace"][0]["margins"]      # a tensor: one margin per image
    result.to_json()                          # the record the command line writes, as text

Each function runs the command line's own code in this process (the C++ module _robustlens), with the same options
under the same names (--batch-size is batch_size=) and the same defaults, so its numbers are the command line's.
`model` is a torch.jit.ScriptModule, a torch.nn.Module (traced on `example_input`, by default the first images of
`data`, and refused where the trace computes something else), or the path of a model file. `data` is a pair of
tensors (images N×C×H×W in [0,1], labels N), a torch.utils.data.Dataset or DataLoader yielding such pairs (one
dataset serves as both the train and the test split), a dict {"train": ..., "test": ...} of them, or a dataset
spec of the command line ("fashion-mnist").

The library's attacks and attributions work on a batch without a command around them and return tensors:
deepfool, pgd, fgsm, fmn, minimal_perturbation and attribute. They call `model` as it is (any torch.nn.Module or
function from images to logits; nothing is traced). See docs/python.md.
"""

import atexit
import contextlib
import inspect
import json
import keyword as python_keywords
import os
import re
import shutil
import sys
import tempfile
import threading

import torch

from . import _robustlens

__version__ = _robustlens.__version__

# A pip-installed package carries the audit report's scripts (setup.py); a build's module finds them in its checkout.
_WEB_ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web")
if os.path.isdir(_WEB_ASSETS):
    os.environ.setdefault("ROBUSTLENS_WEB_ASSETS", _WEB_ASSETS)

# The file each command writes its record to, where the analysis registry does not say.
_RESULT_FILES = {
    "train": "train_log.json",
    "train-vae": "train_log.json",
    "train-denoiser": "train_log.json",
    "corruptions": "corruptions.json",
    "sweep": "sweep.json",
    "audit": "audit.json",
}
# The tensor files (core/files.h: write_tensors, a dict for torch.load) each command writes beside its record.
_TENSOR_FILES = {"explain": "maps.pt", "upi": "perturbations.pt", "attack": "adversarial.pt"}
# Options the Python side gives itself from `model` and `data`.
_MANAGED = {"--model", "--data"}
_temporary_folders = []
# The held datasets, the sinks of progress and printing and LibTorch's thread count are the process's, and a library
# function switches its model's modes: one call at a time. Reentrant, so that a progress callable may call a
# library function.
_one_command = threading.RLock()


@atexit.register
def _remove_temporary_folders():
    for folder in _temporary_folders:
        shutil.rmtree(folder, ignore_errors=True)


class Result(dict):
    """A command's record: the JSON the command line writes, with lists of numbers as torch tensors.

    out is the output folder (a temporary one, removed when Python exits, unless out= was given) and files the
    paths of what the command wrote there; to_json() returns the record exactly as written. tensors holds the tensor
    file the command wrote, if any (explain's maps.pt, upi's perturbations.pt, attack's adversarial.pt with
    save_examples=True), as torch.load reads it: {"maps": ..., "raw_maps": ..., ...}. printed is the summary the
    command printed (shown on sys.stdout unless quiet=True).
    """

    def __init__(self, text, out, printed, tensor_file=None):
        super().__init__(_with_tensors(json.loads(text)))
        self._text = text
        self.out = out
        self.printed = printed
        self.files = sorted(os.path.join(root, name) for root, _, names in os.walk(out) for name in names) if out else []
        path = os.path.join(out, tensor_file) if out and tensor_file else None
        self.tensors = torch.load(path) if path and os.path.isfile(path) else {}

    def to_json(self):
        return self._text


def _with_tensors(value):
    """The JSON value with every list of numbers (or of equally long lists of numbers) as a tensor."""
    if isinstance(value, dict):
        return {key: _with_tensors(item) for key, item in value.items()}
    if not isinstance(value, list):
        return value
    numbers = [item for item in value if isinstance(item, (int, float)) and not isinstance(item, bool)]
    if value and len(numbers) == len(value):
        return torch.tensor(value, dtype=torch.int64 if all(isinstance(v, int) for v in value) else torch.float64)
    if value and all(isinstance(item, bool) for item in value):
        return torch.tensor(value, dtype=torch.bool)
    items = [_with_tensors(item) for item in value]
    if items and all(isinstance(i, torch.Tensor) and i.dim() == 1 for i in items):
        if len({(i.numel(), i.dtype) for i in items}) == 1:
            return torch.stack(items)
    return items


class _Progress:
    """The C++ progress callback (task, done, total, status) as tqdm bars when tqdm is installed, else a line
    redrawn on stderr."""

    def __init__(self):
        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
        self._tqdm, self._bar, self._task = tqdm, None, None

    def __call__(self, task, done, total, status):
        if task != self._task:
            self.close()
            self._task = task
            if self._tqdm is not None:
                self._bar = self._tqdm(total=total, desc=task, leave=False)
        if self._bar is not None:
            self._bar.update(done - self._bar.n)
            if status:
                self._bar.set_postfix_str(status, refresh=False)
        elif sys.stderr is not None:
            width = 30
            filled = int(width * min(1.0, done / total)) if total > 0 else 0
            sys.stderr.write(f"\r{task} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {status}")
            if total > 0 and done >= total:
                sys.stderr.write("\n")
            sys.stderr.flush()

    def close(self):
        if self._bar is not None:
            self._bar.close()
        self._bar = None


def _traced(module, example, argument):
    """A TorchScript trace of `module` on `example`, refused where it computes something else than the module
    (data-dependent control flow that tracing bakes in)."""
    was_training = module.training
    module.eval()
    example = _on_device_of(module, example)
    try:
        with torch.no_grad():
            try:
                traced = torch.jit.trace(module, example, check_trace=False)
            except Exception as error:
                raise ValueError(f"{argument}: torch.jit.trace failed ({error}); pass a torch.jit.ScriptModule "
                                 "(torch.jit.script) instead") from error
            for batch in (example, example[:1]):
                expected, got = module(batch), traced(batch)
                if not isinstance(got, torch.Tensor) or expected.shape != got.shape or not torch.allclose(
                        expected, got, rtol=1e-5, atol=1e-6, equal_nan=True):
                    raise ValueError(
                        f"{argument}: its trace computes other outputs than the module on a batch of "
                        f"{batch.shape[0]} (tracing fixes control flow and shapes that depend on the input); pass a "
                        "torch.jit.ScriptModule (torch.jit.script) instead")
    finally:
        module.train(was_training)
    return traced


def _model_file(model, example, folder, argument):
    """The path of a model file for `model`: a path as it is, a module saved (traced if need be) into `folder`."""
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model)
    if isinstance(model, torch.jit.ScriptModule):
        script = model
    elif isinstance(model, torch.nn.Module):
        if example is None:
            raise ValueError(f"{argument}: a torch.nn.Module is traced on an example batch: give example_input= "
                             "or data as tensors")
        script = _traced(model, example, argument)
    else:
        raise TypeError(f"{argument}: expected a torch.jit.ScriptModule, a torch.nn.Module or a model file's path, "
                        f"got {type(model).__name__}")
    path = os.path.join(folder, f"{argument}-{len(os.listdir(folder))}.pt")
    torch.jit.save(script, path)
    return path


def _tensors(data, argument):
    """(images, labels) from a pair of tensors, a Dataset or a DataLoader, checked for shape and type."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        images, labels = data
    elif isinstance(data, torch.utils.data.DataLoader) or isinstance(data, torch.utils.data.Dataset):
        batches = data if isinstance(data, torch.utils.data.DataLoader) else torch.utils.data.DataLoader(
            data, batch_size=256)
        image_parts, label_parts = [], []
        for batch in batches:
            if not (isinstance(batch, (tuple, list)) and len(batch) >= 2):
                raise ValueError(f"{argument}: expected batches of (images, labels), got {type(batch).__name__}")
            image_parts.append(batch[0])
            label_parts.append(torch.as_tensor(batch[1]))
        if not image_parts:
            raise ValueError(f"{argument}: the dataset is empty")
        images, labels = torch.cat(image_parts), torch.cat(label_parts)
    else:
        raise TypeError(f"{argument}: expected (images, labels) tensors, a torch.utils.data.Dataset or DataLoader, "
                        f"or a dataset spec string, got {type(data).__name__}")
    if images.dim() != 4 or not images.is_floating_point():
        raise ValueError(f"{argument}: images must be a float tensor N×C×H×W, got {images.dtype} of shape "
                         f"{tuple(images.shape)}")
    if labels.dim() != 1 or labels.shape[0] != images.shape[0] or labels.is_floating_point():
        raise ValueError(f"{argument}: labels must be N integers for N = {images.shape[0]} images, got "
                         f"{labels.dtype} of shape {tuple(labels.shape)}")
    return images.detach().to("cpu", torch.float32).contiguous(), labels.detach().to("cpu", torch.int64).contiguous()


def _splits(data):
    """The train and test splits of `data`: a dict of both, or one dataset for both."""
    if isinstance(data, dict):
        unknown = set(data) - {"train", "test"}
        if unknown or not data:
            raise ValueError(f"data: a dict of splits takes the keys train and test, got {sorted(data)}")
        splits = {split: _tensors(value, f"data['{split}']") for split, value in data.items()}
        return {"train": splits.get("train", splits.get("test")), "test": splits.get("test", splits.get("train"))}
    one = _tensors(data, "data")
    return {"train": one, "test": one}


def _output_count(model, example):
    """The model's number of outputs (classes) on the example, where it can be run here (in eval mode, as robustlens
    runs it: batch normalisation's running statistics stay as they are)."""
    if example is None or isinstance(model, (str, os.PathLike)):
        return None
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return int(model(_on_device_of(model, example[:1])).shape[-1])
    finally:
        model.train(was_training)


def _on_device_of(module, images):
    """`images` on the device of the module's first parameter (a model on a GPU is traced there)."""
    parameter = next(iter(module.parameters()), None)
    return images if parameter is None else images.to(parameter.device)


def _keyword(flag):
    """The keyword of a flag: --batch-size is batch_size, --lambda (a Python keyword) lambda_."""
    name = flag[2:].replace("-", "_")
    return name + "_" if python_keywords.iskeyword(name) else name


def _in_python_terms(message, options, model_files):
    """A command-line message in the caller's terms: each flag it names (--batch-size) as the keyword that sets it
    (batch_size), the model files saved here as the model argument, memory:data as the data argument."""
    flags = {option["flag"] for option in options} | _MANAGED
    message = re.sub(r"--[a-z][a-z0-9-]*", lambda m: _keyword(m.group(0)) if m.group(0) in flags else m.group(0),
                     message)
    for path, argument in model_files.items():
        message = message.replace(f"'{path}'", f"({argument})")
    return re.sub(r"'memory:data \((\w+)\)'", r"(the data argument's \1 split)", message)


def _make_command(name, description):
    options = description["options"]
    # torchrun starts processes, not functions: the data-parallel options stay the command line's.
    by_keyword = {_keyword(option["flag"]): option for option in options
                  if option["flag"] not in _MANAGED and not option["group"].startswith("Data-parallel")}
    takes = {option["flag"] for option in options}
    result_file = description["result_file"] or _RESULT_FILES.get(name)

    def command(model=None, data=None, *, example_input=None, class_names=None, progress=True, quiet=False,
                **keywords):
        for keyword in keywords:
            if keyword not in by_keyword:
                raise TypeError(f"robustlens.{function_name}() got an unexpected keyword argument '{keyword}' "
                                f"(its options: {', '.join(sorted(by_keyword))})")
        keywords = {keyword: value for keyword, value in keywords.items() if value is not None}
        arguments, datasets, saved = [name], [], {}
        models_given = [] if model is None else list(model) if isinstance(model, (list, tuple)) else [model]
        out = keywords.get("out")
        if out is None and "--out" in takes:
            out = tempfile.mkdtemp(prefix=f"robustlens-{name}-")
            _temporary_folders.append(out)
            keywords["out"] = out
        with tempfile.TemporaryDirectory(prefix="robustlens-models-") as models:
            example = example_input
            if data is not None:
                if "--data" not in takes:
                    raise TypeError(f"robustlens.{function_name}() takes no data")
                if isinstance(data, (str, os.PathLike)):
                    arguments += ["--data", os.fspath(data)]
                else:
                    splits = _splits(data)
                    example = splits["test"][0][:8] if example is None else example
                    classes = class_names
                    if classes is None:
                        counts = [_output_count(m, example) for m in models_given]
                        counts = [c for c in counts if c is not None]
                        labelled = max(int(t[1].max()) + 1 if t[1].numel() else 0 for t in splits.values())
                        classes = [str(k) for k in range(max(counts + [labelled]))]
                    datasets = [("data", split, t[0], t[1], list(classes)) for split, t in splits.items()]
                    arguments += ["--data", "memory:data"]
            if models_given and "--model" not in takes:
                raise TypeError(f"robustlens.{function_name}() takes no model")
            for i, one in enumerate(models_given):
                path = _model_file(one, example, models, "model")
                if path != one:
                    saved[path] = "the model argument" + (f" [{i}]" if len(models_given) > 1 else "")
                arguments += ["--model", path]
            for keyword, value in keywords.items():
                option = by_keyword[keyword]
                if not option["takes_value"]:
                    if value:
                        arguments.append(option["flag"])
                    continue
                values = value if isinstance(value, (list, tuple)) else [value]
                for one in values:
                    arguments += [option["flag"], str(one).lower() if isinstance(one, bool) else str(one)]
            printed = []

            def output(text):
                printed.append(text)
                if not quiet and sys.stdout is not None:
                    sys.stdout.write(text)
            try:
                with _progress_bar(progress) as bar, _one_command:
                    _robustlens.run(arguments, datasets, bar, output)
            except ValueError as error:
                raise ValueError(_in_python_terms(str(error), options, saved)) from None
        if name == "info":  # its record is what it prints
            return Result("".join(printed), None, "".join(printed))
        if result_file is None or out is None:
            return None
        with open(os.path.join(out, result_file)) as f:
            return Result(f.read(), out, "".join(printed), _TENSOR_FILES.get(name))

    function_name = name.replace("-", "_")
    command.__name__ = command.__qualname__ = function_name
    lines = [description["description"], "",
             "model: torch.jit.ScriptModule, torch.nn.Module (traced on example_input) or model file path; data: "
             "(images, labels) tensors, a Dataset or DataLoader, or a dataset spec string. progress: True (a bar), "
             "False or f(task, done, total, status); quiet: True keeps the printed summary off sys.stdout (it is in "
             "the result's printed). Options (None: the command line's default):"]
    for keyword, option in by_keyword.items():
        default = f" (default {option['default']})" if option["default"] else ""
        lines.append(f"  {keyword}: {option['description']}{default}")
    command.__doc__ = "\n".join(lines)
    parameters = [inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None),
                  inspect.Parameter("data", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)]
    for keyword in ("example_input", "class_names"):
        parameters.append(inspect.Parameter(keyword, inspect.Parameter.KEYWORD_ONLY, default=None))
    parameters.append(inspect.Parameter("progress", inspect.Parameter.KEYWORD_ONLY, default=True))
    parameters.append(inspect.Parameter("quiet", inspect.Parameter.KEYWORD_ONLY, default=False))
    for keyword in by_keyword:
        parameters.append(inspect.Parameter(keyword, inspect.Parameter.KEYWORD_ONLY, default=None))
    command.__signature__ = inspect.Signature(parameters)
    return command


def _make_commands():
    names = []
    for name, description in json.loads(_robustlens.describe_commands()).items():
        function = _make_command(name, description)
        globals()[function.__name__] = function
        names.append(function.__name__)
    return names


# The library's attacks and attributions, on a batch, returning tensors (python/library_bindings.cpp); those that
# report progress take progress= as the commands do.
_LIBRARY_FUNCTIONS = {"deepfool": True, "pgd": False, "fgsm": False, "fmn": True, "minimal_perturbation": True,
                      "attribute": False}


@contextlib.contextmanager
def _progress_bar(progress):
    """The progress callback for progress= while the call runs: a callable as it is, True a bar (closed at the end),
    False none."""
    bar = progress if callable(progress) else _Progress() if progress else None
    try:
        yield bar
    finally:
        if isinstance(bar, _Progress):
            bar.close()


def _library_function(name, reports_progress):
    native = getattr(_robustlens, name)

    def function(*arguments, **keywords):
        if not reports_progress:
            with _one_command:
                return native(*arguments, **keywords)
        with _progress_bar(keywords.pop("progress", True)) as bar, _one_command:
            return native(*arguments, progress=bar, **keywords)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = native.__doc__.replace("at::Tensor", "torch.Tensor").replace(
        "progress: object = None", "progress=True")
    return function


for _name, _reports_progress in _LIBRARY_FUNCTIONS.items():
    globals()[_name] = _library_function(_name, _reports_progress)

__all__ = ["Result"] + _make_commands() + list(_LIBRARY_FUNCTIONS)
