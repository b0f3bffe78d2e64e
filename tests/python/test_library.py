"""The library's attacks and attributions from Python (robustlens.deepfool, pgd, fgsm, fmn, minimal_perturbation,
attribute) against oracles: closed forms on affine models, plain PyTorch re-computations of the gradient steps, the
completeness axiom of integrated gradients, batched against one image at a time, and the attack command.

    PYTHONPATH=build/python /usr/bin/python3 -m pytest -q tests/python/test_library.py
"""

import signal

import pytest
import torch

import robustlens

CLASSES = 4


def affine_model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(36, CLASSES))


def small_cnn(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(4 * 4 * 4, CLASSES))


def smooth_mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(36, 16), torch.nn.Tanh(),
                               torch.nn.Linear(16, CLASSES))


def images(count=12, seed=1):
    return torch.rand(count, 1, 6, 6, generator=torch.Generator().manual_seed(seed))


def affine_distances(model, x):
    """Per image the exact L2 distance to the nearest point another class wins, in float64: the minimum over the
    other classes k of (f_c - f_k) / |w_c - w_k| for the predicted class c. Also the class k that attains it."""
    weight, bias = model[1].weight.double(), model[1].bias.double()
    logits = x.flatten(1).double() @ weight.T + bias
    predicted = logits.argmax(1)
    gaps = (logits.gather(1, predicted[:, None]) - logits) / (weight[predicted][:, None, :] - weight[None]).norm(
        dim=2)
    gaps[torch.arange(len(x)), predicted] = float("inf")
    distance, nearest = gaps.min(1)
    return distance, nearest, predicted


def test_deepfool_on_an_affine_model_is_the_closed_form():
    model, x = affine_model(), images()
    distance, nearest, predicted = affine_distances(model, x)
    result = robustlens.deepfool(model, x, progress=False)
    torch.testing.assert_close(result["norms"].double(), 1.02 * distance, rtol=1e-5, atol=0)
    assert result["flipped"].all() and (result["iterations"] == 1).all()
    assert torch.equal(result["original_labels"], predicted) and torch.equal(result["adversarial_labels"], nearest)
    assert result["options"]["overshoot"] == 0.02 and result["perturbations"].shape == x.shape


def test_minimal_perturbation_never_beats_the_exact_minimum_of_an_affine_model():
    model, x = affine_model(), images()
    distance, _, predicted = affine_distances(model, x)
    result = robustlens.minimal_perturbation(model, x, predicted, clip=False, progress=False)
    # No attack can find a perturbation below the distance to the nearest boundary; the ensemble comes within 1%.
    assert (result["norms"] >= distance * (1 - 1e-5)).all()
    assert (result["norms"] <= distance * 1.01).all()
    checked = model(x + result["perturbations"]).argmax(1)
    assert (checked != predicted).all()
    assert result["attacks"][0] == "clean" and (result["found_by"] >= 1).all()


