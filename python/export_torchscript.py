#!/usr/bin/python3
"""Export a PyTorch classifier to a TorchScript file robustlens can load.

robustlens models take float32 images N x C x H x W with pixels in [0, 1] and
return logits N x K; normalisation lives inside the model. This helper wraps
your model with its normalisation, traces (or scripts) it, stores the input
shape and class names in the file, reloads the saved file and checks that it
gives the same logits as the eager model.

Example (Debian's PyTorch runs with /usr/bin/python3):

    /usr/bin/python3 python/export_torchscript.py \\
        --model my_models.py:build_net --weights net.pth \\
        --input-shape 1,28,28 --mean 0.2860 --std 0.3530 \\
        --class-names T-shirt,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Boot \\
        --out net.ts
    robustlens eval --model net.ts --data fashion-mnist

`--model FILE.py:FUNCTION` names a function that returns an nn.Module taking
normalised images; `--weights` is a state_dict for it (torch.save of
model.state_dict()). `--mean`/`--std` take one value per channel or one for
all. If the module has a method `latent(x)` returning N x P features (its
penultimate representation), the file exposes it too, which enables
robustlens's latent analyses. `--method script` compiles the model instead of
tracing it; use it when the forward pass has data-dependent control flow.

The saved file carries two attributes robustlens reads:
robustlens_input_shape (List[int], C,H,W) and robustlens_class_names
(List[str], empty when --class-names is not given).

Exit status: 0 on success, 2 on bad input (one `error: ...` line on stderr),
1 if the saved file fails or does not reproduce the eager model's outputs
(then --out is left as it was).
"""

import argparse
import importlib.util
import math
import os
import sys
import tempfile
from collections.abc import Mapping
from typing import List

import torch
from torch import nn


class ExportError(Exception):
    """Bad input: reported as one `error: ...` line and exit status 2."""


class CheckFailed(Exception):
    """The saved file does not reproduce the eager model: reported as one `error: ...` line and exit status 1."""


