#include "robustlens/analyses/margins.h"

#include "robustlens/core/error.h"
#include "robustlens/core/files.h"

#include <cmath>

namespace robustlens {
namespace {

SubspaceMargins summarise(const at::Tensor& margins, const at::Tensor& flipped, const at::Tensor& iterations) {
  SubspaceMargins s{margins, flipped, iterations, quartiles(margins.masked_select(flipped)), 0, 0, {}};
  s.not_flipped = flipped.logical_not().sum().item<std::int64_t>();
  s.mean_iterations = iterations.to(at::kDouble).mean().item<double>();
  s.with_lower_bounds = margins_with_lower_bounds(margins, flipped);
  return s;
}

}  // namespace

MarginsWithLowerBounds margins_with_lower_bounds(const at::Tensor& margins, const at::Tensor& flipped) {
  RL_CHECK(margins.sizes() == flipped.sizes() && margins.dim() == 1, "margins and flipped must be two N-vectors, got ",
           margins.sizes(), " and ", flipped.sizes());
  MarginsWithLowerBounds result;
  result.quartiles = quartiles(margins);
  const at::Tensor not_flipped = flipped.to(at::kBool).logical_not();
  result.not_flipped_share = margins.numel() > 0 ? not_flipped.to(at::kDouble).mean().item<double>() : 0.0;
  result.median_is_lower_bound =
      not_flipped.logical_and(margins.to(at::kDouble) <= result.quartiles.median).any().item<bool>();
  return result;
}

nlohmann::json MarginsWithLowerBounds::to_json() const {
  return {{"quartiles", quartiles.to_json()},
          {"median_is_lower_bound", median_is_lower_bound},
          {"not_flipped_share", not_flipped_share},
          {"counts_not_flipped_as", "the norm reached (a lower bound of their margin)"}};
}

DctSubspaces MarginOptions::subspaces(std::int64_t height, std::int64_t width) const {
  RL_CHECK((block == 0) == (step == 0), "give both K and T of the DCT subspaces, or neither");
  return block == 0 ? default_dct_subspaces(height, width) : dct_subspaces(height, width, block, step);
}

MinimalPerturbationOptions MarginOptions::resolved_ensemble_options() const {
  return MinimalPerturbationOptions(ensemble_options)
      .set_norm(Norm::l2)
      .set_clip(false)
      .set_deepfool(true)
      .set_deepfool_options(resolved_deepfool())
      .set_batch_size(batch_size);
}

DeepFoolOptions MarginOptions::resolved_deepfool() const {
  return DeepFoolOptions(deepfool).set_batch_size(batch_size).set_projector({});
}

nlohmann::json MarginOptions::to_json() const {
  nlohmann::json deepfool_json = resolved_deepfool().to_json();
  deepfool_json.erase("subspace");  // it runs in each subspace (block, step) and in the full space
  return {{"block", block},
          {"step", step},
          {"full_space", full_space},
          {"deepfool", deepfool_json},
          {"ensemble", full_space && ensemble ? resolved_ensemble_options().to_json() : nlohmann::json(false)},
          {"batch_size", batch_size}};
}

nlohmann::json FullSpaceMinimum::to_json() const {
  nlohmann::json json = minimal.to_json(warning);
  json["quartiles"] = quartiles.to_json();
  json["counted_against"] = "the predicted label (the margin of the class the model predicts)";
  return json;
}

nlohmann::json SubspaceMargins::to_json() const {
  return {{"quartiles_of_flipped", quartiles.to_json()},
          {"not_flipped", not_flipped},
          {"with_lower_bounds", with_lower_bounds.to_json()},
          {"mean_iterations", mean_iterations},
          {"margins", tensor_to_json(margins)},
          {"flipped", tensor_to_json(flipped)}};
}

nlohmann::json MarginResult::to_json() const {
  nlohmann::json subspace_list = nlohmann::json::array();
  for (std::size_t t = 0; t < per_subspace.size(); ++t) {
    nlohmann::json entry = per_subspace[t].to_json();
    entry["index"] = t;
    entry["first_coefficient"] = static_cast<std::int64_t>(t) * subspaces.step;
    subspace_list.push_back(entry);
  }
  nlohmann::json json = {{"subspaces", subspaces.to_json()}, {"per_subspace", subspace_list}};
  if (full_space.margins.defined()) json["full_space"] = full_space.to_json();
  if (full_space_minimum.minimal.norms.defined())
    json["full_space"]["minimal_perturbation"] = full_space_minimum.to_json();
  return json;
}

MarginResult analyse_margins(Model& model, const Dataset& dataset, const MarginOptions& options,
                             const ProgressCallback& progress) {
  RL_CHECK(options.batch_size >= 1, "MarginOptions.batch_size must be >= 1, got ", options.batch_size);
  // Before the subspace DeepFool: bad ensemble options must not fail after minutes of work.
  if (options.full_space && options.ensemble) options.resolved_ensemble_options().check();
  model.set_training(false);
  const std::vector<std::int64_t> shape = dataset.image_shape();
  MarginResult result{options.subspaces(shape[1], shape[2]), {}, {}, {}};
  const std::int64_t n = dataset.size(), t = result.subspaces.count();
  const at::Tensor images = dataset.images.to(model.device());
  const at::Tensor masks = result.subspaces.masks(images.options());

  // Row r is the pair (sample r / t, subspace r % t).
  DeepFoolOptions constrained = options.resolved_deepfool();
  constrained.set_projector([&](const at::Tensor& w, const at::Tensor& rows) {
    return project_onto_dct_subspaces(w, masks, rows.remainder(t));
  });
  const DeepFoolResult pairs = deepfool(model, images.repeat_interleave(t, 0), constrained, progress);
  const at::Tensor norms = pairs.norms.to(at::kCPU).view({n, t});
  const at::Tensor flipped = pairs.flipped.to(at::kCPU).view({n, t});
  const at::Tensor iterations = pairs.iterations.to(at::kCPU).view({n, t});
  for (std::int64_t s = 0; s < t; ++s) {
    result.per_subspace.push_back(summarise(norms.select(1, s).contiguous(), flipped.select(1, s).contiguous(),
                                            iterations.select(1, s).contiguous()));
  }
  if (options.full_space && options.ensemble) {
    // DeepFool is the ensemble's first member, with the same options: its result is the DeepFool margin.
    const MinimalPerturbationOptions ensemble = options.resolved_ensemble_options();
    const at::Tensor predicted = batched_logits(model, images, options.batch_size).argmax(1).to(images.device());
    FullSpaceMinimum& minimum = result.full_space_minimum;
    minimum.minimal = minimal_perturbations(model, images, predicted, ensemble, {}, progress);
    const DeepFoolResult& full = minimum.minimal.deepfool;
    result.full_space = summarise(full.norms.to(at::kCPU), full.flipped.to(at::kCPU), full.iterations.to(at::kCPU));
    minimum.minimal.to_cpu();
    minimum.quartiles = quartiles(minimum.minimal.norms);
    minimum.warning = minimum.minimal.warning(ensemble);
  } else if (options.full_space) {
    const DeepFoolResult full = deepfool(model, images, options.resolved_deepfool(), progress);
    result.full_space = summarise(full.norms.to(at::kCPU), full.flipped.to(at::kCPU), full.iterations.to(at::kCPU));
  }
  return result;
}

}  // namespace robustlens