def oracle_pgd(model, x, labels, norm, eps, steps, step_size):
    """Projected gradient ascent on the summed cross-entropy from the image, in plain PyTorch."""
    delta = torch.zeros_like(x)
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(model(x + delta), labels, reduction="sum")
        (grad,) = torch.autograd.grad(loss, delta)
        if norm == "linf":
            delta = (delta.detach() + step_size * grad.sign()).clamp(-eps, eps)
        else:
            delta = delta.detach() + step_size * grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
            delta = delta * (eps / delta.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp_max(1).view(-1, 1, 1, 1)
        delta = (x + delta).clamp(0, 1) - x
    return x + delta


@pytest.mark.parametrize("norm,eps", [("linf", 0.05), ("l2", 0.5)])
def test_pgd_from_the_image_is_projected_gradient_ascent(norm, eps):
    model, x = small_cnn().eval(), images()
    labels = model(x).argmax(1)
    got = robustlens.pgd(model, x, labels, norm=norm, eps=eps, steps=7, random_start=False)
    expected = oracle_pgd(model, x, labels, norm, eps, 7, 2.5 * eps / 7)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert not torch.equal(got, x)


def test_pgd_random_starts_stay_in_the_ball_and_follow_the_seed():
    model, x = small_cnn().eval(), images()
    labels = model(x).argmax(1)
    first = robustlens.pgd(model, x, labels, norm="linf", eps=0.05, restarts=2, seed=3)
    assert torch.equal(first, robustlens.pgd(model, x, labels, norm="linf", eps=0.05, restarts=2, seed=3))
    assert not torch.equal(first, robustlens.pgd(model, x, labels, norm="linf", eps=0.05, restarts=2, seed=4))
    assert (first - x).abs().max() <= 0.05 + 1e-6 and first.min() >= 0 and first.max() <= 1
    l2 = robustlens.pgd(model, x, labels, norm="l2", eps=0.5, seed=3)
    assert ((l2 - x).flatten(1).norm(dim=1) <= 0.5 + 1e-5).all()


def test_fgsm_is_one_signed_gradient_step():
    model, x = small_cnn().eval(), images()
    labels = model(x).argmax(1)
    source = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(torch.nn.functional.cross_entropy(model(source), labels, reduction="sum"), source)
    expected = (x + 0.1 * grad.sign()).clamp(0, 1)
    torch.testing.assert_close(robustlens.fgsm(model, x, labels, norm="linf", eps=0.1), expected, rtol=0, atol=1e-6)


def test_fmn_finds_adversarials_no_smaller_than_the_exact_minimum():
    model, x = affine_model(), images()
    distance, _, predicted = affine_distances(model, x)
    result = robustlens.fmn(model, x, predicted, clip=False, steps=50, progress=False)
    assert result["found"].all()
    assert (result["norms"].double() >= distance * (1 - 1e-5)).all()
    assert (model(x + result["perturbations"]).argmax(1) != predicted).all()


def test_saliency_is_the_gradient_and_integrated_gradients_are_complete():
    model, x = smooth_mlp(), images(6)
    targets = torch.tensor([0, 1, 2, 3, 0, 1])
    source = x.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(model(source).gather(1, targets[:, None]).sum(), source)
    torch.testing.assert_close(robustlens.attribute(model, x, targets), gradient, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(robustlens.attribute(model, x, targets, method="input-x-gradient"), x * gradient,
                               rtol=1e-5, atol=1e-7)
    # Completeness: the map sums to f(x) - f(baseline); the Riemann sum's error falls as 1/steps.
    maps = robustlens.attribute(model, x, targets, method="ig", steps=400, baseline=0.0)
    with torch.no_grad():
        change = (model(x) - model(torch.zeros_like(x))).gather(1, targets[:, None]).squeeze(1)
    torch.testing.assert_close(maps.flatten(1).sum(1), change, rtol=1e-2, atol=1e-3)


def test_attribution_targets_default_to_the_predicted_classes_and_normalised_maps_sum_to_one():
    model, x = small_cnn().eval(), images()
    predicted = model(x).argmax(1)
    assert torch.equal(robustlens.attribute(model, x), robustlens.attribute(model, x, predicted))
    smooth = robustlens.attribute(model, x, method="smoothgrad", noise_samples=4, normalise=True, seed=2)
    assert smooth.shape == (len(x), 6, 6)
    torch.testing.assert_close(smooth.flatten(1).sum(1), torch.ones(len(x)))
    assert torch.equal(smooth, robustlens.attribute(model, x, method="smoothgrad", noise_samples=4, normalise=True,
                                                    seed=2))


def test_batched_equals_one_image_at_a_time():
    model, x = small_cnn().eval(), images()
    labels = model(x).argmax(1)
    whole = robustlens.deepfool(model, x, progress=False)
    alone = [robustlens.deepfool(model, x[i:i + 1], progress=False) for i in range(len(x))]
    torch.testing.assert_close(whole["perturbations"], torch.cat([a["perturbations"] for a in alone]))
    torch.testing.assert_close(whole["norms"], torch.cat([a["norms"] for a in alone]))
    whole_fmn = robustlens.fmn(model, x, labels, progress=False)
    alone_fmn = torch.cat([robustlens.fmn(model, x[i:i + 1], labels[i:i + 1], progress=False)["norms"]
                           for i in range(len(x))])
    torch.testing.assert_close(whole_fmn["norms"], alone_fmn)


def test_a_model_file_and_the_module_agree_with_the_attack_command(tmp_path):
    model, x = small_cnn().eval(), images(20)
    labels = model(x).argmax(1)
    path = str(tmp_path / "model.pt")
    torch.jit.save(torch.jit.trace(model, x[:4]), path)
    from_module = robustlens.deepfool(model, x, progress=False)
    from_file = robustlens.deepfool(path, x, progress=False)
    torch.testing.assert_close(from_file["perturbations"], from_module["perturbations"], rtol=1e-5, atol=1e-6)
    # The attack command runs the same DeepFool on the same file: its saved perturbations are the function's.
    record = robustlens.attack(path, (x, labels), samples=20, eps=0.1, save_examples=True, progress=False)
    assert torch.equal(record.tensors["images"], x)
    assert torch.equal(record.tensors["deepfool_perturbations"], from_file["perturbations"])


def test_a_module_that_cannot_be_traced_runs_as_it_is():
    class DataDependent(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = small_cnn()

        def forward(self, x):
            # A loop and a branch per image: a trace would fix its example's batch size and branches.
            return torch.stack([-logit if image.mean() > 0.5 else logit for image, logit in zip(x, self.inner(x))])

    model, x = DataDependent(), images() * torch.linspace(0.5, 1.5, 12).clamp(max=1).view(-1, 1, 1, 1)
    result = robustlens.deepfool(model, x, progress=False)
    assert result["flipped"].all()
    with torch.no_grad():
        after = torch.cat([model(x[i:i + 1] + result["perturbations"][i:i + 1]).argmax(1) for i in range(len(x))])
    assert torch.equal(after, result["adversarial_labels"])


def test_the_model_runs_in_evaluation_mode_and_every_layer_gets_its_own_mode_back():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(36, 16), torch.nn.BatchNorm1d(16),
                                torch.nn.Dropout(0.5), torch.nn.ReLU(), torch.nn.Linear(16, CLASSES))
    x, targets = images(), torch.zeros(12, dtype=torch.int64)
    expected = robustlens.attribute(model.eval(), x, targets)
    statistics = model[2].running_mean.clone()
    model.train()
    model[3].eval()  # a layer the caller froze
    modes = [m.training for m in model.modules()]
    got = robustlens.attribute(model, x, targets)
    # In training mode dropout would zero half the units and batch normalisation use the batch's statistics.
    assert torch.equal(got, expected) and torch.equal(model[2].running_mean, statistics)
    assert [m.training for m in model.modules()] == modes


def test_gradients_run_inside_no_grad_and_inference_mode():
    model, x = small_cnn().eval(), images()
    targets = torch.zeros(len(x), dtype=torch.int64)
    expected = robustlens.attribute(model, x, targets)
    with torch.no_grad():
        assert torch.equal(robustlens.attribute(model, x, targets), expected)
    with torch.inference_mode():
        inside = (images(), torch.zeros(len(x), dtype=torch.int64))
        assert torch.equal(robustlens.attribute(model, *inside), expected)
        assert robustlens.pgd(model, inside[0], inside[1], random_start=False).shape == x.shape


def test_minimal_perturbation_in_linf_leaves_deepfool_out():
    model, x = affine_model(), images()
    _, _, predicted = affine_distances(model, x)
    result = robustlens.minimal_perturbation(model, x, predicted, norm="linf", clip=False, progress=False)
    assert "deepfool" not in result["attacks"] and result["options"]["deepfool"] is False
    # The exact Linf distance to the other class k is (f_c - f_k) / |w_c - w_k|_1.
    weight, bias = model[1].weight.double(), model[1].bias.double()
    logits = x.flatten(1).double() @ weight.T + bias
    gaps = (logits.gather(1, predicted[:, None]) - logits) / (weight[predicted][:, None, :] - weight[None]).abs().sum(2)
    gaps[torch.arange(len(x)), predicted] = float("inf")
    assert (result["norms"] >= gaps.min(1).values * (1 - 1e-5)).all()


def test_bad_input_names_the_argument(tmp_path):
    model, x = small_cnn(), images()
    labels = torch.zeros(len(x), dtype=torch.int64)
    cases = [
        (lambda: robustlens.deepfool(model, x.clone().index_fill_(0, torch.tensor([2]), float("nan"))),
         ValueError, "images has NaN or infinite pixels"),
        (lambda: robustlens.deepfool(model, x * 2), ValueError, r"images: pixels must lie in \[0,1\]"),
        (lambda: robustlens.deepfool(model, x[0]), ValueError, "images: expected a float tensor N×C×H×W"),
        (lambda: robustlens.pgd(model, x, labels[:3]), ValueError, "labels: expected one integer class per image"),
        (lambda: robustlens.pgd(model, x, labels + 7), ValueError, r"labels: classes must lie in \[0, 3\]"),
        (lambda: robustlens.attribute(model, x, labels.float()), ValueError, "targets: expected one integer"),
        (lambda: robustlens.pgd(model, x, labels, eps=-1), ValueError, "eps must be >= 0, got -1"),
        (lambda: robustlens.fgsm(model, x, labels, eps=-1), ValueError, "eps must be >= 0, got -1"),
        (lambda: robustlens.pgd(model, x, labels, norm="l3"), ValueError, "norm: expected l2 or linf, got 'l3'"),
        (lambda: robustlens.attribute(model, x, method="gradcam"), ValueError, "attribution method: expected"),
        (lambda: robustlens.attribute(model, x, method="ig", steps=0), ValueError, "integrated gradients: steps must"),
        (lambda: robustlens.fmn(model, x, labels, alpha_init=0), ValueError, "FMN alpha_init"),
        (lambda: robustlens.fgsm(model, x, labels.bool()), ValueError, "labels: expected one integer class"),
        (lambda: robustlens.deepfool(lambda images: model(images)[:, :, None], x), ValueError,
         r"model must return N×K logits for a batch of N=12, got a tensor of shape \[12, 4, 1\]"),
        (lambda: robustlens.deepfool(lambda images: [1.0], x), ValueError, "model must return a tensor of logits"),
        (lambda: robustlens.deepfool(42, x), ValueError, "model: expected a torch.nn.Module"),
        (lambda: robustlens.deepfool(str(tmp_path / "missing.pt"), x), ValueError, "missing.pt"),
        (lambda: robustlens.deepfool(model, x, overshot=0.1), TypeError, "incompatible function arguments"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()

    class OwnFailure(Exception):
        pass

    def failing(images):
        raise OwnFailure("the model's own failure")

    with pytest.raises(OwnFailure, match="the model's own failure"):
        robustlens.deepfool(failing, x)

    def failing_progress(*update):
        raise OwnFailure("the progress callable's own failure")

    with pytest.raises(OwnFailure, match="progress callable's own failure"):
        robustlens.deepfool(model, x, progress=failing_progress)


def test_torch_keeps_its_own_error_messages():
    # robustlens' exception translator is its module's alone: torch's functions word their errors as before.
    with pytest.raises(RuntimeError) as raised:
        torch.jit.load(__file__)
    assert "internal error" not in str(raised.value)


def test_another_signal_handlers_exception_reaches_the_caller(tmp_path):
    model, x = small_cnn().eval(), images(4000, seed=9)
    path = str(tmp_path / "model.pt")
    torch.jit.save(torch.jit.trace(model, x[:4]), path)

    def alarm(signum, frame):
        raise TimeoutError("the alarm's own exception")

    previous = signal.signal(signal.SIGALRM, alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(TimeoutError, match="the alarm's own exception"):
            robustlens.pgd(path, x, model(x).argmax(1), steps=5000)  # minutes, were it not stopped
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_progress_reaches_the_callback_and_ctrl_c_stops_the_work(tmp_path, stopped_by_ctrl_c):
    model, x = small_cnn().eval(), images(64)
    seen = []
    robustlens.deepfool(model, x, progress=lambda *update: seen.append(update))
    assert seen and seen[-1][1] == seen[-1][2]
    path = str(tmp_path / "model.pt")
    torch.jit.save(torch.jit.trace(model, x[:4]), path)
    many = images(4000, seed=9)
    for runs_in in (model, path):  # Python's forward, and a file run by C++ alone
        # Minutes of work, were it not stopped.
        stopped_by_ctrl_c(lambda: robustlens.pgd(runs_in, many, model(many).argmax(1), steps=5000))


def test_the_gil_is_released_while_a_model_file_runs(tmp_path, ticks_while):
    model, x = small_cnn().eval(), images(400)
    path = str(tmp_path / "model.pt")
    torch.jit.save(torch.jit.trace(model, x[:4]), path)
    ticks, seconds = ticks_while(lambda: robustlens.deepfool(path, x, progress=False))
    assert ticks > seconds * 100


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the CPU results alone are checked")
def test_a_model_on_cuda_gives_the_cpu_numbers_on_the_callers_device():
    model, x = small_cnn().eval(), images()
    labels = model(x).argmax(1)
    on_gpu = small_cnn().eval().cuda()
    cpu, gpu = robustlens.deepfool(model, x, progress=False), robustlens.deepfool(on_gpu, x, progress=False)
    assert gpu["norms"].device.type == "cpu"  # the images' device
    torch.testing.assert_close(gpu["norms"], cpu["norms"], rtol=1e-4, atol=1e-6)
    maps = robustlens.attribute(on_gpu, x.cuda(), labels.cuda(), method="ig")
    assert maps.device.type == "cuda"
    torch.testing.assert_close(maps.cpu(), robustlens.attribute(model, x, labels, method="ig"), rtol=1e-4, atol=1e-6)