class Normalised(nn.Module):
    """model((x - mean) / std), so that the exported model takes [0, 1] pixels."""

    def __init__(self, model: nn.Module, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.model = model
        # Buffers, not constants: they are saved with the module and follow it across devices.
        self.register_buffer("mean", mean.view(1, -1, 1, 1))
        self.register_buffer("std", std.view(1, -1, 1, 1))

    def forward(self, x):
        return self.model((x - self.mean) / self.std)

    # Only compiled when the outer module's latent() calls it, i.e. when the user's model has one.
    def latent(self, x):
        return self.model.latent((x - self.mean) / self.std)


class WithMetadata(nn.Module):
    """Scripted top-level module: carries the attributes robustlens reads, delegates to the export."""

    robustlens_input_shape: List[int]
    robustlens_class_names: List[str]

    def __init__(self, inner, input_shape: List[int], class_names: List[str]):
        super().__init__()
        self.inner = inner
        self.robustlens_input_shape = input_shape
        self.robustlens_class_names = class_names

    def forward(self, x):
        return self.inner(x)


class WithMetadataAndLatent(WithMetadata):
    @torch.jit.export
    def latent(self, x):
        return self.inner.latent(x)


def parse_list(text: str, option: str, kind, expected: str) -> list:
    try:
        return [kind(part) for part in text.split(",")]
    except ValueError:
        raise ExportError(f"{option}: expected {expected}, got '{text}'") from None


def per_channel(text: str, option: str, channels: int) -> torch.Tensor:
    values = parse_list(text, option, float, "a comma list of numbers")
    if len(values) == 1:
        values = values * channels
    if len(values) != channels:
        expected = "1 value" if channels == 1 else f"1 or {channels} values (one per channel)"
        raise ExportError(f"{option}: expected {expected} for {channels} channel(s), got {len(values)} in '{text}'")
    if not all(math.isfinite(v) for v in values) or (option == "--std" and any(v <= 0 for v in values)):
        wanted = "positive numbers" if option == "--std" else "finite numbers"
        raise ExportError(f"{option}: expected {wanted}, got '{text}'")
    return torch.tensor(values, dtype=torch.float32)


def load_builder(spec: str):
    path, sep, function = spec.rpartition(":")
    if not sep or not path or not function:
        raise ExportError(f"--model: expected FILE.py:FUNCTION, got '{spec}'")
    if not os.path.isfile(path):
        raise ExportError(f"--model: file '{path}' does not exist")
    module_spec = importlib.util.spec_from_file_location("robustlens_user_model", path)
    if module_spec is None:
        raise ExportError(f"--model: '{path}' is not a Python source file (expected FILE.py:FUNCTION)")
    module = importlib.util.module_from_spec(module_spec)
    # Lets the user's file import the modules beside it, as it would when run as a script.
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    module_spec.loader.exec_module(module)
    builder = getattr(module, function, None)
    if not callable(builder):
        raise ExportError(f"--model: '{path}' has no function named '{function}'")
    return builder


def load_weights(model: nn.Module, path: str) -> None:
    if not os.path.isfile(path):
        raise ExportError(f"--weights: file '{path}' does not exist")
    try:
        state = torch.load(path, map_location="cpu")
    except Exception as error:  # torch.load raises many types for a file it cannot read
        raise ExportError(f"--weights: cannot read '{path}': {one_line(error)}") from None
    if not isinstance(state, Mapping):
        raise ExportError(f"--weights: '{path}' holds {type(state).__name__}, expected a state_dict "
                          "(torch.save(model.state_dict(), PATH))")
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ExportError(f"--weights: '{path}' does not fit the model: {one_line(error)}") from None


def one_line(error: Exception, limit: int = 300) -> str:
    """PyTorch's message as one line, cut to `limit` characters.

    Errors raised inside TorchScript carry the interpreter's traceback first; their last line
    (`RuntimeError: ...`) is the one that says what went wrong.
    """
    text = str(error).strip()
    if text.startswith("The following operation failed in the TorchScript interpreter"):
        text = text.splitlines()[-1]
    text = " ".join(text.split()) or type(error).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check_output(name: str, output, samples: int, what: str) -> int:
    """The width of an N x width output, or an ExportError saying what the model returned instead."""
    if not isinstance(output, torch.Tensor):
        raise ExportError(f"the model's {name}() must return a Tensor of {what}, got {type(output).__name__}")
    if output.dim() != 2 or output.shape[0] != samples:
        raise ExportError(f"the model's {name}() must return {what} (2-D, N = {samples} rows) for "
                          f"{samples} images, got a tensor of shape {tuple(output.shape)}")
    return output.shape[1]


def check_saved(saved, wrapped: Normalised, method: str, images: torch.Tensor, expected: torch.Tensor) -> float:
    """Largest |saved - eager| of `method` over the check batch and over a batch of one image.

    The second batch matters because robustlens feeds batches of any size and tracing can bake the
    check batch's size into the graph. Raises CheckFailed when the saved module fails or differs by
    more than max(1e-4, 1e-5 * max |eager output|).
    """
    try:
        with torch.no_grad():
            whole = (getattr(saved, method)(images) - expected).abs().max().item()
            single = (getattr(saved, method)(images[:1]) - getattr(wrapped, method)(images[:1])).abs().max().item()
    except RuntimeError as error:
        raise CheckFailed(f"the saved model's {method}() fails on a batch of {len(images)} or of 1 image(s): "
                          f"{one_line(error)}; try --method script") from None
    difference = max(whole, single)
    tolerance = max(1e-4, 1e-5 * expected.abs().max().item())
    if not difference <= tolerance:  # also catches NaN
        raise CheckFailed(f"the saved model's {method}() differs from the eager model's by {difference:.3g} "
                          f"(tolerance {tolerance:.3g}); try --method script")
    return difference


def export(args) -> int:
    shape = parse_list(args.input_shape, "--input-shape", int, "three positive integers C,H,W")
    if len(shape) != 3 or any(v <= 0 for v in shape):
        raise ExportError(f"--input-shape: expected three positive integers C,H,W, got '{args.input_shape}'")
    if args.check_samples < 1:
        raise ExportError(f"--check-samples: expected a positive integer, got {args.check_samples}")
    if os.path.isdir(args.out):
        raise ExportError(f"--out: '{args.out}' is a directory, expected a file path")
    names = args.class_names.split(",") if args.class_names else []
    if any(not name for name in names):
        raise ExportError(f"--class-names: expected non-empty comma-separated names, got '{args.class_names}'")
    mean = per_channel(args.mean, "--mean", shape[0])
    std = per_channel(args.std, "--std", shape[0])

    model = load_builder(args.model)()
    if not isinstance(model, nn.Module):
        raise ExportError(f"--model: '{args.model}' returned {type(model).__name__}, expected an nn.Module")
    if args.weights:
        load_weights(model, args.weights)
    wrapped = Normalised(model, mean, std).eval()
    has_latent = callable(getattr(model, "latent", None))

    torch.manual_seed(args.seed)
    images = torch.rand(args.check_samples, *shape)
    try:
        with torch.no_grad():
            logits = wrapped(images)
            latent = wrapped.latent(images) if has_latent else None
    except RuntimeError as error:
        batch = "x".join(map(str, images.shape))
        raise ExportError(f"the model fails on a batch of {batch} images (is --input-shape right?): "
                          f"{one_line(error)}") from None
    classes = check_output("forward", logits, args.check_samples, "N x K logits")
    if has_latent:
        check_output("latent", latent, args.check_samples, "N x P features")
    if names and len(names) != classes:
        raise ExportError(f"--class-names: expected {classes} names (the model has {classes} classes), "
                          f"got {len(names)}")

    with torch.no_grad():
        if args.method == "script":
            inner = torch.jit.script(wrapped)
        else:
            inner = torch.jit.trace_module(wrapped, {"forward": images, "latent": images} if has_latent
                                           else {"forward": images})
    outer_type = WithMetadataAndLatent if has_latent else WithMetadata
    scripted = torch.jit.script(outer_type(inner, shape, names))

    # Written beside the target and renamed: --out never holds a half-written or unchecked file.
    directory = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".export-", suffix=".tmp")
    os.close(handle)
    try:
        torch.jit.save(scripted, temporary)
        reloaded = torch.jit.load(temporary)
        stored = (list(reloaded.robustlens_input_shape), list(reloaded.robustlens_class_names))
        if stored != (shape, names):
            raise CheckFailed(f"the saved metadata (input shape, class names) {stored} "
                              f"differs from {(shape, names)}")
        difference = check_saved(reloaded, wrapped, "forward", images, logits)
        if has_latent:
            check_saved(reloaded, wrapped, "latent", images, latent)
        os.replace(temporary, args.out)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    print(f"wrote {args.out}: input {shape[0]},{shape[1]},{shape[2]}, {classes} classes, {args.method}, "
          f"latent {'yes' if has_latent else 'no'}, max |logit difference| {difference:.3g}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="See the module docstring (python/export_torchscript.py) for an example.")
    parser.add_argument("--model", required=True, help="FILE.py:FUNCTION, a function returning an nn.Module")
    parser.add_argument("--weights", help="state_dict to load into the model (torch.save of model.state_dict())")
    parser.add_argument("--input-shape", required=True, help="C,H,W of the input images, e.g. 1,28,28")
    parser.add_argument("--mean", default="0", help="per-channel mean subtracted inside the model (default 0)")
    parser.add_argument("--std", default="1", help="per-channel std divided inside the model (default 1)")
    parser.add_argument("--class-names", default="", help="comma list of the K class names")
    parser.add_argument("--method", choices=["trace", "script"], default="trace",
                        help="torch.jit.trace (default) or torch.jit.script")
    parser.add_argument("--out", required=True, help="TorchScript file to write")
    parser.add_argument("--check-samples", type=int, default=16,
                        help="random images for the output checks (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the check images (default 0)")
    args = parser.parse_args(argv)
    try:
        return export(args)
    except ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except CheckFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
