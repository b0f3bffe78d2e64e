#include "robustlens/analyses/corruption_robustness.h"

#include "robustlens/core/distributed.h"
#include "robustlens/core/error.h"
#include "robustlens/core/random.h"
#include "robustlens/data/corruptions.h"
#include "robustlens/models/accuracy.h"

#include <algorithm>
#include <numeric>
#include <set>

namespace robustlens {
namespace {

double sum(const std::vector<double>& values) { return std::accumulate(values.begin(), values.end(), 0.0); }

/// Σ_s (1 − accuracy_s) − severities · offset.
double summed_error(const std::vector<double>& accuracies, double offset) {
  return static_cast<double>(accuracies.size()) * (1 - offset) - sum(accuracies);
}

std::optional<double> mean_if_all(const std::vector<std::optional<double>>& values) {
  double total = 0;
  for (const auto& value : values) {
    if (!value) return std::nullopt;
    total += *value;
  }
  return total / static_cast<double>(values.size());
}

nlohmann::json optional_json(const std::optional<double>& value) { return value ? nlohmann::json(*value) : nullptr; }

/// How many images of `data` each model classifies correctly once corrupted. Each image's corruption and prediction
/// are its own: a data-parallel run splits the images, their random draws being the whole set's
/// (core/distributed.h), except shot noise's, which every rank draws whole.
std::vector<double> correct_under(const Corruption& corruption, const std::vector<Model*>& models, const Dataset& data,
                                  const CorruptionRobustnessOptions& options) {
  const at::Generator generator = make_generator(derive_seed(options.seed, corruption.stream()));
  const at::Tensor whole = corruption.draws_from_pixels() ? corrupt(data.images, corruption, generator) : at::Tensor();
  return distributed::sum_batch_shares(data.size(), data.size(), [&](std::int64_t first, std::int64_t last) {
    const at::Tensor images = whole.defined() ? whole.slice(0, first, last)
                                              : corrupt(data.images.slice(0, first, last), corruption, generator);
    const at::Tensor labels = data.labels.slice(0, first, last);
    std::vector<double> counts;
    for (Model* model : models)
      counts.push_back(batched_logits(*model, images, options.batch_size).argmax(1).eq(labels).sum().item<double>());
    return counts;
  });
}

}  // namespace

CorruptionRobustnessOptions::CorruptionRobustnessOptions() : corruptions(corruption_names()) {}

void CorruptionRobustnessOptions::check() const {
  RL_CHECK(!corruptions.empty(), "CorruptionRobustnessOptions.corruptions: give at least one corruption");
  const std::set<std::string> distinct(corruptions.begin(), corruptions.end());
  RL_CHECK(distinct.size() == corruptions.size(), "CorruptionRobustnessOptions.corruptions: each at most once");
  for (const std::string& name : corruptions) Corruption(name, 1);
  RL_CHECK(!severities.empty(), "CorruptionRobustnessOptions.severities: give at least one severity");
  const std::set<int> distinct_severities(severities.begin(), severities.end());
  RL_CHECK(distinct_severities.size() == severities.size(),
           "CorruptionRobustnessOptions.severities: each at most once");
  for (const int severity : severities) {
    RL_CHECK(severity >= 1 && severity <= kMaxCorruptionSeverity, "CorruptionRobustnessOptions.severities: 1 to ",
             kMaxCorruptionSeverity, ", got ", severity);
  }
  RL_CHECK(batch_size >= 1, "CorruptionRobustnessOptions.batch_size must be >= 1, got ", batch_size);
}

nlohmann::json CorruptionRobustnessOptions::to_json() const {
  nlohmann::json parameters = nlohmann::json::object();
  for (const std::string& name : corruptions) {
    for (const int severity : severities)
      parameters[name][std::to_string(severity)] = Corruption(name, severity).parameters();
  }
  return {{"corruptions", corruptions},
          {"severities", severities},
          {"batch_size", batch_size},
          {"seed", seed},
          {"parameters", parameters}};
}

double CorruptionAccuracy::mean_corrupted() const {
  double total = 0, count = 0;
  for (const auto& row : corrupted) total += sum(row), count += static_cast<double>(row.size());
  return count > 0 ? total / count : 0;
}

std::vector<CorruptionAccuracy> measure_corruption_accuracy(const std::vector<Model*>& models, const Dataset& data,
                                                            const CorruptionRobustnessOptions& options,
                                                            const ProgressCallback& progress) {
  options.check();
  RL_CHECK(!models.empty(), "corruption robustness: give at least one model");
  RL_CHECK(data.size() > 0, "corruption robustness: dataset '", data.name, "' has no images");
  const AccuracyOptions accuracy = AccuracyOptions().set_batch_size(options.batch_size);
  std::vector<CorruptionAccuracy> results(models.size());
  for (std::size_t m = 0; m < models.size(); ++m)
    results[m].clean = evaluate_accuracy(*models[m], data, accuracy).accuracy;
  const auto total = static_cast<std::int64_t>(options.corruptions.size() * options.severities.size());
  std::int64_t done = 0;
  const auto n = static_cast<double>(data.size());
  for (const std::string& name : options.corruptions) {
    for (auto& result : results) result.corrupted.emplace_back();
    for (const int severity : options.severities) {
      report(progress, {"corruptions", done, total, name + ":" + std::to_string(severity)});
      const Corruption corruption(name, severity);
      const std::vector<double> correct = correct_under(corruption, models, data, options);
      for (std::size_t m = 0; m < models.size(); ++m) results[m].corrupted.back().push_back(correct[m] / n);
      ++done;
    }
  }
  report(progress, {"corruptions", total, total, ""});
  return results;
}

CorruptionErrors corruption_errors(const CorruptionAccuracy& model, const CorruptionAccuracy& baseline) {
  RL_CHECK(model.corrupted.size() == baseline.corrupted.size(), "corruption errors: the model has ",
           model.corrupted.size(), " corruptions, the baseline ", baseline.corrupted.size());
  CorruptionErrors errors;
  for (std::size_t c = 0; c < model.corrupted.size(); ++c) {
    RL_CHECK(model.corrupted[c].size() == baseline.corrupted[c].size(),
             "corruption errors: model and baseline were measured at different severities");
    const double base = summed_error(baseline.corrupted[c], 0);
    const double base_drop = summed_error(baseline.corrupted[c], 1 - baseline.clean);
    errors.corruption_error.push_back(base > 0 ? std::optional(summed_error(model.corrupted[c], 0) / base)
                                               : std::nullopt);
    errors.relative_corruption_error.push_back(
        base_drop > 0 ? std::optional(summed_error(model.corrupted[c], 1 - model.clean) / base_drop) : std::nullopt);
  }
  errors.mean_corruption_error = mean_if_all(errors.corruption_error);
  errors.relative_mean_corruption_error = mean_if_all(errors.relative_corruption_error);
  return errors;
}

nlohmann::json CorruptionErrors::to_json(const std::vector<std::string>& corruptions) const {
  nlohmann::json per_corruption = nlohmann::json::object();
  for (std::size_t c = 0; c < corruptions.size(); ++c) {
    per_corruption[corruptions[c]] = {{"corruption_error", optional_json(corruption_error.at(c))},
                                      {"relative_corruption_error", optional_json(relative_corruption_error.at(c))}};
  }
  return {{"mean_corruption_error", optional_json(mean_corruption_error)},
          {"relative_mean_corruption_error", optional_json(relative_mean_corruption_error)},
          {"per_corruption", per_corruption}};
}

SpectralCorruptionCorrelation spectral_corruption_correlation(const std::vector<double>& signed_scores,
                                                              const std::vector<double>& unsigned_scores,
                                                              const std::vector<CorruptionAccuracy>& accuracy,
                                                              std::uint64_t seed) {
  std::vector<double> corrupted, drop;
  for (const CorruptionAccuracy& model : accuracy) {
    corrupted.push_back(model.mean_corrupted());
    drop.push_back(model.clean - model.mean_corrupted());
  }
  return {spearman_with_bootstrap(signed_scores, corrupted, 2000, seed),
          spearman_with_bootstrap(unsigned_scores, corrupted, 2000, seed),
          spearman_with_bootstrap(signed_scores, drop, 2000, seed),
          spearman_with_bootstrap(unsigned_scores, drop, 2000, seed)};
}

nlohmann::json SpectralCorruptionCorrelation::to_json() const {
  return {{"accuracy",
           {{"signed_score", signed_vs_accuracy.to_json()}, {"unsigned_score", unsigned_vs_accuracy.to_json()}}},
          {"drop", {{"signed_score", signed_vs_drop.to_json()}, {"unsigned_score", unsigned_vs_drop.to_json()}}},
          {"accuracy_is", "the mean accuracy over every corruption and severity"},
          {"drop_is", "the clean accuracy minus that mean"}};
}

}  // namespace robustlens
