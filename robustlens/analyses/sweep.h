// One model of a robust-training sweep (Srinivas, Bordt & Lakkaraju, NeurIPS
// 2023): the objective at a given strength, and the measures taken of each
// trained model — on- and off-manifold sensitivity at one perturbation length,
// the distractor half changes at one noise level (data with a signal mask), and
// the alignment of input gradients with the data score (when a score is
// given). `robustlens sweep` trains the models and calls these; the three
// regimes are drawn from the results by robustness_regimes (manifold.h).
#pragma once

#include "robustlens/analyses/alignment.h"
#include "robustlens/analyses/manifold.h"
#include "robustlens/train/objectives.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace robustlens {

/// `base` with the swept objective `kind` at `strength`: gradnorm's lambda,
/// noise's sigma, or pgd-l2's eps (with the spec's steps of 2·eps/steps from a
/// random start). Errors for another kind or a strength that is not > 0.
ObjectiveOptions sweep_objective(ObjectiveOptions base, const std::string& kind, double strength);

struct SweepMeasureOptions {
  /// L2 length of the on- and off-manifold perturbations (pixel units).
  double eps = 2.0;
  /// Distractor data: noise standard deviation on each half.
  double noise = 0.3;
  /// Random directions (noise draws) per image.
  std::int64_t draws = 4;
  /// Images per chunk of every measure.
  std::int64_t batch_size = 64;
  /// Alignment pairing (alignment.h): false for an unconditional score.
  bool conditional = true;

  SweepMeasureOptions& set_eps(double v) { eps = v; return *this; }
  SweepMeasureOptions& set_noise(double v) { noise = v; return *this; }
  SweepMeasureOptions& set_draws(std::int64_t v) { draws = v; return *this; }
  SweepMeasureOptions& set_batch_size(std::int64_t v) { batch_size = v; return *this; }
  SweepMeasureOptions& set_conditional(bool v) { conditional = v; return *this; }

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

}  // namespace robustlens
