// The library's attacks and attributions as functions of _robustlens: a model (any torch.nn.Module or function from
// images to logits, run eagerly) and tensors in, tensors out, no command around them. Each option's default is the
// library's own, read from a default-constructed Options struct, so there is one place that says it. Inputs are
// checked here with messages that name the argument; the work runs without the GIL.
#include "library_bindings.h"

#include "python_bridge.h"

#include "robustlens/attacks/deepfool.h"
#include "robustlens/attacks/fgsm.h"
#include "robustlens/attacks/fmn.h"
#include "robustlens/attacks/minimal_perturbation.h"
#include "robustlens/attacks/pgd.h"
#include "robustlens/core/error.h"
#include "robustlens/core/random.h"
#include "robustlens/data/dataset.h"
#include "robustlens/explain/attributions.h"
#include "robustlens/models/load_model.h"

#include <c10/core/InferenceMode.h>
#include <pybind11/stl.h>
#include <torch/csrc/utils/pybind.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace py = pybind11;

namespace robustlens::python {
namespace {

/// The images as the Model contract takes them (float32 N×C×H×W, finite, in [0,1]), on the model's device.
at::Tensor checked_images(const at::Tensor& images, const Model& model) {
  RL_CHECK(images.dim() == 4 && images.is_floating_point() && images.size(0) > 0,
           "images: expected a float tensor N×C×H×W with N >= 1, got ", images.scalar_type(), " of shape ",
           images.sizes());
  // A copy: the caller's tensor may be an inference tensor, which autograd cannot record.
  at::Tensor pixels = images.detach().to(model.device(), at::kFloat, /*non_blocking=*/false, /*copy=*/true);
  check_pixels(pixels, "images");
  return pixels;
}

/// The model's number of classes, from its logits on the first image (which also checks that it returns N×K).
std::int64_t class_count(Model& model, const at::Tensor& images) {
  const at::NoGradGuard no_grad;
  return model.forward(images.slice(0, 0, 1)).size(1);
}

/// One class per image, each in [0, K): `argument` names them in the messages.
at::Tensor checked_classes(const at::Tensor& classes, const at::Tensor& images, Model& model,
                           const std::string& argument) {
  RL_CHECK(classes.dim() == 1 && classes.size(0) == images.size(0) &&
               at::isIntegralType(classes.scalar_type(), /*includeBool=*/false),
           argument,
           ": expected one integer class per image (", images.size(0), "), got ", classes.scalar_type(), " of shape ",
           classes.sizes());
  const std::int64_t count = class_count(model, images);
  const std::int64_t low = classes.min().item<std::int64_t>(), high = classes.max().item<std::int64_t>();
  RL_CHECK(low >= 0 && high < count, argument, ": classes must lie in [0, ", count - 1,
           "] for a model with that many logits, found [", low, ", ", high, "]");
  return classes.to(images.device(), at::kLong, /*non_blocking=*/false, /*copy=*/true);
}

py::object to_python(const nlohmann::json& value) { return py::module_::import("json").attr("loads")(value.dump()); }

/// Runs `work` without the GIL on the model, in evaluation mode: a model file's path is loaded onto the CPU
/// (models/load_model.h) and runs in C++ alone, but for a check for Ctrl-C at each pass; a Python callable
/// becomes a PythonModel (on `images`' device when it has no tensors of its own), given back with the GIL.
/// Gradients are the attacks' means: they run even when the caller is inside torch.no_grad() or inference_mode().
template <typename Work>
auto with_model(const py::object& model, const at::Tensor& images, Work work) {
  const auto with_gradients = [&](Model& m) {
    const c10::InferenceMode no_inference_mode(false);
    const at::AutoGradMode gradients(true);
    return work(m);
  };
  const py::object path_like = py::module_::import("os").attr("PathLike");
  if (py::isinstance<py::str>(model) || py::isinstance(model, path_like)) {
    const auto path = py::module_::import("os").attr("fspath")(model).cast<std::string>();
    const py::gil_scoped_release no_gil;
    InterruptibleModel loaded(load_model(path, at::kCPU));
    loaded.set_training(false);
    return with_gradients(loaded);
  }
  PythonModel python_model(model, images.device());
  const py::gil_scoped_release no_gil;
  return with_gradients(python_model);
}

/// The progress callable as a callback (none for None); the caller keeps `progress` alive.
ProgressCallback progress_of(const py::object& progress) {
  return progress.is_none() ? ProgressCallback{} : python_progress(progress.ptr());
}

py::dict deepfool_function(const py::object& model, const at::Tensor& images, const DeepFoolOptions& options,
                           const py::object& progress) {
  options.check();
  const DeepFoolResult result = with_model(model, images, [&](Model& m) {
    return deepfool(m, checked_images(images, m), options, progress_of(progress));
  });
  const at::Device device = images.device();
  return py::dict(py::arg("perturbations") = result.perturbations.to(device),
                  py::arg("norms") = result.norms.to(device), py::arg("iterations") = result.iterations.to(device),
                  py::arg("flipped") = result.flipped.to(device),
                  py::arg("original_labels") = result.original_labels.to(device),
                  py::arg("adversarial_labels") = result.adversarial_labels.to(device),
                  py::arg("options") = to_python(options.to_json()));
}

at::Tensor pgd_function(const py::object& model, const at::Tensor& images, const at::Tensor& labels,
                        const PgdOptions& options, std::uint64_t seed) {
  const PgdOptions resolved = options.resolved();
  return with_model(model, images, [&](Model& m) {
           const at::Tensor pixels = checked_images(images, m);
           return pgd_attack(m, pixels, checked_classes(labels, pixels, m, "labels"), resolved,
                             make_generator(seed));
         })
      .to(images.device());
}

at::Tensor fgsm_function(const py::object& model, const at::Tensor& images, const at::Tensor& labels,
                         const std::string& norm, double eps, bool clip) {
  const Norm parsed = parse_norm(norm);
  RL_CHECK(eps >= 0, "eps must be >= 0, got ", eps);
  return with_model(model, images, [&](Model& m) {
           const at::Tensor pixels = checked_images(images, m);
           return fgsm_attack(m, pixels, checked_classes(labels, pixels, m, "labels"), parsed, eps, clip);
         })
      .to(images.device());
}

py::dict fmn_function(const py::object& model, const at::Tensor& images, const at::Tensor& labels,
                      const FmnOptions& options, const py::object& progress) {
  const FmnOptions resolved = options.resolved();
  const FmnResult result = with_model(model, images, [&](Model& m) {
    const at::Tensor pixels = checked_images(images, m);
    return fmn_attack(m, pixels, checked_classes(labels, pixels, m, "labels"), resolved, progress_of(progress));
  });
  const at::Device device = images.device();
  return py::dict(py::arg("perturbations") = result.perturbations.to(device),
                  py::arg("norms") = result.norms.to(device), py::arg("found") = result.found.to(device),
                  py::arg("options") = to_python(resolved.to_json()));
}

py::dict minimal_perturbation_function(const py::object& model, const at::Tensor& images, const at::Tensor& labels,
                                       const MinimalPerturbationOptions& options, const py::object& progress) {
  options.check();
  MinimalPerturbationResult result = with_model(model, images, [&](Model& m) {
    const at::Tensor pixels = checked_images(images, m);
    return minimal_perturbations(m, pixels, checked_classes(labels, pixels, m, "labels"), options, {},
                                 progress_of(progress));
  });
  result.to_cpu();
  const at::Device device = images.device();
  return py::dict(py::arg("attacks") = result.attacks, py::arg("perturbations") = result.perturbations.to(device),
                  py::arg("norms") = result.norms.to(device), py::arg("found_by") = result.found_by.to(device),
                  py::arg("per_attack_norms") = result.per_attack_norms.to(device),
                  py::arg("deepfool_overestimate_share") = result.deepfool_overestimate_share,
                  py::arg("warning") = result.warning(options), py::arg("options") = to_python(options.to_json()));
}

at::Tensor attribute_function(const py::object& model, const at::Tensor& images,
                              const std::optional<at::Tensor>& targets, const AttributionOptions& options,
                              bool normalise, std::uint64_t seed) {
  options.check();
  return with_model(model, images, [&](Model& m) {
           const at::Tensor pixels = checked_images(images, m);
           at::Tensor classes;
           if (targets) {
             classes = checked_classes(*targets, pixels, m, "targets");
           } else {
             const at::NoGradGuard no_grad;
             classes = batched_logits(m, pixels, options.batch_size).argmax(1).to(pixels.device());
           }
           const at::Tensor maps = attribute(m, pixels, classes, options, make_generator(seed));
           return normalise ? normalise_maps(maps) : maps;
         })
      .to(images.device());
}

constexpr const char* kModelArguments =
    "model: a torch.nn.Module (a ScriptModule too) or a function from images to logits N×K, called as it is "
    "(nothing is traced), in evaluation mode, on the device of its first parameter or buffer (a function: the "
    "images' device), where the images are moved; or a model file's path, run on the CPU. images: N×C×H×W, pixels "
    "in [0,1]. Results come back on the images' device";

/// A function's docstring (pybind11 copies it while the function is defined).
std::string documented(const std::string& what, const std::string& returns) {
  return what + "\n\n" + kModelArguments + ".\nReturns " + returns;
}

}  // namespace

void bind_library(py::module_& module) {
  const DeepFoolOptions deepfool_defaults;
  module.def(
      "deepfool",
      [](const py::object& model, const at::Tensor& images, std::int64_t candidates, double overshoot,
         std::int64_t max_iterations, bool clip, std::int64_t batch_size, const py::object& progress) {
        return deepfool_function(model, images,
                                 DeepFoolOptions()
                                     .set_candidates(candidates)
                                     .set_overshoot(overshoot)
                                     .set_max_iterations(max_iterations)
                                     .set_clip(clip)
                                     .set_batch_size(batch_size),
                                 progress);
      },
      documented("DeepFool (Moosavi-Dezfooli et al.): per image the L2 perturbation, grown by linearising the "
                 "model, that changes its predicted class.",
                 "a dict of tensors: perturbations (N×C×H×W), norms, iterations, flipped, original_labels, "
                 "adversarial_labels; and options.").c_str(),
      py::arg("model"), py::arg("images"), py::kw_only(), py::arg("candidates") = deepfool_defaults.candidates,
      py::arg("overshoot") = deepfool_defaults.overshoot, py::arg("max_iterations") = deepfool_defaults.max_iterations,
      py::arg("clip") = deepfool_defaults.clip, py::arg("batch_size") = deepfool_defaults.batch_size,
      py::arg("progress") = py::none());

  const PgdOptions pgd_defaults;
  module.def(
      "pgd",
      [](const py::object& model, const at::Tensor& images, const at::Tensor& labels, const std::string& norm,
         double eps, std::int64_t steps, double step_size, bool random_start, std::int64_t restarts, bool clip,
         std::uint64_t seed) {
        return pgd_function(model, images, labels,
                            PgdOptions()
                                .set_norm(parse_norm(norm))
                                .set_eps(eps)
                                .set_steps(steps)
                                .set_step_size(step_size)
                                .set_random_start(random_start)
                                .set_restarts(restarts)
                                .set_clip(clip),
                            seed);
      },
      documented("Projected gradient ascent on the cross-entropy of `labels` (Madry et al.) in the L2 or Linf ball "
                 "of radius eps; step_size 0 is 2.5·eps/steps; the random starts draw from `seed`.",
                 "the adversarial images (N×C×H×W).").c_str(),
      py::arg("model"), py::arg("images"), py::arg("labels"), py::kw_only(),
      py::arg("norm") = to_string(pgd_defaults.norm), py::arg("eps") = pgd_defaults.eps,
      py::arg("steps") = pgd_defaults.steps, py::arg("step_size") = pgd_defaults.step_size,
      py::arg("random_start") = pgd_defaults.random_start, py::arg("restarts") = pgd_defaults.restarts,
      py::arg("clip") = pgd_defaults.clip, py::arg("seed") = 0);

  module.def("fgsm", &fgsm_function,
             documented("The fast gradient sign method (Goodfellow et al.): one step of length eps along the sign "
                        "(linf) or the normalised direction (l2) of the cross-entropy's gradient.",
                        "the adversarial images (N×C×H×W).").c_str(),
             py::arg("model"), py::arg("images"), py::arg("labels"), py::kw_only(),
             py::arg("norm") = to_string(pgd_defaults.norm), py::arg("eps") = pgd_defaults.eps,
             py::arg("clip") = pgd_defaults.clip);

  const FmnOptions fmn_defaults;
  module.def(
      "fmn",
      [](const py::object& model, const at::Tensor& images, const at::Tensor& labels, const std::string& norm,
         std::int64_t steps, double alpha_init, double alpha_final, double gamma_init, double gamma_final, bool clip,
         std::int64_t batch_size, const py::object& progress) {
        return fmn_function(model, images, labels,
                            FmnOptions()
                                .set_norm(parse_norm(norm))
                                .set_steps(steps)
                                .set_alpha_init(alpha_init)
                                .set_alpha_final(alpha_final)
                                .set_gamma_init(gamma_init)
                                .set_gamma_final(gamma_final)
                                .set_clip(clip)
                                .set_batch_size(batch_size),
                            progress);
      },
      documented("Fast Minimum-Norm (Pintor et al.): per image the smallest perturbation found that makes the model "
                 "misclassify `labels`; alpha_final 0 is alpha_init/100.",
                 "a dict: perturbations (N×C×H×W, zeros where none was found), norms (inf where none), found; "
                 "and options.").c_str(),
      py::arg("model"), py::arg("images"), py::arg("labels"), py::kw_only(),
      py::arg("norm") = to_string(fmn_defaults.norm), py::arg("steps") = fmn_defaults.steps,
      py::arg("alpha_init") = fmn_defaults.alpha_init, py::arg("alpha_final") = fmn_defaults.alpha_final,
      py::arg("gamma_init") = fmn_defaults.gamma_init, py::arg("gamma_final") = fmn_defaults.gamma_final,
      py::arg("clip") = fmn_defaults.clip, py::arg("batch_size") = fmn_defaults.batch_size,
      py::arg("progress") = py::none());

  const MinimalPerturbationOptions minimal_defaults;
  module.def(
      "minimal_perturbation",
      [](const py::object& model, const at::Tensor& images, const at::Tensor& labels, const std::string& norm,
         bool clip, std::optional<bool> use_deepfool, bool use_fmn, std::int64_t long_fmn_steps, std::int64_t bisection_rounds,
         std::int64_t bisection_steps, std::int64_t batch_size, const py::object& progress) {
        const Norm parsed = parse_norm(norm);
        return minimal_perturbation_function(model, images, labels,
                                             MinimalPerturbationOptions()
                                                 .set_norm(parsed)
                                                 .set_clip(clip)
                                                 .set_deepfool(use_deepfool.value_or(parsed == Norm::l2))
                                                 .set_fmn(use_fmn)
                                                 .set_long_fmn_steps(long_fmn_steps)
                                                 .set_bisection_rounds(bisection_rounds)
                                                 .set_bisection_steps(bisection_steps)
                                                 .set_batch_size(batch_size),
                                             progress);
      },
      documented("Per image the smallest perturbation that any attack of the ensemble found (DeepFool, FMN "
                 "warm-started, PGD bisection, a long FMN run on what is left), each checked to make the model "
                 "misclassify `labels`; 0 for an image misclassified clean.",
                 "a dict: attacks (the members, in order), perturbations (N×C×H×W), norms (float64, inf where "
                 "none was found), found_by (index into attacks, -1: none), per_attack_norms (N×attacks), "
                 "deepfool_overestimate_share, warning (empty unless DeepFool's linearisation misleads); and "
                 "options. deepfool None: DeepFool is a member for norm l2 (it measures L2 only).").c_str(),
      py::arg("model"), py::arg("images"), py::arg("labels"), py::kw_only(),
      py::arg("norm") = to_string(minimal_defaults.norm), py::arg("clip") = minimal_defaults.clip,
      py::arg("deepfool") = py::none(), py::arg("fmn") = minimal_defaults.fmn,
      py::arg("long_fmn_steps") = minimal_defaults.long_fmn_steps,
      py::arg("bisection_rounds") = minimal_defaults.bisection_rounds,
      py::arg("bisection_steps") = minimal_defaults.bisection_steps,
      py::arg("batch_size") = minimal_defaults.batch_size, py::arg("progress") = py::none());

  const AttributionOptions attribution_defaults;
  module.def(
      "attribute",
      [](const py::object& model, const at::Tensor& images, const std::optional<at::Tensor>& targets,
         const std::string& method, bool softmax, std::int64_t steps, double baseline, double noise,
         std::int64_t noise_samples, std::int64_t batch_size, bool normalise, std::uint64_t seed) {
        return attribute_function(model, images, targets,
                                  AttributionOptions()
                                      .set_method(parse_attribution_method(method))
                                      .set_softmax(softmax)
                                      .set_steps(steps)
                                      .set_baseline(baseline)
                                      .set_noise(noise)
                                      .set_noise_samples(noise_samples)
                                      .set_batch_size(batch_size),
                                  normalise, seed);
      },
      documented("Gradient attribution maps for the classes `targets` (default: the predicted ones). method: "
                 "saliency, input-x-gradient, ig (integrated gradients: `steps` right Riemann steps from a constant "
                 "`baseline` image) or smoothgrad (`noise_samples` copies with Gaussian noise of std `noise`, drawn "
                 "from `seed`); softmax differentiates the probability instead of the logit.",
                 "the raw maps (N×C×H×W), or with normalise |map| summed over channels and divided by its L1 norm "
                 "(N×H×W, each summing to 1).").c_str(),
      py::arg("model"), py::arg("images"), py::arg("targets") = py::none(), py::kw_only(),
      py::arg("method") = to_string(attribution_defaults.method), py::arg("softmax") = attribution_defaults.softmax,
      py::arg("steps") = attribution_defaults.steps, py::arg("baseline") = attribution_defaults.baseline,
      py::arg("noise") = attribution_defaults.noise, py::arg("noise_samples") = attribution_defaults.noise_samples,
      py::arg("batch_size") = attribution_defaults.batch_size, py::arg("normalise") = false, py::arg("seed") = 0);
}

}  // namespace robustlens::python
