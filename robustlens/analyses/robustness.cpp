#include "robustlens/analyses/robustness.h"

#include "robustlens/core/distributed.h"

#include "robustlens/attacks/fgsm.h"
#include "robustlens/core/batches.h"
#include "robustlens/core/error.h"
#include "robustlens/core/files.h"
#include "robustlens/core/random.h"

#include <cmath>
#include <iomanip>
#include <sstream>

namespace robustlens {

RobustnessOptions RobustnessOptions::resolved() const {
  RobustnessOptions o = *this;
  RL_CHECK(o.attack == "pgd" || o.attack == "fgsm", "RobustnessOptions.attack: expected pgd or fgsm, got '", o.attack,
           "'");
  if (o.eps.empty()) {
    o.eps = o.norm == Norm::l2 ? std::vector<double>{0.25, 0.5, 1.0, 2.0}
                               : std::vector<double>{1 / 255.0, 2 / 255.0, 4 / 255.0, 8 / 255.0};
  }
  for (const double e : o.eps)
    RL_CHECK(e >= 0 && std::isfinite(e), "RobustnessOptions.eps values must be finite and >= 0, got ", e);
  RL_CHECK(o.batch_size >= 1, "RobustnessOptions.batch_size must be >= 1, got ", o.batch_size);
  PgdOptions().set_steps(o.steps).set_step_size(o.step_size).set_restarts(o.restarts).resolved();  // checks
  o.deepfool_options.check();
  // DeepFool measures L2: with Linf it is reported on its own, outside the ensemble.
  o.ensemble_options.set_norm(o.norm)
      .set_deepfool(o.deepfool && o.norm == Norm::l2)
      .set_deepfool_options(o.deepfool_options)
      .set_batch_size(o.batch_size)
      .set_clip(o.clip);
  if (o.ensemble) o.ensemble_options.check();
  return o;
}

nlohmann::json RobustnessOptions::to_json() const {
  nlohmann::json json = {
      {"attack", attack}, {"norm", to_string(norm)}, {"eps", eps}, {"batch_size", batch_size}, {"clip", clip}};
  if (attack == "pgd") {
    json["steps"] = steps;
    json["step_size"] = step_size == 0 ? "2.5*eps/steps" : nlohmann::json(step_size);
    json["restarts"] = restarts;
    json["seed"] = seed;
  }
  json["deepfool"] = deepfool ? deepfool_options.to_json() : nlohmann::json(false);
  json["ensemble"] = ensemble ? ensemble_options.to_json() : nlohmann::json(false);
  return json;
}

nlohmann::json RobustnessResult::to_json() const {
  nlohmann::json per_eps = nlohmann::json::array();
  for (std::size_t i = 0; i < eps.size(); ++i)
    per_eps.push_back({{"eps", eps[i]}, {"robust_accuracy", robust_accuracy[i]}});
  nlohmann::json json = {{"clean_accuracy", clean_accuracy}, {"robust_accuracy", per_eps}};
  if (deepfool.norms.defined()) {
    json["deepfool"] = {{"norms_of_flipped", deepfool_quartiles.to_json()},
                        {"mean_iterations", deepfool_mean_iterations},
                        {"not_flipped", deepfool_not_flipped},
                        {"samples", deepfool.norms.size(0)},
                        {"norms", tensor_to_json(deepfool.norms)}};
  }
  if (minimal) {
    nlohmann::json within = nlohmann::json::array();
    nlohmann::json ensemble_accuracy = nlohmann::json::array();
    for (std::size_t i = 0; i < eps.size(); ++i) {
      within.push_back({{"eps", eps[i]}, {"share", minimal_share_within_eps[i]}});
      ensemble_accuracy.push_back({{"eps", eps[i]}, {"robust_accuracy", ensemble_robust_accuracy[i]}});
    }
    nlohmann::json record = minimal->to_json(minimal_warning);
    record["quartiles_of_correct"] = minimal_quartiles_correct.to_json();
    record["quartiles_of_all"] = minimal_quartiles_all.to_json();
    record["share_within_eps"] = within;
    record["robust_accuracy"] = ensemble_accuracy;
    record["robust_accuracy_is"] =
        "the share of samples correctly classified and not fooled within eps by any member (the attack's adversarials "
        "included, by their own check and the ensemble's): at most the attack's own robust accuracy and at most "
        "1 - share_within_eps";
    json["minimal_perturbation"] = record;
  }
  return json;
}

RobustnessResult analyse_robustness(Model& model, const Dataset& dataset, const RobustnessOptions& requested,
                                    const ProgressCallback& progress) {
  const RobustnessOptions options = requested.resolved();
  model.set_training(false);
  const at::Device device = model.device();
  RobustnessResult result;
  result.eps = options.eps;
  const std::int64_t n = dataset.size();
  const at::Generator generator = make_generator(options.seed);

  const at::Tensor predictions = batched_logits(model, dataset.images, options.batch_size).argmax(1);
  const at::Tensor clean_correct = predictions.eq(dataset.labels);
  result.clean_accuracy = clean_correct.to(at::kDouble).mean().item<double>();

  // Per sample the perturbation of the smallest eps whose adversarial fooled the model: a member of the ensemble.
  at::Tensor smallest_grid_perturbation = at::zeros_like(dataset.images);
  at::Tensor grid_fooled = at::zeros({n}, at::kBool);
  std::vector<at::Tensor> robust_per_eps;
  for (std::size_t e = 0; e < options.eps.size(); ++e) {
    std::ostringstream task;
    task << options.attack << " eps " << std::setprecision(4) << options.eps[e];
    const PgdOptions pgd = PgdOptions()
                               .set_clip(options.clip)
                               .set_norm(options.norm)
                               .set_eps(options.eps[e])
                               .set_steps(options.steps)
                               .set_step_size(options.step_size)
                               .set_restarts(options.restarts);
    // A data-parallel run splits each batch's rows; the random starts are the whole batch's (core/distributed.h).
    const std::vector<at::Tensor> per_sample = distributed::gather_batch_shares(
        n, options.batch_size,
        [&](std::int64_t first, std::int64_t last) {
          const at::Tensor x = dataset.images.slice(0, first, last).to(device);
          const at::Tensor y = dataset.labels.slice(0, first, last).to(device);
          const at::Tensor attacked = options.attack == "fgsm"
                                          ? fgsm_attack(model, x, y, options.norm, options.eps[e], options.clip)
                                          : pgd_attack(model, x, y, pgd, generator);
          at::NoGradGuard no_grad;
          const at::Tensor correct = model.forward(attacked).argmax(1).eq(y).to(at::kCPU);
          return std::vector<at::Tensor>{correct, attacked.to(at::kCPU)};
        },
        progress, task.str());
    at::Tensor robust = per_sample[0];
    const at::Tensor fooled = robust.logical_not();
    const at::Tensor first = fooled.logical_and(grid_fooled.logical_not()).nonzero().squeeze(1);
    smallest_grid_perturbation.index_copy_(
        0, first, (per_sample[1].index_select(0, first) - dataset.images.index_select(0, first)));
    grid_fooled.logical_or_(fooled);
    robust.logical_and_(clean_correct);
    result.robust_accuracy.push_back(robust.to(at::kDouble).mean().item<double>());
    robust_per_eps.push_back(robust);
    if (options.keep_examples) result.adversarial_examples.push_back(per_sample[1]);
  }

  const bool deepfool_in_ensemble = options.ensemble && options.ensemble_options.deepfool;
  if (options.ensemble) {
    const at::Tensor images = dataset.images.to(device);
    result.minimal = minimal_perturbations(model, images, dataset.labels.to(device), options.ensemble_options,
                                           {{options.attack, smallest_grid_perturbation.to(device)}}, progress);
    MinimalPerturbationResult& minimal = *result.minimal;
    minimal.to_cpu();
    result.minimal_quartiles_correct = quartiles(minimal.norms.masked_select(clean_correct));
    result.minimal_quartiles_all = quartiles(minimal.norms);
    for (std::size_t e = 0; e < options.eps.size(); ++e) {
      result.minimal_share_within_eps.push_back(minimal.share_within(options.eps[e]));
      // Robust means robust to every member, the attack's own verdict included: re-adding its adversarial
      // perturbation to the image can round a tie the other way, and that must not count as robust.
      result.ensemble_robust_accuracy.push_back(robust_per_eps[e]
                                                    .logical_and(minimal.within(options.eps[e]).logical_not())
                                                    .to(at::kDouble)
                                                    .mean()
                                                    .item<double>());
    }
    result.minimal_warning = minimal.warning(options.ensemble_options);
    if (deepfool_in_ensemble) result.deepfool = minimal.deepfool;
  }
  if (options.deepfool) {
    if (!deepfool_in_ensemble) {
      DeepFoolOptions deepfool_options = options.deepfool_options;
      deepfool_options.set_batch_size(options.batch_size);
      result.deepfool = deepfool(model, dataset.images.to(device), deepfool_options, progress);
    }
    for (at::Tensor* t :
         {&result.deepfool.perturbations, &result.deepfool.norms, &result.deepfool.iterations, &result.deepfool.flipped,
          &result.deepfool.original_labels, &result.deepfool.adversarial_labels}) {
      *t = t->to(at::kCPU);
    }
    result.deepfool_quartiles = quartiles(result.deepfool.norms.masked_select(result.deepfool.flipped));
    result.deepfool_mean_iterations = result.deepfool.iterations.to(at::kDouble).mean().item<double>();
    result.deepfool_not_flipped = result.deepfool.flipped.logical_not().sum().item<std::int64_t>();
  }
  return result;
}

}  // namespace robustlens
