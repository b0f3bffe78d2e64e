#include "robustlens/analyses/ood_detection.h"

#include "robustlens/analyses/statistics.h"
#include "robustlens/core/error.h"

#include <cmath>

namespace robustlens {
namespace {

/// The three scores of every image of `data`, larger = more anomalous.
struct Scores {
  at::Tensor mahalanobis, odin, max_softmax;
};

Scores score_images(Model& model, const Dataset& data, const LatentPass& train, const at::Tensor& train_labels,
                    const LatentOptions& options, const ProgressCallback& progress) {
  const LatentPass pass = latent_pass(model, data, options.batch_size, "latent codes (" + data.name + ")", progress);
  const at::Tensor predicted = pass.logits.argmax(1);
  return {mahalanobis_scores(train.latent, train_labels, train.logits.argmax(1), pass.latent, predicted,
                             options.covariance_regularisation),
          odin_scores(pass.logits, options.odin_temperature), odin_scores(pass.logits, 1.0)};
}

DetectionQuality quality(const at::Tensor& in_scores, const at::Tensor& out_scores) {
  const at::Tensor in_kept = in_scores.masked_select(at::isfinite(in_scores));
  const at::Tensor out_kept = out_scores.masked_select(at::isfinite(out_scores));
  if (in_kept.numel() == 0 || out_kept.numel() == 0) return {std::nan(""), std::nan("")};
  const at::Tensor positives =
      at::cat({at::zeros({in_kept.numel()}, at::kBool), at::ones({out_kept.numel()}, at::kBool)});
  return {rank_auroc(at::cat({in_kept, out_kept}), positives), false_positive_rate_at(in_kept, out_kept)};
}

}  // namespace

double false_positive_rate_at(const at::Tensor& in_scores, const at::Tensor& out_scores, double tpr) {
  RL_CHECK(tpr > 0 && tpr <= 1, "false-positive rate: the true-positive rate must be in (0, 1], got ", tpr);
  RL_CHECK(in_scores.numel() > 0 && out_scores.numel() > 0,
           "false-positive rate: needs in-distribution and out-of-distribution scores");
  const at::Tensor sorted = std::get<0>(in_scores.to(at::kDouble).flatten().sort());
  const auto kept = static_cast<std::int64_t>(std::ceil(tpr * static_cast<double>(sorted.numel()) - 1e-9));
  const double threshold = sorted[std::max<std::int64_t>(kept, 1) - 1].item<double>();
  return (out_scores.to(at::kDouble) <= threshold).to(at::kDouble).mean().item<double>();
}

nlohmann::json DetectionQuality::to_json() const {
  const auto finite = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); };
  return {{"auroc", finite(auroc)}, {"fpr_at_95_tpr", finite(fpr_at_95_tpr)}};
}

nlohmann::json OodDetection::to_json() const {
  return {{"set", set},
          {"in_images", in_images},
          {"out_images", out_images},
          {"mahalanobis", mahalanobis.to_json()},
          {"odin", odin.to_json()},
          {"max_softmax", max_softmax.to_json()},
          {"mahalanobis_left_out", mahalanobis_left_out}};
}

std::vector<OodDetection> detect_out_of_distribution(Model& model, const Dataset& train, const Dataset& test,
                                                     const std::vector<OodSet>& sets, const LatentOptions& options,
                                                     const ProgressCallback& progress) {
  options.check();
  RL_CHECK(model.has_latent(), "model '", model.info().path, "' exposes no latent code (latent())");
  at::NoGradGuard no_grad;
  const LatentPass on_train = latent_pass(model, train, options.batch_size, "latent codes (train)", progress);
  const Scores in = score_images(model, test, on_train, train.labels, options, progress);
  std::vector<OodDetection> results;
  for (const OodSet& set : sets) {
    RL_CHECK(set.images.image_shape() == test.image_shape(), "OOD set '", set.name, "' has images ",
             nlohmann::json(set.images.image_shape()).dump(), " but the model's data ",
             nlohmann::json(test.image_shape()).dump());
    RL_CHECK(set.images.size() > 0, "OOD set '", set.name, "' has no images");
    const Scores out = score_images(model, set.images, on_train, train.labels, options, progress);
    OodDetection detection;
    detection.set = set.name;
    detection.in_images = test.size();
    detection.out_images = set.images.size();
    detection.mahalanobis = quality(in.mahalanobis, out.mahalanobis);
    detection.odin = quality(in.odin, out.odin);
    detection.max_softmax = quality(in.max_softmax, out.max_softmax);
    detection.mahalanobis_left_out =
        at::isnan(in.mahalanobis).sum().item<std::int64_t>() + at::isnan(out.mahalanobis).sum().item<std::int64_t>();
    results.push_back(detection);
  }
  return results;
}

}  // namespace robustlens
