#include "robustlens/analyses/latent.h"

#include "robustlens/analyses/statistics.h"
#include "robustlens/attacks/minimal_perturbation.h"
#include "robustlens/core/batches.h"
#include "robustlens/core/distributed.h"
#include "robustlens/core/error.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

namespace robustlens {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// Each distinct label (ascending) with the indices of its rows.
std::vector<std::pair<std::int64_t, at::Tensor>> rows_by_class(const at::Tensor& labels) {
  std::vector<std::pair<std::int64_t, at::Tensor>> groups;
  const at::Tensor classes = std::get<0>(at::_unique(labels)).to(at::kLong);
  for (std::int64_t i = 0; i < classes.size(0); ++i) {
    const std::int64_t c = classes[i].item<std::int64_t>();
    groups.emplace_back(c, labels.eq(c).nonzero().flatten());
  }
  return groups;
}

/// Mean and scatter matrix Σ (x − μ)(x − μ)ᵀ of the rows of `all` (M×P, the same on every rank); each rank sums
/// its share of the rows.
std::pair<at::Tensor, at::Tensor> mean_and_scatter(const at::Tensor& all) {
  const at::Tensor x = distributed::share_of_rows(all);
  at::Tensor sum = x.sum(0);
  distributed::all_reduce_sum(sum);
  const at::Tensor mean = sum / static_cast<double>(all.size(0)), deviations = x - mean;
  at::Tensor scatter = deviations.t().mm(deviations);
  distributed::all_reduce_sum(scatter);
  return {mean, scatter};
}

}  // namespace

LatentPass latent_pass(Model& model, const Dataset& data, std::int64_t batch_size, const std::string& task,
                       const ProgressCallback& progress) {
  // Each image's codes are its own: a data-parallel run splits the images (core/distributed.h).
  const std::vector<at::Tensor> parts = distributed::shard_rows(
      data.size(), progress, [&](std::int64_t first, std::int64_t last, const ProgressCallback& share_progress) {
        at::NoGradGuard no_grad;
        std::vector<at::Tensor> logits, latents;
        for (const auto [start, end] : batches(last - first, batch_size)) {
          const at::Tensor images = data.images.slice(0, first + start, first + end).to(model.device());
          auto [batch_logits, batch_latent] = model.forward_with_latent(images);
          check_logits(batch_logits, end - start, "model '" + model.info().path + "'");
          RL_CHECK(batch_latent.dim() == 2 && batch_latent.size(0) == end - start, "model '", model.info().path,
                   "': latent() must return N×P for a batch of N=", end - start, ", got ", batch_latent.sizes());
          logits.push_back(batch_logits.to(at::kCPU, at::kFloat));
          latents.push_back(batch_latent.to(at::kCPU, at::kFloat));
          report(share_progress, {task, end, last - first, ""});
        }
        return std::vector<at::Tensor>{at::cat(logits), at::cat(latents)};
      });
  LatentPass pass{parts[0], parts[1]};
  RL_CHECK(at::isfinite(pass.latent).all().item<bool>(), "model '", model.info().path, "' gives non-finite latents on ",
           data.name);
  return pass;
}

double auroc_or_nan(const at::Tensor& scores, const at::Tensor& positives) {
  const at::Tensor kept = at::isfinite(scores);
  return rank_auroc(scores.masked_select(kept), positives.masked_select(kept));
}

void LatentOptions::check() const {
  RL_CHECK(batch_size >= 1, "LatentOptions.batch_size must be >= 1, got ", batch_size);
  RL_CHECK(deepfool_samples >= 0, "LatentOptions.deepfool_samples must be >= 0, got ", deepfool_samples);
  RL_CHECK(odin_temperature > 0, "LatentOptions.odin_temperature must be > 0, got ", odin_temperature);
  RL_CHECK(gmm_iterations >= 1, "GMM iterations must be >= 1, got ", gmm_iterations);
  RL_CHECK(gmm_tolerance >= 0, "GMM tolerance must be >= 0, got ", gmm_tolerance);
  RL_CHECK(covariance_regularisation > 0, "covariance regularisation must be > 0, got ", covariance_regularisation);
  deepfool.check();
  if (ensemble) ensemble_options.check();
}

