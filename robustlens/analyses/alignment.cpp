#include "robustlens/analyses/alignment.h"

#include "robustlens/analyses/statistics.h"
#include "robustlens/core/error.h"
#include "robustlens/explain/map_metrics.h"

#include <torch/autograd.h>

#include <cmath>

namespace robustlens {
void AlignmentOptions::check() const {
  RL_CHECK(batch_size >= 1, "--batch-size must be >= 1, got ", batch_size);
}

nlohmann::json AlignmentOptions::to_json() const {
  return {{"pairing", conditional ? "conditional: grad of logit_y vs score given y"
                                  : "unconditional: grad of the summed logits vs the unconditional score"},
          {"batch_size", batch_size},
          {"metrics", {"cosine similarity", "SSIM of max-abs-normalised maps (Gaussian window 11, sigma 1.5)"}}};
}

at::Tensor alignment_gradient(Model& model, const at::Tensor& images, const at::Tensor& labels, bool conditional) {
  const at::Tensor x = images.detach().requires_grad_(true);
  const at::Tensor logits = model.forward(x);
  check_logits(logits, x.size(0), "the model");
  // Rows do not interact, so the gradient of the sum is each row's own gradient.
  const at::Tensor objective = conditional ? logits.gather(1, labels.view({-1, 1})).sum() : logits.sum();
  return torch::autograd::grad({objective}, {x})[0].detach();
}

nlohmann::json AlignmentResult::to_json() const {
  return {{"mean_cosine", mean_cosine},
          {"cosine_standard_error", cosine_standard_error},
          {"mean_ssim", mean_ssim},
          {"ssim_standard_error", ssim_standard_error},
          {"images", cosine.numel()}};
}

AlignmentResult analyse_alignment(Model& model, const Dataset& data, const ScoreFunction& score,
                                  const AlignmentOptions& options, const ProgressCallback& progress) {
  options.check();
  std::vector<at::Tensor> cosines, ssims;
  for (std::int64_t start = 0; start < data.size(); start += options.batch_size) {
    const std::int64_t end = std::min(data.size(), start + options.batch_size);
    const at::Tensor images = data.images.slice(0, start, end).to(model.device());
    const at::Tensor labels = data.labels.slice(0, start, end).to(model.device());
    const at::Tensor gradient = alignment_gradient(model, images, labels, options.conditional);
    const at::Tensor data_score = score(images, options.conditional ? labels : at::Tensor()).to(gradient.device());
    RL_CHECK(data_score.sizes() == images.sizes(), "the score function returned ", data_score.sizes(),
             " for images ", images.sizes());
    cosines.push_back(map_cosine(gradient.to(at::kDouble), data_score.to(at::kDouble)).cpu());
    ssims.push_back(structural_similarity(max_abs_normalise(gradient), max_abs_normalise(data_score), 2.0).cpu());
    report(progress, {"alignment", end, data.size(), ""});
  }
  AlignmentResult result;
  result.cosine = at::cat(cosines);
  result.ssim = at::cat(ssims);
  std::tie(result.mean_cosine, result.cosine_standard_error) = mean_and_standard_error(result.cosine);
  std::tie(result.mean_ssim, result.ssim_standard_error) = mean_and_standard_error(result.ssim);
  return result;
}

}  // namespace robustlens
