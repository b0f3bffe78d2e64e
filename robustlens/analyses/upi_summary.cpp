// UPI's summaries (analyses/upi.h): the metrics' records, the mean and spread over random draws, the summary radius,
// and the result's record.
#include "robustlens/analyses/upi.h"

#include "robustlens/analyses/statistics.h"
#include "robustlens/attacks/minimal_perturbation.h"
#include "robustlens/core/error.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <tuple>
#include <utility>

namespace robustlens {

nlohmann::json UpiMetrics::to_json() const {
  nlohmann::json json = {{"dissimilarity", dissimilarity},
                         {"dissimilarity_unchanged", dissimilarity_unchanged},
                         {"topk_intersection", topk_intersection},
                         {"spearman", spearman},
                         {"fooling_rate", fooling_rate}};
  if (draws > 1) {
    json["draws"] = draws;
    json["spread"] = {{"statistic", "standard deviation over the draws"},
                      {"dissimilarity", dissimilarity_spread},
                      {"dissimilarity_unchanged", dissimilarity_unchanged_spread},
                      {"fooling_rate", fooling_rate_spread}};
  }
  return json;
}

namespace {

/// Mean and standard deviation (n − 1; 0 for one value) of the finite values; NaN mean when there are none.
std::pair<double, double> mean_and_spread(const std::vector<double>& values) {
  std::vector<double> finite;
  std::copy_if(values.begin(), values.end(), std::back_inserter(finite), [](double v) { return std::isfinite(v); });
  if (finite.empty()) return {std::nan(""), std::nan("")};
  double mean = 0;
  for (const double v : finite) mean += v / static_cast<double>(finite.size());
  double squares = 0;
  for (const double v : finite) squares += (v - mean) * (v - mean);
  return {mean, finite.size() > 1 ? std::sqrt(squares / static_cast<double>(finite.size() - 1)) : 0.0};
}

}  // namespace

UpiMetrics average_draws(const std::vector<UpiMetrics>& draws) {
  RL_CHECK(!draws.empty(), "UPI: no draws to average");
  const auto over = [&](double UpiMetrics::*field) {
    std::vector<double> values;
    for (const UpiMetrics& m : draws) values.push_back(m.*field);
    return mean_and_spread(values);
  };
  UpiMetrics mean;
  std::tie(mean.dissimilarity, mean.dissimilarity_spread) = over(&UpiMetrics::dissimilarity);
  std::tie(mean.dissimilarity_unchanged, mean.dissimilarity_unchanged_spread) =
      over(&UpiMetrics::dissimilarity_unchanged);
  std::tie(mean.fooling_rate, mean.fooling_rate_spread) = over(&UpiMetrics::fooling_rate);
  mean.topk_intersection = over(&UpiMetrics::topk_intersection).first;
  mean.spearman = over(&UpiMetrics::spearman).first;
  mean.draws = static_cast<std::int64_t>(draws.size());
  return mean;
}

double resolve_summary_eps(Model& model, const Dataset& correct, const UpiOptions& options, std::string& source,
                           const ProgressCallback& progress) {
  if (options.summary_eps > 0) {
    source = "given";
    return options.summary_eps;
  }
  RL_CHECK(correct.size() >= 1, "UPI: no correctly classified test images to find the minimal perturbations of");
  model.set_training(false);
  const at::Tensor images = correct.images.to(model.device()), labels = correct.labels.to(model.device());
  const MinimalPerturbationResult minimal = minimal_perturbations(
      model, images, labels,
      MinimalPerturbationOptions().set_norm(Norm::l2).set_clip(options.clip).set_batch_size(options.batch_size), {},
      progress);
  const double median = quartiles(minimal.norms.to(at::kCPU)).median;
  RL_CHECK(std::isfinite(median) && median > 0, "UPI: the median minimal perturbation of the ", correct.size(),
           " correctly classified test images is ", median,
           " (the attack ensemble found none for half of them); give the summary radius in UpiOptions.summary_eps");
  source = "the median minimal perturbation (attack ensemble: DeepFool, FMN, PGD bisection, long FMN; L2) of the " +
           std::to_string(correct.size()) + " correctly classified test images";
  return median;
}

nlohmann::json UpiResult::to_json() const {
  nlohmann::json per_eps = nlohmann::json::array();
  const auto by_name = [](const std::map<std::string, UpiMetrics>& metrics) {
    nlohmann::json json = nlohmann::json::object();
    for (const auto& [name, m] : metrics) json[name] = m.to_json();
    return json;
  };
  for (std::size_t e = 0; e < metrics.size(); ++e)
    per_eps.push_back({{"eps", eps[e]}, {"metrics", by_name(metrics[e])}});
  return {{"attack_images", attack_images},
          {"test_images", test_images},
          {"top_k", top_k},
          {"per_eps", per_eps},
          {"summary",
           {{"eps", summary_eps},
            {"eps_source", summary_eps_source},
            {"method", summary_method},
            {"metrics", by_name(metrics.at(summary_index))}}},
          {"floor", {{"eps", floor_eps}, {"metrics", by_name(floor)}}}};
}

}  // namespace robustlens
