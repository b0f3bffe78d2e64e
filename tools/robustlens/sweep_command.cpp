// robustlens sweep: one model per robust-training strength (log-spaced), each
// measured for accuracy, on- and off-manifold sensitivity (first order, per
// direction, and the change at a small eps) and gradient alignment; the
// regimes from the first-order sensitivities, the Spearman correlation of
// alignment with off-manifold robustness across the models; one chart against
// strength with the regimes marked, and a grid of every model's input
// gradients beside the data score.
#include "commands.h"
#include "common.h"
#include "generative_support.h"
#include "training_options.h"

#include "robustlens/analyses/sweep.h"
#include "robustlens/core/console.h"
#include "robustlens/core/error.h"
#include "robustlens/core/files.h"
#include "robustlens/report/chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>

namespace robustlens::cli {
namespace {

struct SweepCommand {
  CommonOptions common;
  ArchitectureSpec architecture;
  TrainOptions training;
  std::string objective = "gradnorm";
  std::vector<double> strengths;
  double min_strength = 0, max_strength = 0;
  std::int64_t count = 8;
  std::int64_t analysis_samples = 500;
  SweepMeasureOptions measures;
  std::string vae, denoiser;
  AlignmentFlags alignment;
  std::int64_t pca_neighbours = 64, pca_dim = 0;
  std::int64_t seeds = 1;
  bool restart = false;
};

/// The strengths given, or --count log-spaced from --min to --max (the library checks them).
std::vector<double> sweep_strengths(const SweepCommand& command) {
  if (!command.strengths.empty()) return command.strengths;
  RL_CHECK(command.min_strength > 0 && command.max_strength > command.min_strength && command.count >= 2,
           "give --strengths, or --min > 0, --max > --min and --count >= 2 (got ", command.min_strength, ", ",
           command.max_strength, ", ", command.count, ")");
  return log_spaced(std::log10(command.min_strength), std::log10(command.max_strength), command.count);
}

/// Shaded ranges of consecutive models in the same regime, bounded by the
/// geometric midpoints between neighbouring strengths.
std::vector<ChartRegion> regime_regions(const std::vector<double>& strengths, const std::vector<std::string>& regimes) {
  std::vector<ChartRegion> regions;
  const std::size_t n = strengths.size();
  const auto boundary = [&](std::size_t i) {  // between model i-1 and i
    if (i == 0) return strengths[0] / std::sqrt(strengths[1] / strengths[0]);
    if (i == n) return strengths[n - 1] * std::sqrt(strengths[n - 1] / strengths[n - 2]);
    return std::sqrt(strengths[i - 1] * strengths[i]);
  };
  for (std::size_t i = 0; i < n; ++i) {
    if (!regions.empty() && regions.back().label == regimes[i]) {
      regions.back().x_high = boundary(i + 1);
    } else {
      regions.push_back({boundary(i), boundary(i + 1), regimes[i]});
    }
  }
  return regions;
}

/// The data, the tangent spaces and the score the sweep's models are measured with.
struct SweepInputs {
  Dataset train, test, analysed, reference;
  std::vector<std::int64_t> analysis_indices;
  std::unique_ptr<Vae> vae;
  std::unique_ptr<Denoiser> denoiser;
  std::int64_t pca_dim = 0;
  std::string tangent_source;
  TangentBasis basis;
  ScoreFunction score;
  AlignmentOptions alignment;
  bool has_mask() const { return analysed.signal_mask.defined(); }
  /// What the regimes rest on.
  std::string first_order_source() const {
    return has_mask() ? "distractor halves" : tangent_source + " tangent spaces";
  }
};

std::unique_ptr<SweepInputs> load_sweep_inputs(const SweepCommand& command, const CommonOptions& common,
                                               const at::Device& device) {
  auto inputs = std::make_unique<SweepInputs>();
  inputs->alignment = command.measures.alignment;
  inputs->train = select_data(load_data(common, "train"), common);
  inputs->test = load_data(common, "test");
  CommonOptions analysis_selection = common;
  analysis_selection.samples = command.analysis_samples;
  analysis_selection.samples_given = false;
  analysis_selection.indices.clear();  // --indices picks training images here
  inputs->analysed = select_data(inputs->test, analysis_selection, &inputs->analysis_indices);
  if (!command.vae.empty()) inputs->vae = load_vae_for(command.vae, inputs->analysed, device);
  if (!command.denoiser.empty()) inputs->denoiser = load_denoiser_for(command.denoiser, inputs->analysed, device);
  RL_CHECK(inputs->vae || command.pca_neighbours > 0,
           "the sweep needs tangent spaces: give --vae or keep --pca-neighbours > 0");
  Vae* vae = inputs->vae.get();
  inputs->pca_dim = command.pca_dim > 0 ? command.pca_dim : vae ? vae->spec().latent_dim : 16;
  if (!vae) inputs->reference = load_data(common, "train");
  inputs->tangent_source = vae ? "vae" : "local-pca";
  inputs->basis = [vae, &reference = inputs->reference, neighbours = command.pca_neighbours, dim = inputs->pca_dim](
                      const at::Tensor& images, const at::Tensor& labels) {
    return vae ? vae_tangent_basis(*vae, images) : local_pca_basis(images, labels, reference, neighbours, dim);
  };
  if (inputs->denoiser) {
    const AlignmentFlags& flags = command.alignment;
    inputs->alignment = alignment_options_for(*inputs->denoiser, command.denoiser, flags.pairing, flags.label,
                                              flags.sigmas, flags.summary_sigma, command.measures.batch_size);
    inputs->score = denoiser_score_function(*inputs->denoiser);
  }
  return inputs;
}

/// The sweep's options, checked before any data is read; the alignment comes with the denoiser.
SweepOptions sweep_options(const SweepCommand& command, const CommonOptions& common) {
  TrainOptions training = command.training;
  training.set_transform(common.transform).set_eval_batch_size(1000);
  const SweepOptions options = SweepOptions()
                                   .set_objective(command.objective)
                                   .set_strengths(sweep_strengths(command))
                                   .set_seeds(command.seeds)
                                   .set_architecture(command.architecture)
                                   .set_training(training)
                                   .set_measures(command.measures)
                                   .set_seed(common.seed)
                                   .set_out_dir(common.out)
                                   .set_resume(!command.restart);
  options.check();
  return options;
}

std::string regime_measure(const SweepInputs& inputs) {
  return "first-order sensitivities per direction (RMS directional derivative of log p(predicted class)) on the " +
         (inputs.has_mask() ? std::string("distractor halves (item half on, glyph half off the manifold)")
                            : inputs.tangent_source + " tangent spaces (on) and their complements (off)");
}

/// sweep.json without its results: the run record with the options as they ran.
nlohmann::json sweep_record(const SweepCommand& command, const CommonOptions& common, const SweepInputs& inputs,
                            const SweepOptions& options) {
  ArchitectureSpec spec = options.architecture;
  spec.set_input_shape(inputs.train.image_shape()).set_num_classes(inputs.train.num_classes());
  const nlohmann::json options_json = {{"objective", options.objective},
                                       {"strengths", options.strengths},
                                       {"seeds", options.seeds},
                                       {"architecture", spec.resolved().to_json()},
                                       {"tangent_source", inputs.tangent_source},
                                       {"vae", command.vae},
                                       {"denoiser", command.denoiser},
                                       {"pca_neighbours", command.pca_neighbours},
                                       {"pca_dim", inputs.pca_dim},
                                       {"measures", options.resolved_measures().to_json()},
                                       {"analysis_samples", command.analysis_samples},
                                       {"regime_rule", robustness_regime_rule()},
                                       {"regime_measure", regime_measure(inputs)}};
  nlohmann::json record = run_record("sweep", options_json, common);
  record["train_data"] = inputs.train.summary();
  record["analysed_data"] = inputs.analysed.summary();
  record["analysis_indices"] = inputs.analysis_indices;
  return record;
}

void print_model_start(const SweepOptions& options, std::size_t i, std::int64_t j, const std::string& folder) {
  const std::string seed =
      options.seeds == 1 ? "" : ", seed " + std::to_string(j + 1) + "/" + std::to_string(options.seeds);
  console::print("[%zu/%zu] %s strength %.4g%s -> %s\n", i + 1, options.strengths.size(), options.objective.c_str(),
                 options.strengths[i], seed.c_str(), folder.c_str());
  std::fflush(stdout);
}

void print_model_done(const SweepModel& model, double eps) {
  const SweepMeasures& measured = model.measures;
  const FirstOrderSensitivity& sensitivity = regime_sensitivity(measured);
  console::print("  accuracy %.2f%%  first order on %.4g off %.4g (off/on %.3g)  change at eps %.3g: on %.4f off %.4f",
                 100 * model.test_accuracy(), sensitivity.on_manifold, sensitivity.off_manifold,
                 sensitivity.off_to_on_ratio(), eps, measured.tangent.on_manifold.mean[0],
                 measured.tangent.off_manifold.mean[0]);
  if (measured.distractor) {
    console::print("  item half %.4f  glyph half %.4f", measured.distractor->item_half.mean[0],
                   measured.distractor->distractor_half.mean[0]);
  }
  if (measured.alignment) console::print("  alignment %.4f", measured.alignment->summary().mean_cosine);
  console::print("  (training %.0f s, measures %.0f s)\n", model.train_seconds(), measured.seconds);
}

/// The record of the alignment-robustness correlation, or why there is none.
nlohmann::json correlation_record(const SweepResult& result, const AlignmentOptions& alignment) {
  if (!result.correlation) {
    return {
        {"spearman", nullptr},
        {"why", "a rank correlation needs at least 3 models; the sweep has " + std::to_string(result.models.size())}};
  }
  nlohmann::json json = result.correlation->to_json();
  json["between"] = "alignment (" + alignment_pairing_name(alignment.pairing) + " pairing, mean cosine at sigma " +
                    format_number(alignment.summary_sigma) +
                    ") and off-manifold robustness (minus the off-manifold first-order sensitivity), over every model";
  return json;
}

/// A measure per strength relative to the weakest model's, with ±2 standard errors across seeds as a band.
ChartSeries relative_series(const SweepResult& result, const std::string& measure, std::string name, bool dashed) {
  const std::vector<double> values = result.column(measure);
  ChartSeries series{std::move(name), {}, {}, {}, {}, dashed};
  const bool several_seeds = result.models.size() > result.strengths.size();
  for (std::size_t i = 0; i < result.strengths.size(); ++i) {
    series.x.push_back(result.strengths[i].strength);
    series.y.push_back(values[i] / values.front());
    if (!several_seeds) continue;
    const double error = 2 * result.strengths[i].standard_error(measure) / values.front();
    series.band_low.push_back(series.y[i] - error);
    series.band_high.push_back(series.y[i] + error);
  }
  return series;
}

LineChart sweep_chart(const SweepResult& result, const SweepOptions& options, const SweepInputs& inputs) {
  LineChart chart{"Sweep of " + options.objective + " strength", "strength (" + options.objective + ")", "", {}};
  const std::string first_order = inputs.first_order_source(), eps = format_number(options.measures.eps);
  chart.note =
      "regimes from the first-order sensitivities on the " + first_order + "; rel. = relative to the weakest model";
  if (const auto& c = result.correlation) {
    chart.note += "; Spearman(alignment, off-manifold robustness) " + format_number(c->spearman) + " [" +
                  format_number(c->low) + ", " + format_number(c->high) + "]";
  }
  chart.log_x = true;
  std::vector<std::string> regimes;
  for (const StrengthSummary& summary : result.strengths) regimes.push_back(summary.regime);
  chart.regions = regime_regions(options.strengths, regimes);
  chart.series.push_back({"test accuracy", options.strengths, result.column("test_accuracy"), {}, {}, false});
  chart.series.push_back(relative_series(result, "first_order_on",
                                         "on-manifold first-order sensitivity, " + first_order + " (rel.)", false));
  chart.series.push_back(relative_series(result, "first_order_off",
                                         "off-manifold first-order sensitivity, " + first_order + " (rel.)", false));
  const std::string tangents = ", " + inputs.tangent_source + " (rel.)";
  chart.series.push_back(relative_series(result, "on_manifold", "on-manifold change at eps " + eps + tangents, true));
  chart.series.push_back(relative_series(result, "off_manifold", "off-manifold change at eps " + eps + tangents, true));
  if (inputs.denoiser) {
    // Relative to its largest value, so that its shape shows on the chart's scale.
    std::vector<double> cosine = result.column("alignment_cosine");
    const double peak = *std::max_element(cosine.begin(), cosine.end());
    if (peak > 0) std::transform(cosine.begin(), cosine.end(), cosine.begin(), [&](double v) { return v / peak; });
    const std::string name =
        peak > 0 ? "alignment, cosine (rel. to its max " + format_number(peak) + ")" : "alignment, cosine";
    chart.series.push_back({name, options.strengths, cosine, {}, {}, false});
  }
  if (inputs.has_mask()) {
    chart.series.push_back(relative_series(result, "item_half", "item-half noise change (rel.), on", true));
    chart.series.push_back(relative_series(result, "glyph_half", "glyph-half noise change (rel.), off", true));
  }
  return chart;
}

/// The per-strength columns of sweep.csv and of the printed table, in their order.
const std::vector<std::string>& table_measures() {
  static const std::vector<std::string> measures = {"test_accuracy",    "first_order_on", "first_order_off",
                                                    "off_to_on_ratio",  "on_manifold",    "off_manifold",
                                                    "alignment_cosine", "item_half",      "glyph_half"};
  return measures;
}

void write_sweep_csv(const std::string& path, const SweepResult& result) {
  std::ostringstream csv;
  csv.precision(6);
  csv << "strength";
  for (const std::string& measure : table_measures()) csv << ',' << measure;
  csv << ",regime\n";
  for (const StrengthSummary& summary : result.strengths) {
    csv << summary.strength << ',';
    for (const std::string& measure : table_measures()) {
      if (summary.has(measure)) csv << summary.mean(measure);
      csv << ',';
    }
    csv << summary.regime << '\n';
  }
  write_text_file(path, csv.str());
}

void print_sweep_table(const SweepResult& result) {
  console::print("\n%12s %10s %11s %11s %8s %11s %11s %11s %11s %10s  %s\n", "strength", "accuracy", "1st-ord on",
                 "1st-ord off", "off/on", "change on", "change off", "item half", "glyph half", "alignment", "regime");
  for (const StrengthSummary& s : result.strengths) {
    const auto cell = [&](const std::string& measure) {
      return s.has(measure) ? format_number(s.mean(measure)) : std::string("-");
    };
    console::print("%12.4g %9.2f%% %11.4g %11.4g %8.3g %11.4f %11.4f %11s %11s %10s  %s\n", s.strength,
                   100 * s.mean("test_accuracy"), s.mean("first_order_on"), s.mean("first_order_off"),
                   s.mean("off_to_on_ratio"), s.mean("on_manifold"), s.mean("off_manifold"), cell("item_half").c_str(),
                   cell("glyph_half").c_str(), cell("alignment_cosine").c_str(), s.regime.c_str());
  }
}

void print_sweep_summary(const SweepResult& result, const SweepOptions& options, const SweepInputs& inputs) {
  print_sweep_table(result);
  console::print("%sregimes from the %s\n",
                 options.seeds > 1 ? ("means over " + std::to_string(options.seeds) + " seeds; ").c_str() : "",
                 regime_measure(inputs).c_str());
  if (inputs.denoiser && !result.correlation) {
    console::print("no correlation of alignment with off-manifold robustness: %zu models, at least 3 needed\n",
                   result.models.size());
  }
  if (const auto& c = result.correlation) {
    console::print(
        "Spearman correlation of alignment with off-manifold robustness over %lld models: %.3f "
        "(%.0f%% bootstrap interval [%.3f, %.3f])\n",
        static_cast<long long>(c->pairs), c->spearman, 100 * c->confidence, c->low, c->high);
  }
}

void run_sweep(const SweepCommand& command) {
  CommonOptions common = command.common;
  if (common.out.empty()) common.out = "runs/sweep-" + command.objective;
  RL_CHECK(command.analysis_samples >= 1, "--analysis-samples must be >= 1, got ", command.analysis_samples);
  SweepOptions options = sweep_options(command, common);
  const at::Device device = start_run(common);
  options.set_device(device);
  const std::unique_ptr<SweepInputs> inputs = load_sweep_inputs(command, common, device);
  if (inputs->denoiser) options.measures.set_alignment(inputs->alignment);
  nlohmann::json record = sweep_record(command, common, *inputs, options);

  // The gradient figure: the first seed's model of every strength on the first analysed images.
  const std::int64_t shown = std::min<std::int64_t>(6, inputs->analysed.size());
  const at::Tensor shown_images = inputs->analysed.images.slice(0, 0, shown).to(device);
  const at::Tensor shown_labels = inputs->analysed.labels.slice(0, 0, shown).to(device);
  const AlignmentOptions& alignment = inputs->alignment;
  std::vector<at::Tensor> gradient_columns;
  SweepCallbacks callbacks{terminal_progress(), print_epoch, {}, {}};
  callbacks.on_model_start = [&](std::size_t i, std::int64_t j, const std::string& folder) {
    print_model_start(options, i, j, folder);
  };
  callbacks.on_model_done = [&](const SweepModel& model, Model& trained) {
    print_model_done(model, options.measures.eps);
    if (model.seed_index > 0) return;
    const at::Tensor labels = alignment.predicted_label ? at::Tensor() : shown_labels;
    gradient_columns.push_back(alignment_gradient(trained, shown_images, labels, alignment.pairing).first);
  };
  const SweepResult result =
      run_sweep(inputs->train, inputs->test, inputs->analysed, inputs->basis, inputs->score, options, callbacks);

  record["models"] = nlohmann::json::array();
  for (const SweepModel& model : result.models) record["models"].push_back(model.to_json());
  record["per_strength"] = nlohmann::json::array();
  for (const StrengthSummary& summary : result.strengths) record["per_strength"].push_back(summary.to_json());
  if (inputs->denoiser) record["alignment_robustness_correlation"] = correlation_record(result, alignment);
  const std::filesystem::path out(common.out);
  write_svg((out / "sweep.svg").string(), sweep_chart(result, options, *inputs));
  if (inputs->denoiser) {
    // The score side for the true labels (with --label predicted each model's own y would differ).
    gradient_columns.push_back(
        paired_score(inputs->score, shown_images, shown_labels, alignment.pairing, alignment.summary_sigma));
  }
  write_gradient_figure((out / "gradients.png").string(), shown_images, gradient_columns);
  write_sweep_csv((out / "sweep.csv").string(), result);
  write_json_file((out / "sweep.json").string(), record);
  print_sweep_summary(result, options, *inputs);
  console::print("results in %s, %s, %s, %s\n", (out / "sweep.json").c_str(), (out / "sweep.csv").c_str(),
                 (out / "sweep.svg").c_str(), (out / "gradients.png").c_str());
}

}  // namespace

void add_sweep_command(CLI::App& app) {
  auto command = std::make_shared<SweepCommand>();
  command->training.set_epochs(2);
  CLI::App* sub = app.add_subcommand(
      "sweep", "Train one model per robust-training strength and measure manifold robustness and gradient alignment");
  add_common_options(*sub, command->common, kData | kSamples | kRuntime | kOut);
  sub->get_option("--samples")->description("Train on a random subset of this many training images (0 = all)");
  sub->get_option("--out")->description(
      "Output folder (default runs/sweep-OBJECTIVE); each model's checkpoint there is resumed");
  add_training_options(*sub, command->architecture, command->training, false);
  sub->add_option("--objective", command->objective, "Robust objective whose strength is swept (lambda, sigma or eps)")
      ->check(CLI::IsMember({"gradnorm", "noise", "pgd-l2"}))
      ->capture_default_str();
  sub->add_option("--pgd-steps", command->training.objective.pgd_steps,
                  "pgd-l2: attack steps (step length 2·eps/steps)")
      ->check(kPositive)
      ->capture_default_str();
  sub->add_option("--strengths", command->strengths, "Strengths, comma list (else --min, --max, --count log-spaced)")
      ->delimiter(',');
  sub->add_option("--min", command->min_strength, "Smallest strength");
  sub->add_option("--max", command->max_strength, "Largest strength");
  sub->add_option("--count", command->count, "Number of strengths")->capture_default_str();
  sub->add_option("--analysis-samples", command->analysis_samples, "Test images the analyses use")
      ->capture_default_str();
  sub->add_option("--analysis-batch-size", command->measures.batch_size, "Images per chunk of the analyses")
      ->check(kPositive)
      ->capture_default_str();
  sub->add_option("--vae", command->vae, "VAE file for the tangent spaces (else local PCA)");
  sub->add_option("--pca-neighbours", command->pca_neighbours, "Local PCA: nearest training images of the same class")
      ->check(kNonNegative)
      ->capture_default_str();
  sub->add_option("--pca-dim", command->pca_dim, "Local PCA: tangent dimension (0 = the VAE's, else 16)")
      ->check(kNonNegative)
      ->capture_default_str();
  sub->add_option("--denoiser", command->denoiser, "Denoiser file for the alignment (robustlens train-denoiser)");
  add_alignment_flags(*sub, command->alignment);
  sub->add_option("--eps", command->measures.eps,
                  "L2 length of the on/off-manifold perturbations (small: the change is not saturated)")
      ->capture_default_str();
  sub->add_option("--noise", command->measures.noise, "Distractor data: noise standard deviation on each half")
      ->capture_default_str();
  sub->add_option("--draws", command->measures.draws, "Random directions (noise draws) per image")
      ->check(kPositive)
      ->capture_default_str();
  sub->add_option("--seeds", command->seeds, "Models per strength (training seeds); the measures are their means")
      ->check(kPositive)
      ->capture_default_str();
  sub->add_flag("--restart", command->restart, "Ignore existing checkpoints and retrain every model");
  sub->callback([command] { run_sweep(*command); });
}

}  // namespace robustlens::cli
