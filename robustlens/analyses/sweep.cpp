#include "robustlens/analyses/sweep.h"

#include "robustlens/core/error.h"
#include "robustlens/core/random.h"

#include <chrono>
#include <cmath>

namespace robustlens {

void SweepMeasureOptions::check() const {
  RL_CHECK(std::isfinite(eps) && eps > 0, "sweep measures: eps must be > 0, got ", eps);
  RL_CHECK(std::isfinite(noise) && noise > 0, "sweep measures: noise must be > 0, got ", noise);
  RL_CHECK(draws >= 1, "sweep measures: draws must be >= 1, got ", draws);
  RL_CHECK(batch_size >= 1, "sweep measures: batch size must be >= 1, got ", batch_size);
  alignment.check();
}

nlohmann::json SweepMeasureOptions::to_json() const {
  return {{"eps", eps},     {"noise", noise},
          {"draws", draws}, {"batch_size", batch_size},
          {"seed", seed},   {"alignment", AlignmentOptions(alignment).set_batch_size(batch_size).to_json()}};
}

nlohmann::json SweepMeasures::to_json() const {
  nlohmann::json json = {{"tangent", tangent.to_json()}, {"seconds", seconds}};
  if (distractor) json["distractor"] = distractor->to_json();
  if (alignment) json["alignment"] = alignment->to_json();
  return json;
}

SweepMeasures measure_sweep_model(Model& model, const Dataset& data, const TangentBasis& basis,
                                  const ScoreFunction& score, const SweepMeasureOptions& options,
                                  const ProgressCallback& progress) {
  options.check();
  const auto start = std::chrono::steady_clock::now();
  SweepMeasures measures;
  const at::Generator generator = make_generator(options.seed);
  measures.tangent = analyse_tangent_sensitivity(
      model, data, basis,
      TangentOptions().set_eps({options.eps}).set_draws(options.draws).set_batch_size(options.batch_size), generator,
      progress);
  if (data.signal_mask.defined()) {
    measures.distractor = analyse_distractor_robustness(model, data,
                                                        DistractorOptions()
                                                            .set_noise_levels({options.noise})
                                                            .set_draws(options.draws)
                                                            .set_batch_size(options.batch_size),
                                                        generator, progress);
  }
  if (score) {
    measures.alignment = analyse_alignment(
        model, data, score, AlignmentOptions(options.alignment).set_batch_size(options.batch_size), progress);
  }
  measures.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return measures;
}

const FirstOrderSensitivity& regime_sensitivity(const SweepMeasures& measures) {
  return measures.distractor ? measures.distractor->first_order : measures.tangent.first_order;
}

std::vector<std::string> sweep_regimes(const std::vector<FirstOrderSensitivity>& sensitivities) {
  std::vector<double> on, off;
  for (const FirstOrderSensitivity& s : sensitivities) {
    on.push_back(std::sqrt(s.on_manifold));
    off.push_back(std::sqrt(s.off_manifold));
  }
  return robustness_regimes(on, off);
}

RankCorrelation alignment_robustness_correlation(const std::vector<double>& alignment,
                                                 const std::vector<FirstOrderSensitivity>& sensitivities,
                                                 std::uint64_t seed) {
  std::vector<double> robustness;
  for (const FirstOrderSensitivity& s : sensitivities) robustness.push_back(-s.off_manifold);
  return spearman_with_bootstrap(alignment, robustness, 2000, seed);
}

}  // namespace robustlens
