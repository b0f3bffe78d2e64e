#!/usr/bin/env python3
"""Data-parallel consistency and failure trials (issue 22; docs/distributed.md).

Consistency: each command runs in one process, then in 2 ranks under
`torchrun --nproc_per_node=2 --no_python` (Gloo on CPU); every number of its
JSON results must equal the one-process run's within a relative 1e-5 (the
samples a rank computes in a smaller batch may round differently), and the
trained weights likewise. With a CUDA device, the same commands also run on it
against the CPU (the trial says when there is none).

Failure:
  - a bad file on one rank only: every rank exits 2, and rank 0 alone reports
    the error, naming the rank and the file;
  - a rank killed mid-training: the other exits non-zero within the timeout
    (--dist-timeout) with a message naming the failure; a rerun of both ranks
    resumes from the checkpoint and ends with the weights of an uninterrupted
    2-rank run;
  - a checkpoint that one rank does not see: every rank exits 2, and rank 0
    alone says that they would resume from different epochs.

Usage: scripts/distributed_trials.py [--work DIR] [--commands train,margins,...]
Needs /usr/bin/python3 with PyTorch (to compare weights) and torchrun.
"""
import argparse
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kill_trials import ROBUSTLENS, VOLATILE, make_data  # noqa: E402

TORCHRUN = ["torchrun", "--standalone", "--nproc_per_node=2", "--no_python",
            # Debian's torchrun fails at start without --redirects/--tee (docs/distributed.md); its agent looks at
            # the ranks every --monitor_interval seconds (5 by default, which short runs would wait out).
            "--redirects", "1", "--tee", "1", "--monitor_interval", "0.2"]