DeepFoolOptions LatentOptions::resolved_deepfool() const {
  return DeepFoolOptions(deepfool).set_batch_size(batch_size);
}

nlohmann::json LatentOptions::to_json() const {
  return {{"batch_size", batch_size},
          {"deepfool_samples", deepfool_samples},
          {"deepfool", resolved_deepfool().to_json()},
          {"ensemble", ensemble ? MinimalPerturbationOptions(ensemble_options)
                                      .set_deepfool_options(resolved_deepfool())
                                      .set_batch_size(batch_size)
                                      .to_json()
                                : nlohmann::json(false)},
          {"odin_temperature", odin_temperature},
          {"gmm_iterations", gmm_iterations},
          {"gmm_tolerance", gmm_tolerance},
          {"covariance_regularisation", covariance_regularisation}};
}

nlohmann::json BinarityResult::to_json() const {
  nlohmann::json per_unit = nlohmann::json::array();
  for (std::size_t d = 0; d < units.size(); ++d) {
    per_unit.push_back(constant[d] ? nlohmann::json{{"constant", true}} : units[d].to_json());
  }
  return {{"mean_log_likelihood", mean_log_likelihood},
          {"mean_std", mean_std},
          {"separation", separation},
          {"separation_std", separation_std},
          {"separation_median", separation_median},
          {"constant_units", constant_units},
          {"units", per_unit}};
}

BinarityResult latent_binarity(const at::Tensor& latent, const LatentOptions& options) {
  const at::Tensor z = latent.detach().to(at::kCPU, at::kDouble);
  const at::Tensor mean = z.mean(0), deviation = z.std(0, /*unbiased=*/false);
  BinarityResult result;
  for (std::int64_t d = 0; d < z.size(1); ++d) result.constant.push_back(!(deviation[d].item<double>() > 1e-12));
  result.units = fit_two_gaussians((z - mean) / deviation.clamp_min(1e-12), options.gmm_iterations,
                                   options.gmm_tolerance, options.covariance_regularisation);
  std::vector<double> separations;
  double likelihood = 0, stds = 0;
  for (std::size_t d = 0; d < result.units.size(); ++d) {
    if (result.constant[d]) {
      ++result.constant_units;
      continue;
    }
    const TwoGaussians& fit = result.units[d];
    separations.push_back(fit.separation());
    likelihood += fit.mean_log_likelihood;
    stds += 0.5 * (fit.std[0] + fit.std[1]);
  }
  const auto fitted = static_cast<double>(separations.size());
  if (separations.empty()) {
    result.mean_log_likelihood = result.mean_std = result.separation = result.separation_std = kNaN;
    result.separation_median = kNaN;
    return result;
  }
  result.mean_log_likelihood = likelihood / fitted;
  result.mean_std = stds / fitted;
  const at::Tensor s = at::tensor(separations, at::kDouble);
  result.separation = s.mean().item<double>();
  result.separation_std = s.std(/*unbiased=*/false).item<double>();
  result.separation_median = interpolated_quantile(s, 0.5);
  return result;
}

nlohmann::json EncodingResult::to_json() const {
  return {{"same_encoding_fraction", same_encoding_fraction}, {"distinct_codes", distinct_codes}};
}

