// One model of a robust-training sweep (Srinivas, Bordt & Lakkaraju, NeurIPS
// 2023): the measures taken of each trained model — first-order on- and
// off-manifold sensitivities per direction and the change at one small
// perturbation length, the distractor halves (data with a signal mask), and
// the alignment of input gradients with the data score (when a score is
// given). `robustlens sweep` trains the models (the objective at each strength
// is train/objectives.h's objective_at_strength) and calls these; the three
// regimes are drawn from the first-order sensitivities by sweep_regimes, and
// the paper's claim becomes a number in alignment_robustness_correlation.
#pragma once

#include "robustlens/analyses/alignment.h"
#include "robustlens/analyses/manifold.h"
#include "robustlens/analyses/statistics.h"
#include "robustlens/core/options.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace robustlens {

struct SweepMeasureOptions {
  /// L2 length of the on- and off-manifold perturbations (pixel units): small,
  /// so that the change is not saturated for the weakest models.
  double eps = 0.3;
  /// Distractor data: noise standard deviation on each half.
  double noise = 0.3;
  /// Random directions (noise draws) per image.
  std::int64_t draws = 4;
  /// Images per chunk of every measure.
  std::int64_t batch_size = 64;
  /// The measures' noise and directions come from one generator of this seed alone (core/random.h): every
  /// model measured with the same seed sees the same draws (a paired comparison).
  std::uint64_t seed = 0;
  /// The alignment's pairing and noise levels (its batch size is batch_size).
  AlignmentOptions alignment;

  RL_SETTER(eps)
  RL_SETTER(noise)
  RL_SETTER(draws)
  RL_SETTER(batch_size)
  RL_SETTER(seed)
  RL_SETTER(alignment)

  void check() const;
  nlohmann::json to_json() const;
};

struct SweepMeasures {
  TangentResult tangent;
  /// Present for data with a signal mask.
  std::optional<DistractorResult> distractor;
  /// Present when a score was given.
  std::optional<AlignmentResult> alignment;
  /// Wall time of the measures.
  double seconds = 0;
  nlohmann::json to_json() const;
};

/// The measures of one trained model on `data` (the analysed test images).
/// `score` may be empty (no alignment).
SweepMeasures measure_sweep_model(Model& model, const Dataset& data, const TangentBasis& basis,
                                  const ScoreFunction& score, const SweepMeasureOptions& options,
                                  const ProgressCallback& progress = {});

/// The on/off-manifold first-order sensitivities the regimes and the
/// correlation rest on: the distractor halves when the data have them (the
/// glyph half is off the manifold exactly), else the tangent spaces.
const FirstOrderSensitivity& regime_sensitivity(const SweepMeasures& measures);

/// One regime per model (robustness_regimes) from the RMS directional
/// derivatives √(first-order sensitivity), each relative to the first model's.
std::vector<std::string> sweep_regimes(const std::vector<FirstOrderSensitivity>& sensitivities);

/// The paper's claim as a number: across models, Spearman's correlation of
/// alignment (mean cosine) with off-manifold robustness, taken as minus the
/// off-manifold first-order sensitivity, with a bootstrap interval.
RankCorrelation alignment_robustness_correlation(const std::vector<double>& alignment,
                                                 const std::vector<FirstOrderSensitivity>& sensitivities,
                                                 std::uint64_t seed);

}  // namespace robustlens