# Keys of a one-process record that a 2-rank record may differ in, besides those of kill_trials.py.
ALSO_VOLATILE = {"distributed", "seconds", "wall_seconds", "elapsed_seconds", "train_seconds"}
RELATIVE = 1e-5
# Numbers that amplify rounding: UPI's per-image map attack ascends through ReLU kinks, and the same images in
# another batch composition end elsewhere. One process with --batch-size 10 gives, bit for bit, what 2 ranks give
# splitting batches of 20, and both differ from one process with batches of 20 by 4e-4 (dissimilarity at eps 1 in
# the upi trial): the gap is the batch's, not the split's (docs/distributed.md).
LOOSER = {"per-image-attack": 1e-2}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(arguments, timeout=900):
    started = time.monotonic()
    result = subprocess.run(arguments, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    return result.returncode, result.stdout, time.monotonic() - started


def differences(one, two, path="", found=None, exact=False):
    """Where two records' numbers differ by more than RELATIVE, or at all when exact (and their other values)."""
    found = [] if found is None else found
    if isinstance(one, dict) and isinstance(two, dict):
        for key in sorted(set(one) | set(two)):
            if key in VOLATILE or key in ALSO_VOLATILE:
                continue
            if key not in one or key not in two:
                found.append(f"{path}/{key}: only in one")
            else:
                differences(one[key], two[key], f"{path}/{key}", found, exact)
    elif isinstance(one, list) and isinstance(two, list):
        if len(one) != len(two):
            found.append(f"{path}: {len(one)} against {len(two)} entries")
        for i, (a, b) in enumerate(zip(one, two)):
            differences(a, b, f"{path}[{i}]", found, exact)
    elif isinstance(one, (int, float)) and isinstance(two, (int, float)) and not isinstance(one, bool):
        tolerance = 0 if exact else max([RELATIVE] + [t for fragment, t in LOOSER.items() if fragment in path])
        close = one == two if exact else math.isclose(one, two, rel_tol=tolerance, abs_tol=1e-7)
        if not (close or (math.isnan(one) and math.isnan(two))):
            found.append(f"{path}: {one} against {two}")
    elif one != two:
        found.append(f"{path}: {one!r} against {two!r}")
    return found


def tensor_differences(file_one, file_two):
    """Where two tensor files (robustlens's write_tensors: a pickled dict) differ by more than RELATIVE."""
    import torch
    one, two = torch.load(file_one), torch.load(file_two)
    found = [f"/{k}: only in one" for k in set(one) ^ set(two)]
    for key in sorted(set(one) & set(two)):
        a, b = one[key].double(), two[key].double()
        if a.shape != b.shape or not torch.allclose(a, b, rtol=RELATIVE, atol=1e-6):
            found.append(f"/{key}: differ (largest gap {(a - b).abs().max().item() if a.shape == b.shape else 'shape'})")
    return found


def weight_difference(model_one, model_two):
    """The largest |w1 - w2| over the two model files' parameters, relative to the largest |w1|."""
    import torch
    one = dict(torch.jit.load(model_one).named_parameters())
    two = dict(torch.jit.load(model_two).named_parameters())
    assert one.keys() == two.keys(), "the models' parameters differ in name"
    largest = max(p.abs().max().item() for p in one.values())
    return max((one[k] - two[k]).abs().max().item() for k in one) / largest


def commands(model, common, denoiser, distractor_model):
    """{name: (arguments, result files)}: small runs of each command."""
    return {
        # 641 samples: each epoch ends with a batch of one row, which every rank computes and rank 0 alone counts.
        "train": (["train", "--arch", "lenet", "--epochs", "2", "--batch-size", "64", "--samples", "641",
                   "--objective", "noise", "--sigma", "0.1"] + common, ["train_log.json"]),
        "eval": (["eval", "--model", model, "--samples", "301"] + common, ["eval.json"]),
        "attack": (["attack", "--model", model, "--samples", "41", "--eps", "0.5", "--batch-size", "8",
                    "--save-examples"] + common, ["attack.json", "adversarial.pt"]),
        "margins": (["margins", "--model", model, "--samples", "13"] + common, ["margins.json"]),
        "spectral": (["spectral", "--model", model, "--samples", "64", "--batch-size", "16"] + common, ["spectral.json"]),
        "upi": (["upi", "--model", model, "--samples", "20", "--attack-samples", "40"] + common,
                ["upi.json", "perturbations.pt"]),
        # SmoothGrad draws noise for each image's copies; batches of 13 split 40 attack images 13, 13, 13, 1.
        "upi-smoothgrad": (["upi", "--model", model, "--samples", "20", "--attack-samples", "40", "--explainer",
                            "smoothgrad", "--noise-samples", "4", "--eps", "0.5", "--passes", "3", "--batch-size",
                            "13"] + common, ["upi.json", "perturbations.pt"]),
        # Batches of 8 split 21 images 8, 8, 5; SmoothGrad draws noise for each image's copies.
        "explain": (["explain", "--model", model, "--samples", "21", "--batch-size", "8", "--method", "smoothgrad",
                     "--noise-samples", "3"] + common, ["explain.json", "maps.pt"]),
        "align": (["align", "--model", model, "--denoiser", denoiser, "--samples", "21", "--batch-size", "8",
                   "--sigmas", "0.1,0.5", "--summary-sigma", "0.5"] + common, ["alignment.json"]),
        # Local PCA tangent spaces; the distractor measures (noise drawn along region x draw x image) on data whose
        # item half is known, with a model trained on it.
        "manifold": (["manifold", "--model", model, "--samples", "21", "--batch-size", "8", "--pca-neighbours", "12",
                      "--pca-dim", "3", "--eps", "0.5,2", "--draws", "2"] + common, ["manifold.json"]),
        "manifold-distractor": (["manifold", "--model", distractor_model, "--samples", "21", "--batch-size", "8",
                                 "--noise-levels", "0,0.3,1", "--noise-draws", "2"] + distractor(common),
                                ["manifold.json"]),
        # Three models on two ranks: trained side by side (rank 0 the first and third), then measured by both.
        "sweep": (["sweep", "--objective", "noise", "--strengths", "0.05,0.1,0.2", "--epochs", "1", "--samples", "300",
                   "--analysis-samples", "21", "--analysis-batch-size", "8", "--pca-neighbours", "12", "--pca-dim",
                   "3", "--denoiser", denoiser, "--sigmas", "0.5", "--summary-sigma", "0.5"] + common, ["sweep.json"]),
        # 41 images split 21 and 20; every kind of random draw: normal, uniform per pixel, per image, along the second
        # dimension (elastic's fields), and shot noise's Poisson counts, drawn whole by every rank.
        "corruptions": (["corruptions", "--model", model, "--samples", "41", "--corruptions", "gaussian-noise",
                         "shot-noise", "impulse-noise", "motion-blur", "elastic", "jpeg", "--severities", "1", "5"]
                        + common, ["corruptions.json"]),
        "latent": (["latent", "--model", model, "--samples", "200", "--train-samples", "600",
                    "--deepfool-samples", "20"] + common, ["latent.json"]),
        # A few steps only: Adam turns rounding differences into diverging weights after some ten steps (8 steps
        # of the VAE: 2e-3 apart in KL; docs/distributed.md).
        "train-vae": (["train-vae", "--epochs", "1", "--samples", "512"] + common, ["train_log.json"]),
        "train-denoiser": (["train-denoiser", "--epochs", "1", "--samples", "512"] + common, ["train_log.json"]),
        "audit": (["audit", "--quick", "--model", model] + common, ["audit.json"]),
    }


def distractor(common):
    """The common options with the data as distractor composites (manifold's distractor measures)."""
    data = common.index("--data") + 1
    return common[:data] + ["distractor:" + common[data]] + common[data + 1:]


def consistency(work, names, common, table_arguments):
    failures = []
    table = commands(*table_arguments)
    for name in names:
        arguments, results = table[name]
        one, two = os.path.join(work, name + "-1"), os.path.join(work, name + "-2")
        code_one, output_one, seconds_one = run([ROBUSTLENS] + arguments + ["--out", one])
        code_two, output_two, seconds_two = run(TORCHRUN + [ROBUSTLENS] + arguments + ["--out", two])
        if code_one != 0 or code_two != 0:
            failures.append(f"{name}: exit {code_one} (1 process) and {code_two} (2 ranks)\n{output_one}\n{output_two}")
            continue
        found = []
        for result in results:
            if result.endswith(".pt"):
                found += [f"{result}{d}" for d in tensor_differences(os.path.join(one, result), os.path.join(two, result))]
                continue
            with open(os.path.join(one, result)) as f1, open(os.path.join(two, result)) as f2:
                found += [f"{result}{d}" for d in differences(json.load(f1), json.load(f2))]
        for folder, _, files in os.walk(one):  # the trained model, or a sweep's models
            if "model.pt" not in files:
                continue
            where = os.path.relpath(os.path.join(folder, "model.pt"), one)
            gap = weight_difference(os.path.join(one, where), os.path.join(two, where))
            if gap > RELATIVE:
                found.append(f"{where}: weights differ by {gap:.2e} of the largest weight")
        print(f"{name}: 1 process {seconds_one:.1f} s, 2 ranks {seconds_two:.1f} s: "
              f"{'same numbers' if not found else str(len(found)) + ' differences'}")
        failures += [f"{name}: {d}" for d in found[:20]]
    return failures


def repeatability(work, common, model):
    """Two 2-rank runs of the attack write the same bits: its DeepFool, FMN and bisection take chunks of images from
    a queue in whichever order the ranks come, and a row must not depend on which rank computed it."""
    arguments = ["attack", "--model", model, "--samples", "41", "--eps", "0.5", "--batch-size", "8",
                 "--save-examples"] + common
    folders = [os.path.join(work, "repeat-" + str(i)) for i in range(2)]
    for folder in folders:
        code, output, _ = run(TORCHRUN + [ROBUSTLENS] + arguments + ["--out", folder])
        if code != 0:
            return [f"repeatability: exit {code}\n{output}"]
    with open(os.path.join(folders[0], "attack.json")) as f1, open(os.path.join(folders[1], "attack.json")) as f2:
        found = differences(json.load(f1), json.load(f2), exact=True)
    import torch
    examples = [torch.load(os.path.join(folder, "adversarial.pt")) for folder in folders]
    found += [f"adversarial.pt/{k}" for k in examples[0] if not torch.equal(examples[0][k], examples[1][k])]
    print(f"two 2-rank attack runs: {'the same bits' if not found else str(len(found)) + ' differences'}")
    return [f"repeatability: {d}" for d in found[:20]]


def launch_by_hand(arguments, port, per_rank=None):
    """Starts 2 ranks with the environment torchrun would set; per_rank[r] replaces arguments for rank r."""
    processes = []
    for rank in range(2):
        environment = dict(os.environ, WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank),
                           MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        processes.append(subprocess.Popen([ROBUSTLENS] + (per_rank or {}).get(rank, arguments), env=environment,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return processes


def restart_trial(work, common, model):
    """torchrun without --standalone (its static rendezvous, as on a cluster) keeps its agent's store across the
    restarts of --max_restarts: when rank 1's first attempt fails (after 4 s, killed if still running), the second
    attempt must not read the first's keys (Gloo's addresses, shard_rows' queues). Without the attempt's prefix the
    second attempt's ranks could not connect: "connect [127.0.0.1]:33168: Connection refused"."""
    wrapper = os.path.join(work, "killed-on-first-attempt.sh")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\nif [ "$TORCHELASTIC_RESTART_COUNT" = 0 ] && [ "$RANK" = 1 ]; then\n'
                '  "$@" & sleep 4; kill -9 $!; exit 1\nfi\nexec "$@"\n')
    os.chmod(wrapper, 0o755)
    static = ["torchrun", "--nnodes=1", "--node_rank=0", "--master_addr=127.0.0.1", f"--master_port={free_port()}",
              "--nproc_per_node=2", "--max_restarts=1"] + TORCHRUN[3:]
    folder = os.path.join(work, "restarted")
    code, output, seconds = run(static + [wrapper, ROBUSTLENS, "margins", "--model", model, "--samples", "100",
                                          "--dist-timeout", "20", "--out", folder] + common, timeout=300)
    if code != 0 or not os.path.exists(os.path.join(folder, "margins.json")):
        return [f"restart: exit {code} after {seconds:.1f} s\n{output[-3000:]}"]
    print(f"restart: rank 1 failed on the first attempt, the second finished (torchrun --max_restarts 1, "
          f"{seconds:.1f} s)")
    return []


def failure_trials(work, common, model):
    failures = []
    # Rank 1 without a rank 0: nothing hosts the store; it must give up within --dist-timeout, naming the address.
    port = free_port()
    environment = dict(os.environ, WORLD_SIZE="2", RANK="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    started = time.monotonic()
    alone = subprocess.run([ROBUSTLENS, "eval", "--model", model, "--samples", "4", "--dist-timeout", "3", "--out",
                            os.path.join(work, "alone")] + common, env=environment, capture_output=True, text=True,
                           timeout=120)
    seconds = time.monotonic() - started
    if alone.returncode != 2 or seconds > 20 or f"127.0.0.1:{port}" not in alone.stderr:
        failures.append(f"rank 1 without rank 0: exit {alone.returncode} after {seconds:.1f} s: {alone.stderr}")
    else:
        print(f"rank 1 without rank 0: exited 2 after {seconds:.1f} s: {alone.stderr.strip()}")
    # A bad model file on rank 1 only.
    bad = ["margins", "--model", model, "--samples", "4", "--out", os.path.join(work, "bad")] + common
    missing = list(bad)
    missing[missing.index(model)] = os.path.join(work, "missing.pt")
    ranks = launch_by_hand(bad, free_port(), {1: missing})
    outputs = [p.communicate(timeout=120) for p in ranks]
    codes = [p.returncode for p in ranks]
    errors = [o[1] for o in outputs]
    if codes != [2, 2] or "rank 1" not in errors[0] or "missing.pt" not in errors[0] or errors[1].strip():
        failures.append(f"bad file on rank 1: exits {codes}, rank 0 said {errors[0]!r}, rank 1 said {errors[1]!r}")
    else:
        print(f"bad file on rank 1: both ranks exit 2; rank 0 reports: {errors[0].strip()}")

    # Rank 1 killed mid-training; rank 0 must give up within the timeout; a rerun resumes.
    out = os.path.join(work, "killed")
    train = ["train", "--arch", "lenet", "--epochs", "3", "--batch-size", "64", "--samples", "1920",
             "--dist-timeout", "20", "--out", out] + common
    ranks = launch_by_hand(train, free_port())
    while not os.path.exists(os.path.join(out, "checkpoint.pt")) and ranks[0].poll() is None:
        time.sleep(0.05)
    ranks[1].kill()
    killed_at = time.monotonic()
    _, error = ranks[0].communicate(timeout=120)
    gave_up = time.monotonic() - killed_at
    ranks[1].communicate()
    if ranks[0].returncode == 0 or gave_up > 60 or "process group failed" not in error:
        failures.append(f"rank 1 killed: rank 0 exited {ranks[0].returncode} after {gave_up:.1f} s: {error!r}")
    else:
        print(f"rank 1 killed: rank 0 exited {ranks[0].returncode} after {gave_up:.1f} s: {error.strip()}")
    ranks = launch_by_hand(train, free_port())
    outputs = [p.communicate(timeout=600) for p in ranks]
    if [p.returncode for p in ranks] != [0, 0] or "resumed from" not in outputs[0][0]:
        failures.append(f"rerun after the kill: exits {[p.returncode for p in ranks]}: {outputs[0]}")
        return failures
    whole = os.path.join(work, "uninterrupted")
    code, output, _ = run(TORCHRUN + [ROBUSTLENS] + train[:-len(common) - 2] + ["--out", whole] + common)
    if code != 0:
        return failures + [f"uninterrupted 2-rank training: exit {code}\n{output}"]
    gap = weight_difference(os.path.join(out, "model.pt"), os.path.join(whole, "model.pt"))
    if gap > RELATIVE:
        failures.append(f"resumed 2-rank training: weights differ from an uninterrupted run's by {gap:.2e}")
    else:
        print(f"rerun: resumed from the checkpoint; weights equal an uninterrupted 2-rank run's (within {gap:.1e})")

    # A checkpoint that rank 1 does not see (its --out elsewhere, as a folder on a host's local disk would be).
    elsewhere = list(train)
    elsewhere[elsewhere.index(out)] = os.path.join(work, "elsewhere")
    ranks = launch_by_hand(train, free_port(), {1: elsewhere})
    outputs = [p.communicate(timeout=120) for p in ranks]
    codes = [p.returncode for p in ranks]
    if codes != [2, 2] or "would resume" not in outputs[0][1] or outputs[1][1].strip():
        failures.append(f"a checkpoint rank 1 does not see: exits {codes}, rank 0 said {outputs[0][1]!r}, "
                        f"rank 1 said {outputs[1][1]!r}")
    else:
        print(f"a checkpoint rank 1 does not see: both ranks exit 2; rank 0 reports: {outputs[0][1].strip()}")
    return failures


def robustlens_sees_cuda(work, common, model):
    """Whether this robustlens build sees a CUDA device (a LibTorch without CUDA refuses --device cuda)."""
    on_gpu = [a if a != "cpu" else "cuda" for a in common]
    code, _, _ = run([ROBUSTLENS, "eval", "--model", model, "--samples", "1", "--out", os.path.join(work, "probe")]
                     + on_gpu)
    return code == 0


def device_consistency(work, names, common, table_arguments):
    """Each command on the GPU against the CPU: within a relative 1e-3 (other kernels, other rounding)."""
    global RELATIVE
    failures, cpu_tolerance = [], RELATIVE
    RELATIVE = 1e-3
    on_gpu = [a if a != "cpu" else "cuda" for a in common]
    model, _, denoiser, distractor_model = table_arguments
    table, gpu_table = commands(*table_arguments), commands(model, on_gpu, denoiser, distractor_model)
    for name in names:
        (arguments, results), (gpu_arguments, _) = table[name], gpu_table[name]
        one, gpu = os.path.join(work, name + "-1"), os.path.join(work, name + "-cuda")
        code, output, _ = run([ROBUSTLENS] + gpu_arguments + ["--out", gpu])
        if code != 0:
            failures.append(f"{name} on cuda: exit {code}\n{output}")
            continue
        found = []
        for result in (r for r in results if r.endswith(".json")):
            with open(os.path.join(one, result)) as f1, open(os.path.join(gpu, result)) as f2:
                found += [f"{result}{d}" for d in differences(json.load(f1), json.load(f2))]
        print(f"{name}: cuda against cpu: {'same numbers' if not found else str(len(found)) + ' differences'}")
        failures += [f"{name} on cuda: {d}" for d in found[:20]]
    RELATIVE = cpu_tolerance
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="runs/distributed-trials")
    parser.add_argument("--commands", default="train,train-vae,train-denoiser,eval,attack,margins,spectral,upi,upi-smoothgrad,explain,align,"
                        "manifold,manifold-distractor,sweep,corruptions,latent,audit")
    options = parser.parse_args()
    if shutil.which("torchrun") is None:
        sys.exit("torchrun not found: install python3-torch (scripts/setup.sh)")
    shutil.rmtree(options.work, ignore_errors=True)
    data = os.path.join(options.work, "data")
    make_data(data, side=16, classes=3, train=2000, test=600)
    common = ["--data", "idx:" + data, "--threads", "1", "--device", "cpu"]
    model_folder = os.path.join(options.work, "model")
    code, output, _ = run([ROBUSTLENS, "train", "--arch", "lenet", "--epochs", "2", "--out", model_folder] + common)
    if code != 0:
        sys.exit(f"training the trials' model failed:\n{output}")
    model = os.path.join(model_folder, "model.pt")
    denoiser_folder = os.path.join(options.work, "denoiser")
    code, output, _ = run([ROBUSTLENS, "train-denoiser", "--epochs", "1", "--samples", "512", "--out",
                           denoiser_folder] + common)
    if code != 0:
        sys.exit(f"training the trials' denoiser failed:\n{output}")
    denoiser = os.path.join(denoiser_folder, "denoiser.pt")
    distractor_folder = os.path.join(options.work, "distractor-model")
    code, output, _ = run([ROBUSTLENS, "train", "--arch", "lenet", "--epochs", "1", "--samples", "600", "--out",
                           distractor_folder] + distractor(common))
    if code != 0:
        sys.exit(f"training the trials' distractor model failed:\n{output}")
    table_arguments = (model, common, denoiser, os.path.join(distractor_folder, "model.pt"))
    failures = consistency(options.work, options.commands.split(","), common, table_arguments)
    failures += repeatability(options.work, common, model)
    failures += restart_trial(options.work, common, model)
    failures += failure_trials(options.work, common, model)
    if robustlens_sees_cuda(options.work, common, model):
        failures += device_consistency(options.work, options.commands.split(","), common, table_arguments)
    else:
        print("no CUDA device here (or a LibTorch without CUDA): the trials ran on the CPU only")
    for failure in failures:
        print("FAILED:", failure)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