EncodingResult same_encoding(const at::Tensor& latent, const at::Tensor& predicted) {
  RL_CHECK(latent.dim() == 2 && predicted.dim() == 1 && predicted.size(0) == latent.size(0) && latent.size(0) > 0,
           "same-encoding fraction needs N×P latents and N predictions, got ", latent.sizes(), " and ",
           predicted.sizes());
  const at::Tensor codes = latent.detach().to(at::kCPU).gt(0).to(at::kByte), labels = predicted.to(at::kCPU);
  EncodingResult result;
  result.distinct_codes = std::get<0>(at::unique_dim(codes, 0)).size(0);
  std::int64_t most_frequent_sum = 0;
  for (const auto& [label, rows] : rows_by_class(labels)) {
    const at::Tensor counts = std::get<2>(at::unique_dim(codes.index_select(0, rows), 0, true, false, true));
    most_frequent_sum += counts.max().item<std::int64_t>();
  }
  result.same_encoding_fraction = static_cast<double>(most_frequent_sum) / static_cast<double>(latent.size(0));
  return result;
}

nlohmann::json CollapseResult::to_json() const {
  return {{"nc1", nc1},
          {"within_class_variance", within_class_variance},
          {"equiangularity", equiangularity},
          {"equinorm", equinorm},
          {"classes", classes}};
}

CollapseResult neural_collapse(const at::Tensor& latent, const at::Tensor& predicted) {
  RL_CHECK(latent.dim() == 2 && predicted.dim() == 1 && predicted.size(0) == latent.size(0),
           "neural collapse needs N×P latents and N predictions, got ", latent.sizes(), " and ", predicted.sizes());
  const at::Tensor z = latent.detach().to(at::kCPU, at::kDouble), labels = predicted.to(at::kCPU);
  const std::int64_t p = z.size(1);
  const at::Tensor global_mean = z.mean(0);
  at::Tensor within = at::zeros({p, p}, z.options()), between = at::zeros({p, p}, z.options());
  std::vector<at::Tensor> centred_means;
  for (const auto& [label, rows] : rows_by_class(labels)) {
    if (rows.size(0) < 2) continue;
    const auto [mean, scatter] = mean_and_scatter(z.index_select(0, rows));
    within += scatter / static_cast<double>(rows.size(0) - 1);
    const at::Tensor centred = mean - global_mean;
    between += at::outer(centred, centred);
    centred_means.push_back(centred);
  }
  CollapseResult result;
  result.classes = static_cast<std::int64_t>(centred_means.size());
  if (result.classes < 2) {
    result.nc1 = result.within_class_variance = result.equiangularity = result.equinorm = kNaN;
    return result;
  }
  const auto count = static_cast<double>(result.classes);
  within /= count;
  between /= count;
  result.nc1 = at::trace(within.mm(at::linalg_pinv(between))).item<double>() / count;
  result.within_class_variance = at::trace(within).item<double>() / static_cast<double>(p);
  const at::Tensor means = at::stack(centred_means), norms = means.norm(2, 1);
  const at::Tensor unit = means / norms.clamp_min(1e-300).unsqueeze(1);
  const at::Tensor cosines = unit.mm(unit.t());
  const at::Tensor upper = at::triu_indices(result.classes, result.classes, 1);
  result.equiangularity = cosines.index({upper[0], upper[1]}).std(/*unbiased=*/false).item<double>();
  result.equinorm = (norms.std(/*unbiased=*/false) / norms.mean()).item<double>();
  return result;
}

