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

`--model FILE.py:FUNCTION` names a function that returns an nn.Module. If that
module has a method `latent(x)` (its penultimate representation), the file
exposes it too, which enables robustlens's latent analyses.

Exit status: 0 on success, 2 on bad input (one `error: ...` line), 1 if the
saved file does not reproduce the eager logits.
"""

import argparse
import importlib.util
import os
import sys
import tempfile
from typing import List

import torch
from torch import nn


class ExportError(Exception):
    """Bad input: reported as one line and exit status 2."""


class Normalised(nn.Module):
    """model((x - mean) / std), so that the exported model takes [0, 1] pixels."""

    def __init__(self, model: nn.Module, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.model = model
        self.register_buffer("mean", mean.view(1, -1, 1, 1))
        self.register_buffer("std", std.view(1, -1, 1, 1))

    def forward(self, x):
        return self.model((x - self.mean) / self.std)

    def latent(self, x):
        return self.model.latent((x - self.mean) / self.std)


class WithMetadata(nn.Module):
    """Outer scripted module: carries the metadata robustlens reads."""

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


def parse_numbers(text: str, what: str, kind=float) -> list:
    try:
        values = [kind(part) for part in text.split(",")]
    except ValueError:
        raise ExportError(f"{what}: '{text}' is not a comma list of numbers") from None
    return values


def load_builder(spec: str):
    path, sep, function = spec.rpartition(":")
    if not sep or not path or not function:
        raise ExportError(f"--model: expected FILE.py:FUNCTION, got '{spec}'")
    if not os.path.isfile(path):
        raise ExportError(f"--model: file '{path}' does not exist")
    module_spec = importlib.util.spec_from_file_location("robustlens_user_model", path)
    module = importlib.util.module_from_spec(module_spec)
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    module_spec.loader.exec_module(module)
    if not callable(getattr(module, function, None)):
        raise ExportError(f"--model: '{path}' has no function named '{function}'")
    return getattr(module, function)


def per_channel(values: list, channels: int, what: str) -> torch.Tensor:
    if len(values) == 1:
        values = values * channels
    if len(values) != channels:
        raise ExportError(f"{what}: expected 1 or {channels} values (one per channel), got {len(values)}")
    if what == "--std" and any(v <= 0 for v in values):
        raise ExportError(f"--std: values must be > 0, got {values}")
    return torch.tensor(values, dtype=torch.float32)


def export(args) -> int:
    shape = parse_numbers(args.input_shape, "--input-shape", int)
    if len(shape) != 3 or any(v <= 0 for v in shape):
        raise ExportError(f"--input-shape: expected three positive integers C,H,W, got '{args.input_shape}'")
    model = load_builder(args.model)()
    if not isinstance(model, nn.Module):
        raise ExportError(f"--model: '{args.model}' returned {type(model).__name__}, expected an nn.Module")
    if args.weights:
        if not os.path.isfile(args.weights):
            raise ExportError(f"--weights: file '{args.weights}' does not exist")
        model.load_state_dict(torch.load(args.weights, map_location="cpu"))
    model.eval()
    wrapped = Normalised(model, per_channel(parse_numbers(args.mean, "--mean"), shape[0], "--mean"),
                         per_channel(parse_numbers(args.std, "--std"), shape[0], "--std")).eval()
    has_latent = callable(getattr(model, "latent", None))

    torch.manual_seed(args.seed)
    images = torch.rand(args.check_samples, *shape)
    with torch.no_grad():
        logits = wrapped(images)
    if logits.dim() != 2 or logits.shape[0] != args.check_samples:
        raise ExportError(f"the model must return N x K logits for N = {args.check_samples} images, "
                          f"got a tensor of shape {tuple(logits.shape)}")
    classes = logits.shape[1]
    names = args.class_names.split(",") if args.class_names else []
    if names and len(names) != classes:
        raise ExportError(f"--class-names: the model has {classes} classes but {len(names)} names were given")

    with torch.no_grad():
        if args.method == "script":
            inner = torch.jit.script(wrapped)
        elif has_latent:
            inner = torch.jit.trace_module(wrapped, {"forward": images, "latent": images})
        else:
            inner = torch.jit.trace(wrapped, images)
    outer_type = WithMetadataAndLatent if has_latent else WithMetadata
    scripted = torch.jit.script(outer_type(inner, shape, names))

    # Write beside the target and rename: never a half-written file under --out.
    directory = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, suffix=".tmp")
    os.close(handle)
    try:
        torch.jit.save(scripted, temporary)
        reloaded = torch.jit.load(temporary)
        with torch.no_grad():
            difference = (reloaded(images) - logits).abs().max().item()
        tolerance = max(1e-4, 1e-5 * logits.abs().max().item())
        if difference > tolerance:
            print(f"error: the saved model's logits differ from the eager model's by {difference:.3g} "
                  f"(tolerance {tolerance:.3g}); try --method script", file=sys.stderr)
            return 1
        os.replace(temporary, args.out)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    print(f"wrote {args.out}: input {shape[0]}x{shape[1]}x{shape[2]}, {classes} classes, {args.method}, "
          f"latent {'yes' if has_latent else 'no'}, max |logit difference| {difference:.2g}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="FILE.py:FUNCTION returning an nn.Module")
    parser.add_argument("--weights", help="state_dict to load (torch.save of model.state_dict())")
    parser.add_argument("--input-shape", required=True, help="C,H,W of the input images")
    parser.add_argument("--mean", default="0", help="per-channel mean subtracted inside the model (default 0)")
    parser.add_argument("--std", default="1", help="per-channel std divided inside the model (default 1)")
    parser.add_argument("--class-names", default="", help="comma list of class names")
    parser.add_argument("--method", choices=["trace", "script"], default="trace")
    parser.add_argument("--out", required=True, help="TorchScript file to write")
    parser.add_argument("--check-samples", type=int, default=16, help="random images for the logits check")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        return export(args)
    except ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
