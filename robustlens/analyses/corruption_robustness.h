// Robustness to common corruptions (Hendrycks & Dietterich, ICLR 2019): each model's accuracy on the images
// under every corruption and severity of data/corruptions.h, and the corruption errors relative to a baseline
// model, as the paper defines them. I-ASIDE (Luo et al., TMLR 2024) validates its spectral robustness score by
// its correlation with these across models; spectral_corruption_correlation makes that a number.
#pragma once

#include "robustlens/analyses/statistics.h"
#include "robustlens/core/model.h"
#include "robustlens/core/options.h"
#include "robustlens/core/progress.h"
#include "robustlens/data/dataset.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace robustlens {

struct CorruptionRobustnessOptions {
  /// Names from corruption_names(); all ten by default.
  std::vector<std::string> corruptions;
  /// Severities 1..5, each at most once; the corruption errors sum over these (the paper: all five).
  std::vector<int> severities = {1, 2, 3, 4, 5};
  std::int64_t batch_size = 256;
  /// Corruption c at severity s draws from a generator of derive_seed(seed, c·5 + s) alone: every model sees the
  /// same corrupted images (a paired comparison).
  std::uint64_t seed = 0;

  CorruptionRobustnessOptions();
  RL_SETTER(corruptions)
  RL_SETTER(severities)
  RL_SETTER(batch_size)
  RL_SETTER(seed)

  void check() const;
  nlohmann::json to_json() const;
};

/// One model's accuracies.
struct CorruptionAccuracy {
  double clean = 0;
  /// [corruption][severity], in the options' order.
  std::vector<std::vector<double>> corrupted;
  /// The mean over every corruption and severity.
  double mean_corrupted() const;
};

/// The accuracy of every model on the clean images and on each corruption and severity of them (each corrupted
/// set is made once and shown to every model).
std::vector<CorruptionAccuracy> measure_corruption_accuracy(const std::vector<Model*>& models, const Dataset& data,
                                                            const CorruptionRobustnessOptions& options,
                                                            const ProgressCallback& progress = {});

/// Corruption errors of a model against a baseline, errors E = 1 − accuracy summed over the severities:
///   CE_c = Σ_s E_{s,c} / Σ_s E^base_{s,c}                      (nothing where the baseline makes no error),
///   relative CE_c = Σ_s (E_{s,c} − E_clean) / Σ_s (E^base_{s,c} − E^base_clean)
///                                                               (nothing where the baseline loses no accuracy),
/// mCE and relative mCE their means over the corruptions (nothing when any term is undefined). Below 1: more
/// robust than the baseline; the baseline itself scores exactly 1 wherever its terms are defined.
struct CorruptionErrors {
  std::vector<std::optional<double>> corruption_error, relative_corruption_error;
  std::optional<double> mean_corruption_error, relative_mean_corruption_error;
  nlohmann::json to_json(const std::vector<std::string>& corruptions) const;
};
CorruptionErrors corruption_errors(const CorruptionAccuracy& model, const CorruptionAccuracy& baseline);

/// I-ASIDE's validation across models: Spearman's correlation of the spectral robustness score (signed and
/// unsigned) with the mean accuracy under corruptions, and with the drop from the clean accuracy to it (robust
/// training trades clean accuracy, which the first mixes in), with percentile bootstrap intervals (statistics.h;
/// at least 3 models). The paper's claim: positive with the accuracy, negative with the drop.
struct SpectralCorruptionCorrelation {
  RankCorrelation signed_vs_accuracy, unsigned_vs_accuracy, signed_vs_drop, unsigned_vs_drop;
  nlohmann::json to_json() const;
};
SpectralCorruptionCorrelation spectral_corruption_correlation(const std::vector<double>& signed_scores,
                                                              const std::vector<double>& unsigned_scores,
                                                              const std::vector<CorruptionAccuracy>& accuracy,
                                                              std::uint64_t seed);

}  // namespace robustlens