at::Tensor mahalanobis_scores(const at::Tensor& train_latent, const at::Tensor& train_labels,
                              const at::Tensor& train_predicted, const at::Tensor& test_latent,
                              const at::Tensor& test_predicted, double regularisation) {
  RL_CHECK(train_latent.dim() == 2 && test_latent.dim() == 2 && train_latent.size(1) == test_latent.size(1),
           "Mahalanobis scores need N×P training and M×P test latents, got ", train_latent.sizes(), " and ",
           test_latent.sizes());
  const at::Tensor train = train_latent.detach().to(at::kCPU, at::kDouble);
  const at::Tensor mean = train.mean(0), deviation = train.std(0, /*unbiased=*/false).clamp_min(1e-12);
  const at::Tensor z_train = (train - mean) / deviation;
  const at::Tensor z_test = (test_latent.detach().to(at::kCPU, at::kDouble) - mean) / deviation;
  const at::Tensor labels = train_labels.to(at::kCPU), predicted = train_predicted.to(at::kCPU);
  const at::Tensor test_labels = test_predicted.to(at::kCPU);
  at::Tensor scores = at::full({z_test.size(0)}, kNaN, z_test.options());
  const at::Tensor identity = at::eye(z_train.size(1), z_train.options());
  for (const auto& [c, rows] : rows_by_class(test_labels)) {
    const at::Tensor fitted = z_train.index_select(0, (predicted.eq(c) & labels.eq(c)).nonzero().flatten());
    if (fitted.size(0) < 2) continue;
    const auto [class_mean, scatter] = mean_and_scatter(fitted);
    const at::Tensor covariance = scatter / static_cast<double>(fitted.size(0)) + regularisation * identity;
    // ‖L⁻¹(z − μ)‖ with Σ = LLᵀ.
    const at::Tensor whitened =
        at::linalg_solve_triangular(at::linalg_cholesky(covariance), (z_test.index_select(0, rows) - class_mean).t(),
                                    /*upper=*/false);
    scores.index_put_({rows}, whitened.pow(2).sum(0).sqrt());
  }
  return scores;
}

at::Tensor odin_scores(const at::Tensor& logits, double temperature) {
  RL_CHECK(temperature > 0, "ODIN temperature must be > 0, got ", temperature);
  return -std::get<0>(at::softmax(logits.detach().to(at::kDouble) / temperature, 1).max(1));
}

nlohmann::json LatentResult::to_json() const {
  return {{"options", options.to_json()},
          {"latent_dim", latent_dim},
          {"train_images", train_images},
          {"test_images", test_images},
          {"test_accuracy", test_accuracy},
          {"binarity", binarity.to_json()},
          {"encoding", {{"train", train_encoding.to_json()}, {"test", test_encoding.to_json()}}},
          {"collapse", {{"train", train_collapse.to_json()}, {"test", test_collapse.to_json()}}},
          {"robustness",
           {{"deepfool_ratio", robustness_ratio},
            {"deepfool_ratio_standard_error", robustness_ratio_standard_error},
            {"images", deepfool_images},
            {"not_flipped", deepfool_not_flipped},
            {"ensemble_ratio", ensemble_ratio},
            {"ensemble_ratio_standard_error", ensemble_ratio_standard_error},
            {"ensemble_ratio_median", ensemble_ratio_median},
            {"ensemble_not_found", ensemble_not_found},
            {"deepfool_overestimate_share", deepfool_overestimate_share},
            {"ensemble_warning", ensemble_warning.empty() ? nlohmann::json() : nlohmann::json(ensemble_warning)},
            {"ensemble_counted_against",
             "the true label (0 for a misclassified image); DeepFool's ratio follows the "
             "predicted label"}}},
          {"reliability",
           {{"mahalanobis_auroc", mahalanobis_auroc},
            {"odin_auroc", odin_auroc},
            {"max_softmax_auroc", max_softmax_auroc},
            {"misclassified", misclassified},
            {"mahalanobis_left_out", mahalanobis_left_out}}}};
}

