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
#include "robustlens/core/error.h"
#include "robustlens/core/files.h"
#include "robustlens/core/random.h"
#include "robustlens/core/run_folder.h"
#include "robustlens/report/chart.h"
#include "robustlens/train/objectives.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
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

/// The random streams of the measures' noise draws and of the correlation's bootstrap (derive_seed).
constexpr std::uint64_t kMeasureStream = 31, kBootstrapStream = 32;

std::vector<double> sweep_strengths(const SweepCommand& command) {
  if (!command.strengths.empty()) {
    const std::vector<double>& given = command.strengths;
    RL_CHECK(given.size() >= 2, "a sweep needs at least two strengths, got ", given.size());
    for (std::size_t i = 0; i < given.size(); ++i) {
      RL_CHECK(std::isfinite(given[i]) && given[i] > 0, "--strengths must be > 0, got ", given[i]);
      // The first is the reference of the others, and the chart's ranges need the order.
      RL_CHECK(i == 0 || given[i] > given[i - 1], "--strengths must increase, got ", given[i - 1], " then ", given[i]);
    }
    return given;
  }
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

/// Per-strength summary of the models of all seeds: the mean of each measure
/// and, with several seeds, its standard error across them.
struct StrengthSummary {
  std::map<std::string, std::vector<double>> per_seed;

  void add(const std::string& measure, double value) { per_seed[measure].push_back(value); }
  double mean(const std::string& measure) const {
    const std::vector<double>& values = per_seed.at(measure);
    double sum = 0;
    for (const double v : values) sum += v;
    return sum / static_cast<double>(values.size());
  }
  double standard_error(const std::string& measure) const {
    const std::vector<double>& values = per_seed.at(measure);
    const double n = static_cast<double>(values.size()), m = mean(measure);
    if (n < 2) return 0;
    double squares = 0;
    for (const double v : values) squares += (v - m) * (v - m);
    return std::sqrt(squares / (n - 1) / n);
  }
  nlohmann::json to_json() const {
    nlohmann::json json;
    for (const auto& [measure, values] : per_seed) {
      json[measure] = {{"mean", mean(measure)}, {"standard_error", standard_error(measure)}, {"per_seed", values}};
    }
    return json;
  }
};

/// The training seed of seed index j: the run's --seed for the first, so that a
/// one-seed sweep's models are exactly those of `robustlens train --seed S`.
std::uint64_t model_seed(std::uint64_t seed, std::int64_t j) {
  return j == 0 ? seed : derive_seed(seed, static_cast<std::uint64_t>(j));
}

void run_sweep(const SweepCommand& command) {
  CommonOptions common = command.common;
  if (common.out.empty()) common.out = "runs/sweep-" + command.objective;
  const std::vector<double> strengths = sweep_strengths(command);
  RL_CHECK(command.analysis_samples >= 1, "--analysis-samples must be >= 1, got ", command.analysis_samples);
  RL_CHECK(command.seeds >= 1, "--seeds must be >= 1, got ", command.seeds);
  command.measures.check();
  const at::Device device = start_run(common);
  const Dataset train_data = select_data(load_data(common, "train"), common);
  const Dataset test_data = load_data(common, "test");
  CommonOptions analysis_selection = common;
  analysis_selection.samples = command.analysis_samples;
  analysis_selection.samples_given = false;
  analysis_selection.indices.clear();  // --indices picks training images here
  std::vector<std::int64_t> analysis_indices;
  const Dataset analysed = select_data(test_data, analysis_selection, &analysis_indices);

  std::unique_ptr<Vae> vae = command.vae.empty() ? nullptr : load_vae_for(command.vae, analysed, device);
  std::unique_ptr<Denoiser> denoiser =
      command.denoiser.empty() ? nullptr : load_denoiser_for(command.denoiser, analysed, device);
  RL_CHECK(vae || command.pca_neighbours > 0,
           "the sweep needs tangent spaces: give --vae or keep --pca-neighbours > 0");
  const std::int64_t pca_dim = command.pca_dim > 0 ? command.pca_dim : vae ? vae->spec().latent_dim : 16;
  const Dataset reference = vae ? Dataset() : load_data(common, "train");
  const std::string tangent_source = vae ? "vae" : "local-pca";
  const TangentBasis basis = [&](const at::Tensor& images, const at::Tensor& labels) {
    return vae ? vae_tangent_basis(*vae, images)
               : local_pca_basis(images, labels, reference, command.pca_neighbours, pca_dim);
  };
  SweepMeasureOptions measure_options = command.measures;
  const AlignmentFlags& flags = command.alignment;
  if (denoiser) {
    measure_options.set_alignment(alignment_options_for(*denoiser, command.denoiser, flags.pairing, flags.label,
                                                        flags.sigmas, flags.summary_sigma, measure_options.batch_size));
  }
  const AlignmentOptions& alignment_options = measure_options.alignment;
  const ScoreFunction score = denoiser ? denoiser_score_function(*denoiser) : ScoreFunction();
  const bool has_mask = analysed.signal_mask.defined();
  ArchitectureSpec spec = command.architecture;
  spec.set_input_shape(train_data.image_shape()).set_num_classes(train_data.num_classes());
  // Every model is measured with the same noise draws (a paired comparison),
  // whether it was trained now or resumed from its checkpoint.
  measure_options.set_seed(derive_seed(common.seed, kMeasureStream));
  const auto measure = [&](Model& model) {
    return measure_sweep_model(model, analysed, basis, score, measure_options, terminal_progress());
  };
  {
    // Every measure once on an untrained model: bad options (images too small
    // for SSIM, a class with too few images for local PCA) fail here, not after hours of training.
    BuiltinModel untrained(spec, train_data.class_names);
    untrained.to(device);
    untrained.set_training(false);
    measure(untrained);
  }

  const std::filesystem::path out(common.out);
  const std::string regime_measure =
      "first-order sensitivities per direction (RMS directional derivative of log p(predicted class)) on the " +
      (has_mask ? std::string("distractor halves (item half on, glyph half off the manifold)")
                : tangent_source + " tangent spaces (on) and their complements (off)");
  nlohmann::json options_json = {{"objective", command.objective},
                                 {"strengths", strengths},
                                 {"seeds", command.seeds},
                                 {"architecture", spec.resolved().to_json()},
                                 {"tangent_source", tangent_source},
                                 {"vae", command.vae},
                                 {"denoiser", command.denoiser},
                                 {"pca_neighbours", command.pca_neighbours},
                                 {"pca_dim", pca_dim},
                                 {"measures", measure_options.to_json()},
                                 {"analysis_samples", command.analysis_samples},
                                 {"regime_rule", robustness_regime_rule()},
                                 {"regime_measure", regime_measure}};
  nlohmann::json record = run_record("sweep", options_json, common);
  record["train_data"] = train_data.summary();
  record["analysed_data"] = analysed.summary();
  record["analysis_indices"] = analysis_indices;
  record["models"] = nlohmann::json::array();

  std::vector<StrengthSummary> summaries;
  const std::int64_t shown = std::min<std::int64_t>(6, analysed.size());
  const at::Tensor shown_images = analysed.images.slice(0, 0, shown).to(device);
  const at::Tensor shown_labels = analysed.labels.slice(0, 0, shown).to(device);
  std::vector<at::Tensor> gradient_columns;
  // Every model (all seeds), for the correlation of alignment with off-manifold robustness.
  std::vector<double> model_alignment;
  std::vector<FirstOrderSensitivity> model_sensitivity;
  for (std::size_t i = 0; i < strengths.size(); ++i) {
    StrengthSummary summary;
    for (std::int64_t j = 0; j < command.seeds; ++j) {
      const std::filesystem::path folder =
          command.seeds == 1 ? out / ("strength-" + std::to_string(i))
                             : out / ("strength-" + std::to_string(i)) / ("seed-" + std::to_string(j));
      const std::uint64_t seed = model_seed(common.seed, j);
      TrainOptions options = command.training.for_architecture(spec.resolved());
      options.set_objective(objective_at_strength(command.training.objective, command.objective, strengths[i]))
          .set_seed(seed)
          .set_transform(common.transform)
          .set_out_dir(folder.string())
          .set_resume(!command.restart)
          .set_eval_batch_size(1000);
      std::printf(
          "[%zu/%zu] %s strength %.4g%s -> %s\n", i + 1, strengths.size(), command.objective.c_str(), strengths[i],
          command.seeds == 1 ? "" : (", seed " + std::to_string(j + 1) + "/" + std::to_string(command.seeds)).c_str(),
          folder.c_str());
      std::fflush(stdout);
      std::optional<BuiltinModel> built;
      // The initial weights, as in `robustlens train --seed`.
      with_global_seed(seed, [&] { built.emplace(spec, train_data.class_names); });
      BuiltinModel& model = *built;
      model.to(device);
      // Each model is a run of its own: a stopped sweep keeps the models it finished (and its checkpoints).
      std::filesystem::create_directories(folder);
      RunScope model_run;
      open_run(folder.string());
      const TrainResult trained = train_model(model, train_data, test_data, options, terminal_progress(), print_epoch);
      model.save((folder / "model.pt").string());
      model_run.commit();
      model.set_training(false);
      double train_seconds = 0;
      for (const EpochRecord& epoch : trained.epochs) train_seconds += epoch.seconds;
      const SweepMeasures measured = measure(model);

      const FirstOrderSensitivity& sensitivity = regime_sensitivity(measured);
      summary.add("test_accuracy", trained.epochs.back().test_accuracy);
      summary.add("first_order_on", sensitivity.on_manifold);
      summary.add("first_order_off", sensitivity.off_manifold);
      summary.add("off_to_on_ratio", sensitivity.off_to_on_ratio());
      summary.add("on_manifold", measured.tangent.on_manifold.mean[0]);
      summary.add("off_manifold", measured.tangent.off_manifold.mean[0]);
      if (measured.distractor) {
        summary.add("item_half", measured.distractor->item_half.mean[0]);
        summary.add("glyph_half", measured.distractor->distractor_half.mean[0]);
      }
      if (measured.alignment) {
        summary.add("alignment_cosine", measured.alignment->summary().mean_cosine);
        model_alignment.push_back(measured.alignment->summary().mean_cosine);
      }
      model_sensitivity.push_back(sensitivity);
      if (j == 0) {
        const at::Tensor labels = alignment_options.predicted_label ? at::Tensor() : shown_labels;
        gradient_columns.push_back(alignment_gradient(model, shown_images, labels, alignment_options.pairing).first);
      }
      std::printf("  accuracy %.2f%%  first order on %.4g off %.4g (off/on %.3g)  change at eps %.3g: on %.4f off %.4f",
                  100 * trained.epochs.back().test_accuracy, sensitivity.on_manifold, sensitivity.off_manifold,
                  sensitivity.off_to_on_ratio(), measure_options.eps, measured.tangent.on_manifold.mean[0],
                  measured.tangent.off_manifold.mean[0]);
      if (measured.distractor) {
        std::printf("  item half %.4f  glyph half %.4f", measured.distractor->item_half.mean[0],
                    measured.distractor->distractor_half.mean[0]);
      }
      if (measured.alignment) std::printf("  alignment %.4f", measured.alignment->summary().mean_cosine);
      std::printf("  (training %.0f s, measures %.0f s)\n", train_seconds, measured.seconds);
      nlohmann::json entry = measured.to_json();
      entry.update({{"strength", strengths[i]},
                    {"seed", seed},
                    {"folder", folder.string()},
                    {"recipe", options.to_json()},
                    {"test_accuracy", trained.epochs.back().test_accuracy},
                    {"train_seconds", train_seconds},
                    {"resumed_after_epoch", trained.resumed_after_epoch}});
      record["models"].push_back(entry);
    }
    summaries.push_back(summary);
    if (i == 0) {
      RL_CHECK(summary.mean("first_order_on") > 0 && summary.mean("first_order_off") > 0,
               "the weakest model's first-order sensitivities (on ", summary.mean("first_order_on"), ", off ",
               summary.mean("first_order_off"), ") must be > 0 to compare the others with");
    }
  }

  const auto column = [&](const std::string& measure) {
    std::vector<double> values;
    for (const StrengthSummary& summary : summaries) values.push_back(summary.mean(measure));
    return values;
  };
  const std::vector<double> accuracy = column("test_accuracy"), on = column("on_manifold"),
                            off = column("off_manifold");
  const std::vector<double> first_on = column("first_order_on"), first_off = column("first_order_off");
  const std::vector<double> ratio = column("off_to_on_ratio");
  const std::vector<double> cosine = denoiser ? column("alignment_cosine") : std::vector<double>();
  const std::vector<double> item_half = has_mask ? column("item_half") : std::vector<double>();
  const std::vector<double> glyph_half = has_mask ? column("glyph_half") : std::vector<double>();
  // The regimes rest on the known manifold when there is one (regime_sensitivity):
  // the glyph half of distractor data is off the manifold exactly, while the
  // complement of a k-dimensional tangent estimate still holds real variation of the data.
  std::vector<FirstOrderSensitivity> strength_sensitivity;
  for (std::size_t i = 0; i < strengths.size(); ++i) {
    FirstOrderSensitivity mean;
    mean.on_manifold = first_on[i];
    mean.off_manifold = first_off[i];
    strength_sensitivity.push_back(mean);
  }
  const std::vector<std::string> regimes = sweep_regimes(strength_sensitivity);
  record["per_strength"] = nlohmann::json::array();
  for (std::size_t i = 0; i < strengths.size(); ++i) {
    nlohmann::json entry = summaries[i].to_json();
    entry.update({{"strength", strengths[i]}, {"regime", regimes[i]}});
    record["per_strength"].push_back(entry);
  }
  std::optional<RankCorrelation> correlation;
  if (denoiser && model_alignment.size() >= 3) {
    correlation = alignment_robustness_correlation(model_alignment, model_sensitivity,
                                                   derive_seed(common.seed, kBootstrapStream));
    nlohmann::json json = correlation->to_json();
    json["between"] =
        "alignment (" + alignment_pairing_name(alignment_options.pairing) + " pairing, mean cosine at sigma " +
        format_number(alignment_options.summary_sigma) +
        ") and off-manifold robustness (minus the off-manifold first-order sensitivity), over every model";
    record["alignment_robustness_correlation"] = json;
  } else if (denoiser) {
    record["alignment_robustness_correlation"] = {
        {"spearman", nullptr},
        {"why", "a rank correlation needs at least 3 models; the sweep has " + std::to_string(model_alignment.size())}};
  }

  const auto scaled = [](const std::vector<double>& values, double by) {
    std::vector<double> result;
    for (const double v : values) result.push_back(v / by);
    return result;
  };
  const auto relative = [&](const std::string& measure, const std::vector<double>& values) {
    // Standard errors across seeds, as a band, when there are several.
    ChartSeries series{"", strengths, scaled(values, values.front()), {}, {}, false};
    if (command.seeds > 1) {
      for (std::size_t i = 0; i < strengths.size(); ++i) {
        const double error = 2 * summaries[i].standard_error(measure) / values.front();
        series.band_low.push_back(series.y[i] - error);
        series.band_high.push_back(series.y[i] + error);
      }
    }
    return series;
  };
  LineChart chart{"Sweep of " + command.objective + " strength", "strength (" + command.objective + ")", "", {}};
  const std::string first_order_source = has_mask ? "distractor halves" : tangent_source + " tangent spaces";
  chart.note = "regimes from the first-order sensitivities on the " + first_order_source +
               "; rel. = relative to the weakest model";
  if (correlation) {
    chart.note += "; Spearman(alignment, off-manifold robustness) " + format_number(correlation->spearman) + " [" +
                  format_number(correlation->low) + ", " + format_number(correlation->high) + "]";
  }
  chart.log_x = true;
  chart.regions = regime_regions(strengths, regimes);
  chart.series.push_back({"test accuracy", strengths, accuracy, {}, {}, false});
  chart.series.push_back(relative("first_order_on", first_on));
  chart.series.back().name = "on-manifold first-order sensitivity, " + first_order_source + " (rel.)";
  chart.series.push_back(relative("first_order_off", first_off));
  chart.series.back().name = "off-manifold first-order sensitivity, " + first_order_source + " (rel.)";
  chart.series.push_back(relative("on_manifold", on));
  chart.series.back().name =
      "on-manifold change at eps " + format_number(measure_options.eps) + ", " + tangent_source + " (rel.)";
  chart.series.back().dashed = true;
  chart.series.push_back(relative("off_manifold", off));
  chart.series.back().name =
      "off-manifold change at eps " + format_number(measure_options.eps) + ", " + tangent_source + " (rel.)";
  chart.series.back().dashed = true;
  if (denoiser) {
    // Relative to its largest value, so that its shape shows on the chart's scale.
    const double peak = *std::max_element(cosine.begin(), cosine.end());
    chart.series.push_back(
        {peak > 0 ? "alignment, cosine (rel. to its max " + format_number(peak) + ")" : "alignment, cosine",
         strengths,
         peak > 0 ? scaled(cosine, peak) : cosine,
         {},
         {},
         false});
  }
  if (has_mask) {
    chart.series.push_back(relative("item_half", item_half));
    chart.series.back().name = "item-half noise change (rel.), on";
    chart.series.back().dashed = true;
    chart.series.push_back(relative("glyph_half", glyph_half));
    chart.series.back().name = "glyph-half noise change (rel.), off";
    chart.series.back().dashed = true;
  }
  write_svg((out / "sweep.svg").string(), chart);
  if (denoiser) {
    // The score side for the true labels (with --label predicted each model's own y would differ).
    gradient_columns.push_back(
        paired_score(score, shown_images, shown_labels, alignment_options.pairing, alignment_options.summary_sigma));
  }
  write_gradient_figure((out / "gradients.png").string(), shown_images, gradient_columns);

  std::ostringstream csv;
  csv.precision(6);
  csv << "strength,test_accuracy,first_order_on,first_order_off,off_to_on_ratio,on_manifold,off_manifold,"
         "alignment_cosine,item_half,glyph_half,regime\n";
  const auto csv_cell = [&](const std::vector<double>& values, std::size_t i) {
    if (!values.empty()) csv << values[i];
    csv << ',';
  };
  for (std::size_t i = 0; i < strengths.size(); ++i) {
    csv << strengths[i] << ',' << accuracy[i] << ',' << first_on[i] << ',' << first_off[i] << ',' << ratio[i] << ','
        << on[i] << ',' << off[i] << ',';
    csv_cell(cosine, i);
    csv_cell(item_half, i);
    csv_cell(glyph_half, i);
    csv << regimes[i] << '\n';
  }
  write_text_file((out / "sweep.csv").string(), csv.str());
  write_json_file((out / "sweep.json").string(), record);

  std::printf("\n%12s %10s %11s %11s %8s %11s %11s %11s %11s %10s  %s\n", "strength", "accuracy", "1st-ord on",
              "1st-ord off", "off/on", "change on", "change off", "item half", "glyph half", "alignment", "regime");
  const auto cell = [](const std::vector<double>& values, std::size_t i) {
    return values.empty() ? std::string("-") : format_number(values[i]);
  };
  for (std::size_t i = 0; i < strengths.size(); ++i) {
    std::printf("%12.4g %9.2f%% %11.4g %11.4g %8.3g %11.4f %11.4f %11s %11s %10s  %s\n", strengths[i],
                100 * accuracy[i], first_on[i], first_off[i], ratio[i], on[i], off[i], cell(item_half, i).c_str(),
                cell(glyph_half, i).c_str(), cell(cosine, i).c_str(), regimes[i].c_str());
  }
  std::printf("%sregimes from the %s\n",
              command.seeds > 1 ? ("means over " + std::to_string(command.seeds) + " seeds; ").c_str() : "",
              regime_measure.c_str());
  if (denoiser && !correlation) {
    std::printf("no correlation of alignment with off-manifold robustness: %zu models, at least 3 needed\n",
                model_alignment.size());
  }
  if (correlation) {
    std::printf(
        "Spearman correlation of alignment with off-manifold robustness over %lld models: %.3f "
        "(%.0f%% bootstrap interval [%.3f, %.3f])\n",
        static_cast<long long>(correlation->pairs), correlation->spearman, 100 * correlation->confidence,
        correlation->low, correlation->high);
  }
  std::printf("results in %s, %s, %s, %s\n", (out / "sweep.json").c_str(), (out / "sweep.csv").c_str(),
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
