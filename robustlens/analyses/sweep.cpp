#include "robustlens/analyses/sweep.h"

#include "robustlens/core/distributed.h"
#include "robustlens/core/error.h"
#include "robustlens/core/random.h"
#include "robustlens/core/run_folder.h"
#include "robustlens/models/builtin_model.h"
#include "robustlens/train/objectives.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>

namespace robustlens {
namespace {

/// The random streams of the measures' noise draws and of the correlation's bootstrap (derive_seed).
constexpr std::uint64_t kMeasureStream = 31, kBootstrapStream = 32;

/// The training seed of seed index j: the sweep's seed for the first, so that a one-seed sweep's models are
/// exactly those of `robustlens train --seed S`.
std::uint64_t model_seed(std::uint64_t seed, std::int64_t j) {
  return j == 0 ? seed : derive_seed(seed, static_cast<std::uint64_t>(j));
}

std::string model_folder(const SweepOptions& options, std::size_t i, std::int64_t j) {
  const std::filesystem::path strength = std::filesystem::path(options.out_dir) / ("strength-" + std::to_string(i));
  return (options.seeds == 1 ? strength : strength / ("seed-" + std::to_string(j))).string();
}

/// Model (i, j) trained, or resumed from its checkpoint, into its folder as a run of its own: a stopped sweep
/// keeps the models it finished.
void train_sweep_model(BuiltinModel& model, SweepModel& result, const Dataset& train, const Dataset& test,
                       const SweepCallbacks& callbacks) {
  std::filesystem::create_directories(result.folder);
  RunScope model_run;
  open_run(result.folder);
  result.training = train_model(model, train, test, result.recipe, callbacks.progress, callbacks.on_epoch);
  model.save((std::filesystem::path(result.folder) / "model.pt").string());
  model_run.commit();
  model.set_training(false);
}

/// Model (i, j)'s strength, seed, folder and training recipe.
SweepModel plan_model(const SweepOptions& options, const ArchitectureSpec& spec, std::size_t i, std::int64_t j) {
  SweepModel model;
  model.strength_index = i;
  model.seed_index = j;
  model.strength = options.strengths[i];
  model.seed = model_seed(options.seed, j);
  model.folder = model_folder(options, i, j);
  model.recipe = options.training.for_architecture(spec.resolved());
  model.recipe.set_objective(objective_at_strength(options.training.objective, options.objective, model.strength))
      .set_seed(model.seed)
      .set_out_dir(model.folder)
      .set_resume(options.resume);
  return model;
}

/// The network of `model`, initialised as `robustlens train --seed` initialises it, on the sweep's device.
void build_network(std::optional<BuiltinModel>& network, const ArchitectureSpec& spec, const Dataset& train,
                   const SweepModel& model, const at::Device& device) {
  with_global_seed(model.seed, [&] { network.emplace(spec, train.class_names); });
  network->to(device);
}

/// The trainings spread over the ranks of a data-parallel run (core/distributed.h): model k is trained by rank
/// k mod world size alone, into its folder, exactly as one process trains it; every rank then takes it from its
/// checkpoint. Returns each model's epochs taken from an earlier run's checkpoint, by k.
std::vector<double> train_spread(const Dataset& train, const Dataset& test, const ArchitectureSpec& spec,
                                 const SweepOptions& options, const SweepCallbacks& callbacks) {
  const auto models = static_cast<std::int64_t>(options.strengths.size()) * options.seeds;
  std::vector<double> resumed(static_cast<std::size_t>(models), 0.0);
  const std::int64_t ranks = distributed::world_size(), rank = distributed::rank();
  distributed::agree("training the sweep's models", [&] {
    const distributed::SoloScope solo;
    for (std::int64_t k = rank; k < models; k += ranks) {
      const auto i = static_cast<std::size_t>(k / options.seeds);
      SweepModel model = plan_model(options, spec, i, k % options.seeds);
      if (callbacks.on_model_start) callbacks.on_model_start(i, model.seed_index, model.folder);
      std::optional<BuiltinModel> network;
      build_network(network, spec, train, model, options.device);
      train_sweep_model(*network, model, train, test, callbacks);
      resumed[static_cast<std::size_t>(k)] = static_cast<double>(model.training.resumed_after_epoch);
    }
  });
  return distributed::sum_over_ranks(resumed);
}

/// The per-strength numbers of one model.
void add_to_summary(StrengthSummary& summary, const SweepModel& model) {
  const SweepMeasures& measured = model.measures;
  const FirstOrderSensitivity& sensitivity = regime_sensitivity(measured);
  summary.add("test_accuracy", model.test_accuracy());
  summary.add("first_order_on", sensitivity.on_manifold);
  summary.add("first_order_off", sensitivity.off_manifold);
  summary.add("off_to_on_ratio", sensitivity.off_to_on_ratio());
  summary.add("on_manifold", measured.tangent.on_manifold.mean[0]);
  summary.add("off_manifold", measured.tangent.off_manifold.mean[0]);
  if (measured.distractor) {
    summary.add("item_half", measured.distractor->item_half.mean[0]);
    summary.add("glyph_half", measured.distractor->distractor_half.mean[0]);
  }
  if (measured.alignment) summary.add("alignment_cosine", measured.alignment->summary().mean_cosine);
}

/// The regimes rest on the known manifold when there is one (regime_sensitivity): the glyph half of distractor
/// data is off the manifold exactly, while the complement of a k-dimensional tangent estimate still holds real
/// variation of the data.
void add_regimes(SweepResult& result) {
  std::vector<FirstOrderSensitivity> means;
  for (const StrengthSummary& summary : result.strengths) {
    FirstOrderSensitivity mean;
    mean.on_manifold = summary.mean("first_order_on");
    mean.off_manifold = summary.mean("first_order_off");
    means.push_back(mean);
  }
  const std::vector<std::string> regimes = sweep_regimes(means);
  for (std::size_t i = 0; i < regimes.size(); ++i) result.strengths[i].regime = regimes[i];
}

}  // namespace

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

void SweepOptions::check() const {
  RL_CHECK(strengths.size() >= 2, "a sweep needs at least two strengths (SweepOptions.strengths), got ",
           strengths.size());
  for (std::size_t i = 0; i < strengths.size(); ++i) {
    RL_CHECK(std::isfinite(strengths[i]) && strengths[i] > 0, "SweepOptions.strengths must be > 0, got ", strengths[i]);
    // The first is the reference of the others, and a chart's ranges need the order.
    RL_CHECK(i == 0 || strengths[i] > strengths[i - 1], "SweepOptions.strengths must increase, got ", strengths[i - 1],
             " then ", strengths[i]);
  }
  RL_CHECK(seeds >= 1, "SweepOptions.seeds must be >= 1, got ", seeds);
  objective_at_strength(training.objective, objective, strengths.front());  // an unknown objective
  measures.check();
}

SweepMeasureOptions SweepOptions::resolved_measures() const {
  return SweepMeasureOptions(measures).set_seed(derive_seed(seed, kMeasureStream));
}

double SweepModel::train_seconds() const {
  double seconds = 0;
  for (const EpochRecord& epoch : training.epochs) seconds += epoch.seconds;
  return seconds;
}

nlohmann::json SweepModel::to_json() const {
  nlohmann::json json = measures.to_json();
  json.update({{"strength", strength},
               {"seed", seed},
               {"folder", folder},
               {"recipe", recipe.to_json()},
               {"test_accuracy", test_accuracy()},
               {"train_seconds", train_seconds()},
               {"resumed_after_epoch", training.resumed_after_epoch}});
  return json;
}

double StrengthSummary::mean(const std::string& measure) const {
  const std::vector<double>& values = per_seed.at(measure);
  double sum = 0;
  for (const double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

double StrengthSummary::standard_error(const std::string& measure) const {
  const std::vector<double>& values = per_seed.at(measure);
  const double n = static_cast<double>(values.size()), m = mean(measure);
  if (n < 2) return 0;
  double squares = 0;
  for (const double v : values) squares += (v - m) * (v - m);
  return std::sqrt(squares / (n - 1) / n);
}

nlohmann::json StrengthSummary::to_json() const {
  nlohmann::json json = {{"strength", strength}, {"regime", regime}};
  for (const auto& [measure, values] : per_seed) {
    json[measure] = {{"mean", mean(measure)}, {"standard_error", standard_error(measure)}, {"per_seed", values}};
  }
  return json;
}

std::vector<double> SweepResult::column(const std::string& measure) const {
  std::vector<double> values;
  if (strengths.empty() || !strengths.front().has(measure)) return values;
  for (const StrengthSummary& summary : strengths) values.push_back(summary.mean(measure));
  return values;
}

SweepResult run_sweep(const Dataset& train, const Dataset& test, const Dataset& analysed, const TangentBasis& basis,
                      const ScoreFunction& score, const SweepOptions& options, const SweepCallbacks& callbacks) {
  options.check();
  ArchitectureSpec spec = options.architecture;
  spec.set_input_shape(train.image_shape()).set_num_classes(train.num_classes());
  // Every model is measured with the same noise draws (a paired comparison), whether it was trained now or
  // resumed from its checkpoint.
  const SweepMeasureOptions measures = options.resolved_measures();
  const auto measure = [&](Model& model) {
    return measure_sweep_model(model, analysed, basis, score, measures, callbacks.progress);
  };
  {
    // Bad options (images too small for SSIM, a class with too few images for local PCA) fail here.
    BuiltinModel untrained(spec, train.class_names);
    untrained.to(options.device);
    untrained.set_training(false);
    measure(untrained);
  }
  // Ranks enough for a model each: the models are trained side by side, then measured one by one by all ranks;
  // else each model is trained by all ranks (data-parallel) and measured by them.
  const auto models = static_cast<std::int64_t>(options.strengths.size()) * options.seeds;
  const bool spread = distributed::active() && models >= distributed::world_size();
  const std::vector<double> resumed =
      spread ? train_spread(train, test, spec, options, callbacks) : std::vector<double>();
  SweepResult result;
  std::vector<double> alignment;
  std::vector<FirstOrderSensitivity> sensitivities;
  for (std::size_t i = 0; i < options.strengths.size(); ++i) {
    StrengthSummary summary;
    summary.strength = options.strengths[i];
    for (std::int64_t j = 0; j < options.seeds; ++j) {
      SweepModel model = plan_model(options, spec, i, j);
      if (spread) model.recipe.set_resume(true);  // trained above: taken from its checkpoint
      if (callbacks.on_model_start && !spread) callbacks.on_model_start(i, j, model.folder);
      std::optional<BuiltinModel> built;
      build_network(built, spec, train, model, options.device);
      train_sweep_model(*built, model, train, test, callbacks);
      if (spread) {
        model.training.resumed_after_epoch = static_cast<std::int64_t>(
            resumed[static_cast<std::size_t>(static_cast<std::int64_t>(i) * options.seeds + j)]);
      }
      model.measures = measure(*built);
      add_to_summary(summary, model);
      sensitivities.push_back(regime_sensitivity(model.measures));
      if (model.measures.alignment) alignment.push_back(model.measures.alignment->summary().mean_cosine);
      if (callbacks.on_model_done) callbacks.on_model_done(model, *built);
      result.models.push_back(std::move(model));
    }
    RL_CHECK(i > 0 || (summary.mean("first_order_on") > 0 && summary.mean("first_order_off") > 0),
             "the weakest model's first-order sensitivities (on ", summary.mean("first_order_on"), ", off ",
             summary.mean("first_order_off"), ") must be > 0 to compare the others with");
    result.strengths.push_back(std::move(summary));
  }
  add_regimes(result);
  if (score && alignment.size() >= 3) {
    result.correlation =
        alignment_robustness_correlation(alignment, sensitivities, derive_seed(options.seed, kBootstrapStream));
  }
  return result;
}

std::vector<std::string> robustness_regimes(const std::vector<double>& on_manifold,
                                            const std::vector<double>& off_manifold, double threshold) {
  RL_CHECK(!on_manifold.empty() && on_manifold.size() == off_manifold.size(), "regimes need as many on- (",
           on_manifold.size(), ") as off-manifold (", off_manifold.size(), ") sensitivities, at least one");
  RL_CHECK(on_manifold[0] > 0 && off_manifold[0] > 0, "regimes: the weakest model's sensitivities must be > 0, got on ",
           on_manifold[0], " and off ", off_manifold[0]);
  std::vector<std::string> regimes;
  for (std::size_t i = 0; i < on_manifold.size(); ++i) {
    const bool on_robust = on_manifold[i] / on_manifold[0] <= threshold;
    const bool off_robust = off_manifold[i] / off_manifold[0] <= threshold;
    regimes.push_back(on_robust ? (off_robust ? "excessive" : "on-manifold-first")
                                : (off_robust ? "bayes-aligned" : "weak"));
  }
  return regimes;
}

std::string robustness_regime_rule(double threshold) {
  const std::string t = std::to_string(threshold).substr(0, 4);
  return "sensitivities relative to the first model: weak while both are above " + t +
         ", bayes-aligned once off-manifold is at or below " + t +
         " and on-manifold above, excessive once both are, "
         "on-manifold-first if on-manifold falls to " +
         t + " first";
}

RankCorrelation alignment_robustness_correlation(const std::vector<double>& alignment,
                                                 const std::vector<FirstOrderSensitivity>& sensitivities,
                                                 std::uint64_t seed) {
  std::vector<double> robustness;
  for (const FirstOrderSensitivity& s : sensitivities) robustness.push_back(-s.off_manifold);
  return spearman_with_bootstrap(alignment, robustness, 2000, seed);
}

}  // namespace robustlens