LatentResult analyse_latent(Model& model, const Dataset& train, const Dataset& test, const LatentOptions& options,
                            const ProgressCallback& progress) {
  options.check();
  RL_CHECK(model.has_latent(), "model '", model.info().path,
           "' exposes no latent code (built-in models do; a TorchScript module needs a method named 'latent')");
  RL_CHECK(train.size() >= 2 && test.size() >= 1, "the latent analyses need at least 2 training and 1 test image, got ",
           train.size(), " and ", test.size());
  const LatentPass on_train = latent_pass(model, train, options.batch_size, "latent codes (train)", progress);
  const LatentPass on_test = latent_pass(model, test, options.batch_size, "latent codes (test)", progress);
  const at::Tensor train_predicted = on_train.logits.argmax(1), test_predicted = on_test.logits.argmax(1);
  const at::Tensor misclassified = test_predicted.ne(test.labels.to(at::kCPU));

  LatentResult result;
  result.options = options;
  result.latent_dim = on_train.latent.size(1);
  result.train_images = train.size();
  result.test_images = test.size();
  result.test_accuracy = 1 - misclassified.to(at::kDouble).mean().item<double>();
  result.binarity = latent_binarity(on_train.latent, options);
  result.train_encoding = same_encoding(on_train.latent, train_predicted);
  result.test_encoding = same_encoding(on_test.latent, test_predicted);
  result.train_collapse = neural_collapse(on_train.latent, train_predicted);
  result.test_collapse = neural_collapse(on_test.latent, test_predicted);

  const at::Tensor mahalanobis = mahalanobis_scores(on_train.latent, train.labels, train_predicted, on_test.latent,
                                                    test_predicted, options.covariance_regularisation);
  result.misclassified = misclassified.sum().item<std::int64_t>();
  result.mahalanobis_left_out = at::isnan(mahalanobis).sum().item<std::int64_t>();
  result.mahalanobis_auroc = auroc_or_nan(mahalanobis, misclassified);
  result.odin_auroc = rank_auroc(odin_scores(on_test.logits, options.odin_temperature), misclassified);
  result.max_softmax_auroc = rank_auroc(odin_scores(on_test.logits, 1.0), misclassified);

  result.deepfool_images = std::min(options.deepfool_samples, test.size());
  if (result.deepfool_images == 0) {
    result.robustness_ratio = result.robustness_ratio_standard_error = kNaN;
  } else {
    const at::Tensor images = test.images.slice(0, 0, result.deepfool_images).to(model.device());
    const at::Tensor image_norms = images.flatten(1).norm(2, 1).to(at::kCPU, at::kDouble).clamp_min(1e-12);
    result.ensemble_ratio = result.ensemble_ratio_standard_error = result.ensemble_ratio_median = kNaN;
    result.deepfool_overestimate_share = kNaN;
    DeepFoolResult attack;
    if (options.ensemble) {
      // Its DeepFool member is this analysis's DeepFool: run once.
      const MinimalPerturbationResult minimal =
          minimal_perturbations(model, images, test.labels.slice(0, 0, result.deepfool_images).to(model.device()),
                                MinimalPerturbationOptions(options.ensemble_options)
                                    .set_deepfool(true)
                                    .set_deepfool_options(options.resolved_deepfool())
                                    .set_batch_size(options.batch_size),
                                {}, progress);
      attack = minimal.deepfool;
      const at::Tensor ratios = minimal.norms.to(at::kCPU) / image_norms;
      const at::Tensor found = at::isfinite(ratios);
      result.ensemble_not_found = found.logical_not().sum().item<std::int64_t>();
      if (found.any().item<bool>()) {
        std::tie(result.ensemble_ratio, result.ensemble_ratio_standard_error) =
            mean_and_standard_error(ratios.masked_select(found));
      }
      result.ensemble_ratio_median = quartiles(ratios).median;
      result.deepfool_overestimate_share = minimal.deepfool_overestimate_share;
      result.ensemble_warning = minimal.warning(options.ensemble_options);
    } else {
      attack = deepfool(model, images, options.resolved_deepfool(), progress);
    }
    const at::Tensor ratios = attack.norms.to(at::kCPU, at::kDouble) / image_norms;
    std::tie(result.robustness_ratio, result.robustness_ratio_standard_error) = mean_and_standard_error(ratios);
    result.deepfool_not_flipped = attack.flipped.logical_not().sum().item<std::int64_t>();
  }
  result.train_latent = on_train.latent;
  result.train_predicted = train_predicted;
  result.test_latent = on_test.latent;
  result.test_logits = on_test.logits;
  result.test_predicted = test_predicted;
  return result;
}

}  // namespace robustlens
