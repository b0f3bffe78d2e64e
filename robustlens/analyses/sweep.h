// A robust-training sweep (Srinivas, Bordt & Lakkaraju, NeurIPS 2023): one
// model per strength of a robust objective (and per seed), each trained
// (the objective at each strength is train/objectives.h's
// objective_at_strength) and measured — first-order on- and off-manifold
// sensitivities per direction and the change at one small perturbation
// length, the distractor halves (data with a signal mask), and the alignment
// of input gradients with the data score (when a score is given). The three
// regimes are drawn from the first-order sensitivities by sweep_regimes, and
// the paper's claim becomes a number in alignment_robustness_correlation.
// run_sweep does all of it; `robustlens sweep` adds the charts and tables.
#pragma once

#include "robustlens/analyses/alignment.h"
#include "robustlens/analyses/manifold.h"
#include "robustlens/analyses/statistics.h"
#include "robustlens/core/options.h"
#include "robustlens/models/architectures.h"
#include "robustlens/train/trainer.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
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

/// The regimes of a sweep of robust-training strength (the paper's claim,
/// made operational by us): with on- and off-manifold sensitivities taken
/// relative to the first (weakest) model, the reference (the sweep passes the
/// square roots of the first-order sensitivities: RMS directional derivatives),
///   "weak"            both above `threshold`,
///   "bayes-aligned"   off-manifold at or below it, on-manifold above (robust off the manifold only),
///   "excessive"       both at or below it,
///   "on-manifold-first" on-manifold at or below it, off-manifold above: the
///                     opposite of the paper's order, labelled so that it shows.
/// One label per model, in sweep order. Errors when the reference's
/// sensitivities are not > 0.
std::vector<std::string> robustness_regimes(const std::vector<double>& on_manifold,
                                            const std::vector<double>& off_manifold, double threshold = 0.5);
/// The rule above in one sentence, for the records that use it.
std::string robustness_regime_rule(double threshold = 0.5);

/// One regime per model (robustness_regimes) from the RMS directional
/// derivatives √(first-order sensitivity), each relative to the first model's.
std::vector<std::string> sweep_regimes(const std::vector<FirstOrderSensitivity>& sensitivities);

/// The paper's claim as a number: across models, Spearman's correlation of
/// alignment (mean cosine) with off-manifold robustness, taken as minus the
/// off-manifold first-order sensitivity, with a bootstrap interval.
RankCorrelation alignment_robustness_correlation(const std::vector<double>& alignment,
                                                 const std::vector<FirstOrderSensitivity>& sensitivities,
                                                 std::uint64_t seed);

struct SweepOptions {
  /// The robust objective whose strength is swept: gradnorm (lambda), noise (sigma) or pgd-l2 (eps).
  std::string objective = "gradnorm";
  /// At least two, > 0 and increasing; the first is the reference the regimes are measured against.
  std::vector<double> strengths;
  /// Models per strength (training seeds); the per-strength summary holds their means.
  std::int64_t seeds = 1;
  /// Every model's architecture (its input shape and classes are the training data's) and recipe (the
  /// sweep sets the objective's strength, the seed, out_dir and resume).
  ArchitectureSpec architecture;
  TrainOptions training;
  /// The measures of every model; their seed is derived from `seed`.
  SweepMeasureOptions measures;
  /// The first model of each strength trains with this seed (its weights are those of `train --seed`), the
  /// others with seeds derived from it; the measures' draws and the bootstrap have streams of their own.
  std::uint64_t seed = 0;
  /// Models go to out_dir/strength-I (with several seeds out_dir/strength-I/seed-J), each a run of its own
  /// (core/run_folder.h) with its checkpoint, so that a stopped sweep keeps the models it finished.
  std::string out_dir;
  /// Continue each model from its checkpoint when there is one.
  bool resume = true;
  /// Where the models are trained and measured.
  at::Device device = at::kCPU;

  RL_SETTER(objective)
  RL_SETTER(strengths)
  RL_SETTER(seeds)
  RL_SETTER(architecture)
  RL_SETTER(training)
  RL_SETTER(measures)
  RL_SETTER(seed)
  RL_SETTER(out_dir)
  RL_SETTER(resume)
  RL_SETTER(device)

  void check() const;
  /// The measure options every model is measured with (the derived seed).
  SweepMeasureOptions resolved_measures() const;
};

/// One trained and measured model of a sweep.
struct SweepModel {
  std::size_t strength_index = 0;
  std::int64_t seed_index = 0;
  double strength = 0;
  std::uint64_t seed = 0;
  std::string folder;
  TrainOptions recipe;
  TrainResult training;
  SweepMeasures measures;
  double test_accuracy() const { return training.epochs.back().test_accuracy; }
  double train_seconds() const;
  /// The measures' JSON with the model's strength, seed, folder, recipe, accuracy and training time.
  nlohmann::json to_json() const;
};

/// The models of one strength: each measure's values over the seeds, their mean and standard error.
struct StrengthSummary {
  double strength = 0;
  std::string regime;
  std::map<std::string, std::vector<double>> per_seed;

  void add(const std::string& measure, double value) { per_seed[measure].push_back(value); }
  bool has(const std::string& measure) const { return per_seed.count(measure) > 0; }
  double mean(const std::string& measure) const;
  /// 0 with one seed.
  double standard_error(const std::string& measure) const;
  nlohmann::json to_json() const;
};

struct SweepResult {
  /// Strength by strength, seed by seed.
  std::vector<SweepModel> models;
  std::vector<StrengthSummary> strengths;
  /// Alignment against off-manifold robustness over every model: with a score and at least 3 models.
  std::optional<RankCorrelation> correlation;
  /// The means of `measure` per strength; empty when the sweep did not measure it. Measures: test_accuracy,
  /// first_order_on, first_order_off, off_to_on_ratio, on_manifold, off_manifold, and item_half, glyph_half
  /// (data with a signal mask) and alignment_cosine (with a score).
  std::vector<double> column(const std::string& measure) const;
};

struct SweepCallbacks {
  ProgressCallback progress;
  EpochCallback on_epoch;
  /// Before model (strength index, seed index) is trained into `folder`.
  std::function<void(std::size_t strength, std::int64_t seed, const std::string& folder)> on_model_start;
  /// After it is measured, with the trained model (for figures or more measures).
  std::function<void(const SweepModel& result, Model& model)> on_model_done;
};

/// Trains and measures every model on `analysed` (test images; `score` may be empty: no alignment). Every
/// measure first runs once on an untrained model, so that bad options fail before hours of training. In a
/// data-parallel run with at least as many models as ranks, the ranks train the models side by side, one process
/// each, then measure them together (core/distributed.h).
SweepResult run_sweep(const Dataset& train, const Dataset& test, const Dataset& analysed, const TangentBasis& basis,
                      const ScoreFunction& score, const SweepOptions& options, const SweepCallbacks& callbacks = {});

}  // namespace robustlens
