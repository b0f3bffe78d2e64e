#include "robustlens/attacks/universal_perturbation.h"

#include "robustlens/core/batches.h"
#include "robustlens/core/error.h"

#include <cmath>

namespace robustlens {
namespace {

at::Tensor perturbed(const at::Tensor& images, const at::Tensor& delta, bool clip) {
  const at::Tensor moved = images + delta.unsqueeze(0);
  return clip ? moved.clamp(0, 1) : moved;
}

at::Tensor predictions(Model& model, const at::Tensor& images, std::int64_t batch_size) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> labels;
  for (const auto [start, end] : batches(images.size(0), batch_size)) {
    labels.push_back(model.forward(images.slice(0, start, end)).argmax(1));
  }
  return at::cat(labels);
}

/// v scaled into the L2 ball of radius eps.
at::Tensor project(const at::Tensor& v, double eps) {
  const double norm = v.norm().item<double>();
  return norm > eps ? v * (eps / norm) : v;
}

}  // namespace

void UniversalPerturbationOptions::check() const {
  RL_CHECK(std::isfinite(eps) && eps > 0, "UniversalPerturbationOptions.eps must be > 0, got ", eps);
  RL_CHECK(passes >= 1, "UniversalPerturbationOptions.passes must be >= 1, got ", passes);
  RL_CHECK(target_fooling_rate > 0 && target_fooling_rate <= 1,
           "UniversalPerturbationOptions.target_fooling_rate must be in (0, 1], got ", target_fooling_rate);
  RL_CHECK(batch_size >= 1, "UniversalPerturbationOptions.batch_size must be >= 1, got ", batch_size);
  deepfool.check();
}

nlohmann::json UniversalPerturbationOptions::to_json() const {
  return {{"eps", eps},
          {"passes", passes},
          {"target_fooling_rate", target_fooling_rate},
          {"clip", clip},
          {"batch_size", batch_size},
          {"deepfool", deepfool.to_json()},
          {"update", "the mean of a batch's DeepFool steps, then the projection onto the L2 ball"}};
}

nlohmann::json UniversalPerturbation::to_json() const {
  return {{"norm", delta.norm().item<double>()}, {"fooling_rate", fooling_rate}, {"passes", passes}};
}

UniversalPerturbation universal_adversarial_perturbation(Model& model, const at::Tensor& images,
                                                         const UniversalPerturbationOptions& options,
                                                         const ProgressCallback& progress) {
  options.check();
  RL_CHECK(images.dim() == 4 && images.size(0) >= 1, "universal perturbation: expected images N×C×H×W, got ",
           images.sizes());
  DeepFoolOptions steps_options = options.deepfool;
  steps_options.set_batch_size(options.batch_size).set_clip(options.clip);
  const at::Tensor clean = predictions(model, images, options.batch_size);
  UniversalPerturbation result;
  result.delta = at::zeros(images.sizes().slice(1), images.options());
  const auto fooling_rate = [&] {
    const at::Tensor now = predictions(model, perturbed(images, result.delta, options.clip), options.batch_size);
    return (now != clean).to(at::kDouble).mean().item<double>();
  };
  result.fooling_rate = 0;
  for (std::int64_t pass = 0; pass < options.passes && result.fooling_rate < options.target_fooling_rate; ++pass) {
    for (const auto [start, end] : batches(images.size(0), options.batch_size)) {
      const at::Tensor batch = perturbed(images.slice(0, start, end), result.delta, options.clip);
      const at::Tensor unfooled =
          (predictions(model, batch, options.batch_size) == clean.slice(0, start, end)).nonzero().flatten();
      if (unfooled.numel() > 0) {
        const DeepFoolResult steps = deepfool(model, batch.index_select(0, unfooled), steps_options);
        result.delta = project(result.delta + steps.perturbations.mean(0), options.eps);
      }
      report(progress, {"universal perturbation, pass " + std::to_string(pass + 1), end, images.size(0), ""});
    }
    result.passes = pass + 1;
    result.fooling_rate = fooling_rate();
  }
  return result;
}

}  // namespace robustlens
