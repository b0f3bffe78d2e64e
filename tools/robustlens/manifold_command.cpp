// robustlens manifold: on- and off-manifold sensitivity of a classifier: the
// distractor measures (when the data carry a signal mask: --data
// distractor:SPEC) and the tangent-space measures (a VAE's decoder Jacobian
// with --vae, local PCA of training neighbours), as JSON, CSV and SVG charts.
#include "analysis_registry.h"
#include "commands.h"
#include "common.h"
#include "generative_support.h"
#include "report_sections.h"

#include "robustlens/analyses/manifold.h"
#include "robustlens/core/console.h"
#include "robustlens/core/error.h"
#include "robustlens/core/files.h"
#include "robustlens/core/random.h"
#include "robustlens/report/chart.h"
#include "robustlens/report/vega_lite.h"

#include <filesystem>
#include <map>
#include <memory>
#include <sstream>

namespace robustlens::cli {
namespace {

struct ManifoldCommand {
  CommonOptions common;
  DistractorOptions distractor;
  TangentOptions tangent;
  std::string vae;
  std::int64_t pca_neighbours = 64;
  std::int64_t pca_dim = 0;
};

/// The mean curve with a ±2 standard-error band.
ChartSeries curve_series(const std::string& name, const std::vector<double>& x, const MeanCurve& curve, bool dashed) {
  ChartSeries series{name, x, curve.mean, {}, {}, dashed};
  for (std::size_t i = 0; i < x.size(); ++i) {
    series.band_low.push_back(curve.mean[i] - 2 * curve.standard_error[i]);
    series.band_high.push_back(curve.mean[i] + 2 * curve.standard_error[i]);
  }
  return series;
}

void add_csv_rows(std::ostringstream& csv, const std::string& curve, const std::vector<double>& x,
                  const MeanCurve& values) {
  for (std::size_t i = 0; i < x.size(); ++i) {
    csv << curve << ',' << x[i] << ',' << values.mean[i] << ',' << values.standard_error[i] << '\n';
  }
}

/// The first-order sensitivities per direction, on and off the manifold, and their ratio.
void print_first_order(const FirstOrderSensitivity& first_order, const char* on, const char* off) {
  console::print(
      "  first order, per direction (squared derivative of log p(predicted class)): %s %.4g, %s %.4g, "
      "ratio off/on %.3g\n",
      on, first_order.on_manifold, off, first_order.off_manifold, first_order.off_to_on_ratio());
}

/// The tangent-space estimates asked for: the VAE's decoder Jacobian (--vae) and local PCA of training
/// neighbours (--pca-neighbours > 0); they hold what the bases read.
struct TangentBases {
  std::unique_ptr<Vae> vae;
  Dataset reference;
  std::int64_t pca_dim = 0;
  std::map<std::string, TangentBasis> bases;
};

std::unique_ptr<TangentBases> tangent_bases(const ManifoldCommand& command, const CommonOptions& common,
                                            const AnalysisRun& run) {
  auto tangent = std::make_unique<TangentBases>();
  if (!command.vae.empty()) tangent->vae = load_vae_for(command.vae, run.data, run.device);
  Vae* vae = tangent->vae.get();
  tangent->pca_dim = command.pca_dim > 0 ? command.pca_dim : vae ? vae->spec().latent_dim : 16;
  if (vae) {
    tangent->bases["vae"] = [vae](const at::Tensor& images, const at::Tensor&) {
      return vae_tangent_basis(*vae, images);
    };
  }
  if (command.pca_neighbours > 0) {
    tangent->reference = load_data(common, "train");
    RL_CHECK(tangent->pca_dim < command.pca_neighbours, "--pca-dim (", tangent->pca_dim,
             ") must be below --pca-neighbours (", command.pca_neighbours, ")");
    tangent->bases["local-pca"] = [&reference = tangent->reference, neighbours = command.pca_neighbours,
                                   dim = tangent->pca_dim](const at::Tensor& images, const at::Tensor& labels) {
      return local_pca_basis(images, labels, reference, neighbours, dim);
    };
  }
  return tangent;
}

/// The outputs of the command as they are made: the curves' CSV and the files written.
struct ManifoldOutputs {
  std::filesystem::path out;
  std::ostringstream csv;
  std::vector<std::string> written;
  void write_chart(const std::string& name, const LineChart& chart) {
    write_svg((out / name).string(), chart);
    written.push_back((out / name).string());
  }
};

void report_distractor(const DistractorResult& result, ManifoldOutputs& outputs) {
  add_csv_rows(outputs.csv, "distractor:item_half", result.noise_levels, result.item_half);
  add_csv_rows(outputs.csv, "distractor:distractor_half", result.noise_levels, result.distractor_half);
  add_csv_rows(outputs.csv, "distractor:whole_image", result.noise_levels, result.whole_image);
  LineChart changes{"Prediction change under Gaussian noise (distractor data)",
                    "noise standard deviation s",
                    "mean L1 change of softmax",
                    {}};
  changes.log_x = true;
  changes.series = {curve_series("item half (on-manifold)", result.noise_levels, result.item_half, false),
                    curve_series("glyph half (off-manifold)", result.noise_levels, result.distractor_half, false),
                    curve_series("whole image", result.noise_levels, result.whole_image, true)};
  outputs.write_chart("distractor.svg", changes);
  LineChart relative{"Relative robustness R(s) = change(item half) / change(glyph half)",
                     "noise standard deviation s",
                     "R(s)",
                     {{"R(s)", result.noise_levels, result.relative_robustness, {}, {}, false}}};
  relative.log_x = true;
  outputs.write_chart("relative_robustness.svg", relative);

  console::print(
      "distractor data, %lld images: share of input-gradient energy on the item half %.3f (0.5 = no preference)\n",
      static_cast<long long>(result.images), result.item_gradient_share);
  print_first_order(result.first_order, "item half", "glyph half");
  console::print("  %10s %12s %12s %12s %10s\n", "s", "item half", "glyph half", "whole", "R(s)");
  for (std::size_t l = 0; l < result.noise_levels.size();
       l += std::max<std::size_t>(1, result.noise_levels.size() / 8)) {
    console::print("  %10.4g %12.4f %12.4f %12.4f %10.3g\n", result.noise_levels[l], result.item_half.mean[l],
                   result.distractor_half.mean[l], result.whole_image.mean[l], result.relative_robustness[l]);
  }
}

void print_tangent_result(const std::string& name, const TangentResult& result) {
  console::print(
      "%s tangent spaces (k = %lld of D = %lld): tangent fraction of input gradients %.3f ± %.3f "
      "(random direction: %.3f)\n",
      name.c_str(), static_cast<long long>(result.tangent_dim), static_cast<long long>(result.input_dim),
      result.tangent_fraction, result.tangent_fraction_standard_error, result.random_baseline());
  print_first_order(result.first_order, "along", "across");
  console::print("  %10s %14s %14s\n", "eps", "on-manifold", "off-manifold");
  for (std::size_t p = 0; p < result.eps.size(); ++p) {
    console::print("  %10.4g %14.4f %14.4f\n", result.eps[p], result.on_manifold.mean[p], result.off_manifold.mean[p]);
  }
}

/// Prediction change along (solid) and across (dashed) the tangent spaces with ±2 standard errors: each model
/// in its colour with the tangent space the summary reads (the VAE's where there is one), or, with
/// `every_basis`, every tangent space, coloured by which (the subcommand's tangent.svg, one model).
LineChart tangent_chart(const std::vector<ModelRecord>& models, bool every_basis) {
  LineChart chart{"Prediction change along and across the data manifold",
                  "ε (L2 length of the change)",
                  "mean L1 change of the softmax",
                  {}};
  chart.log_x = true;
  chart.note = every_basis ? "solid: along the tangent space (on-manifold); dashed: across it (off-manifold)"
                           : "solid: along the tangent space (on-manifold); dashed: across it (off-manifold); the "
                             "VAE's tangent spaces where there is a VAE, else local PCA's (the table lists both)";
  const auto series = [](const std::string& name, const nlohmann::json& curve, const std::vector<double>& eps,
                         bool dashed, int colour) {
    ChartSeries line{name, eps, numbers(curve["mean"]), {}, {}, dashed, colour};
    const std::vector<double> error = numbers(curve["standard_error"]);
    for (std::size_t i = 0; i < eps.size() && i < error.size(); ++i) {
      line.band_low.push_back(line.y[i] - 2 * error[i]);
      line.band_high.push_back(line.y[i] + 2 * error[i]);
    }
    return line;
  };
  for (const auto& [name, record, colour] : models) {
    const nlohmann::json* tangents = find(*record, {"tangent"});
    if (tangents == nullptr) continue;
    const std::string charted = tangents->contains("vae") ? "vae" : "local-pca";
    int place = 0;
    for (const auto& [basis, result] : tangents->items()) {
      if (!result.contains("eps") || (!every_basis && basis != charted)) continue;  // or subspace_agreement
      const std::vector<double> eps = numbers(result["eps"]);
      const std::string label = every_basis ? " (" + basis + ")" : "";
      const int shade = colour >= 0 ? colour : place++;
      chart.series.push_back(series(name + " on" + label, result["on_manifold"], eps, false, shade));
      chart.series.push_back(series(name + " off" + label, result["off_manifold"], eps, true, shade));
    }
  }
  return chart;
}

void report_tangent(const TangentComparison& comparison, const ModelRecord& model, ManifoldOutputs& outputs) {
  for (const auto& [name, result] : comparison.results) {
    add_csv_rows(outputs.csv, name + ":on_manifold", result.eps, result.on_manifold);
    add_csv_rows(outputs.csv, name + ":off_manifold", result.eps, result.off_manifold);
    print_tangent_result(name, result);
  }
  if (comparison.agreement) {
    // How far the two estimates of the tangent space agree, over the same images.
    console::print("VAE and local-PCA tangent spaces: agreement %.3f (1 = the same subspace; random: %.4f)\n",
                   *comparison.agreement, comparison.random_agreement());
  }
  outputs.write_chart("tangent.svg", tangent_chart({model}, true));
}

void run_manifold(const ManifoldCommand& command) {
  CommonOptions common = command.common;
  DistractorOptions distractor_options = command.distractor;
  TangentOptions tangent_options = command.tangent;
  distractor_options.set_batch_size(common.batch_size).check();
  tangent_options.set_batch_size(common.batch_size).check();
  RL_CHECK(command.pca_neighbours == 0 || command.pca_neighbours >= 2, "--pca-neighbours must be 0 (off) or >= 2, got ",
           command.pca_neighbours);
  const AnalysisRun run = start_analysis(common, "manifold");
  const std::unique_ptr<TangentBases> tangent = tangent_bases(command, common, run);
  const bool has_mask = run.data.signal_mask.defined();
  RL_CHECK(has_mask || !tangent->bases.empty(), "nothing to measure: the data '", run.data.name,
           "' have no signal mask (use --data distractor:SPEC), no --vae was given and local PCA is off");

  nlohmann::json options_json = {{"vae", command.vae},
                                 {"pca_neighbours", command.pca_neighbours},
                                 {"pca_dim", tangent->pca_dim},
                                 {"gradient", "of the predicted class's logit"}};
  if (has_mask) options_json["distractor"] = distractor_options.to_json();
  if (!tangent->bases.empty()) options_json["tangent"] = tangent_options.to_json();
  nlohmann::json record = run.record("manifold", options_json, common);
  ManifoldOutputs outputs;
  outputs.out = common.out;
  outputs.csv << "curve,x,mean,standard_error\n";
  outputs.written = {(outputs.out / "manifold.json").string(), (outputs.out / "manifold_curves.csv").string()};
  const at::Generator generator = make_generator(common.seed);  // one stream through the measures below
  if (has_mask) {
    const DistractorResult result =
        analyse_distractor_robustness(*run.model, run.data, distractor_options, generator, terminal_progress());
    record["distractor"] = result.to_json();
    report_distractor(result, outputs);
  }
  if (!tangent->bases.empty()) {
    const TangentComparison comparison =
        analyse_tangent_spaces(*run.model, run.data, tangent->bases, tangent_options, generator, terminal_progress());
    record["tangent"] = comparison.to_json();
    report_tangent(comparison, {model_names({common.model}, {}).front(), &record, -1}, outputs);
  }
  write_text_file((outputs.out / "manifold_curves.csv").string(), outputs.csv.str());
  write_json_file((outputs.out / "manifold.json").string(), record);
  console::print("results in");
  for (const std::string& path : outputs.written) console::print(" %s", path.c_str());
  console::print("\n");
}

}  // namespace

void add_manifold_command(CLI::App& app) {
  auto command = std::make_shared<ManifoldCommand>();
  command->common.samples = 1000;
  command->common.batch_size = 64;
  CLI::App* sub = app.add_subcommand(
      "manifold", "On- and off-manifold sensitivity (distractor data, VAE and local-PCA tangent spaces)");
  add_common_options(*sub, command->common, kModel | kData | kSplit | kSamples | kBatchSize | kRuntime | kOut);
  sub->get_option("--batch-size")->description("Images per chunk (each model pass holds a few copies of each)");
  DistractorOptions& d = command->distractor;
  sub->add_option(
         "--noise-levels", d.noise_levels,
         "Distractor data: noise standard deviations, comma list (default {0} and 30 log-spaced in [0.01, 10])")
      ->delimiter(',');
  sub->add_option("--noise-draws", d.draws, "Distractor data: noise draws per image and level")
      ->check(kPositive)
      ->capture_default_str();
  TangentOptions& t = command->tangent;
  sub->add_option("--vae", command->vae,
                  "VAE file (robustlens train-vae) whose decoder Jacobian gives the tangent spaces");
  sub->add_option("--pca-neighbours", command->pca_neighbours,
                  "Local PCA: nearest training images of the same class (0 = off)")
      ->check(kNonNegative)
      ->capture_default_str();
  sub->add_option("--pca-dim", command->pca_dim,
                  "Local PCA: tangent dimension k (0 = the VAE's latent dimension, else 16)")
      ->check(kNonNegative)
      ->capture_default_str();
  sub->add_option("--eps", t.eps,
                  "Tangent spaces: L2 lengths of the perturbations, comma list (default 9 log-spaced in [0.1, 10])")
      ->delimiter(',');
  sub->add_option("--draws", t.draws, "Tangent spaces: random directions per image")
      ->check(kPositive)
      ->capture_default_str();
  sub->callback([command] { run_manifold(*command); });
}

namespace {

using json = nlohmann::json;

/// The tangent space the manifold step measured: the VAE's when there is one, else local PCA's.
const json* tangent_result(const json& model) {
  const json* vae = find(model, {"analyses", "manifold", "tangent", "vae"});
  return vae != nullptr ? vae : find(model, {"analyses", "manifold", "tangent", "local-pca"});
}

void manifold_section(HtmlReport& report, const json& audit) {
  report.heading(2, "On- and off-manifold robustness", "manifold");
  report.paragraph(
      "Natural images lie near a low-dimensional surface (the data manifold). A change along it keeps "
      "the image natural (a slightly different shoe); a change across it adds unnatural noise. The "
      "chart compares how much the prediction (softmax) changes under random changes of the same "
      "length along the tangent space (on-manifold) and across it (off-manifold). Models whose "
      "gradients are perceptually aligned are robust off the manifold while staying sensitive on it; "
      "the tangent fraction is the share of the input gradient that lies on the manifold. The "
      "first-order ratio compares, per direction, the squared derivative of the log-probability of the "
      "predicted class across the manifold with that along it: below 1, the model is more robust off "
      "the manifold than on it, at any small length.");
  const auto models = ran_on(report, audit, "manifold");
  if (models.empty()) return;
  const LineChart chart = tangent_chart(models, false);
  std::vector<std::vector<std::string>> rows;
  for (const auto& [name, record, colour] : models) {
    const json* tangents = find(*record, {"tangent"});
    if (tangents == nullptr) continue;
    for (const auto& [basis, result] : tangents->items()) {
      if (!result.contains("eps")) continue;  // subspace_agreement
      rows.push_back(
          {name, basis,
           std::to_string(result["tangent_dim"].get<int>()) + " of " + std::to_string(result["input_dim"].get<int>()),
           format_number(result["tangent_fraction"], "%.3f") + " ± " +
               format_number(result["tangent_fraction_standard_error"], "%.3f"),
           format_number(result["random_baseline"], "%.3f"),
           result.contains("first_order") ? format_number(result["first_order"]["off_to_on_ratio"], "%.3f") : "-"});
    }
  }
  if (!chart.series.empty()) report.chart(vega_lite_spec(chart));
  if (!rows.empty()) {
    report.table({"model", "tangent space", "dimension k of D", "tangent fraction of gradients", "random direction",
                  "first-order off/on per direction"},
                 rows);
  }
}

}  // namespace

Analysis manifold_analysis() {
  Analysis analysis;
  analysis.name = "manifold";
  analysis.result_file = "manifold.json";
  analysis.add_command = add_manifold_command;
  analysis.needs = kVaeIfAny;
  analysis.quick_arguments = {"--samples", "100"};
  analysis.summary_columns = {
      {"tangent_fraction", "gradient share on manifold",
       "‖P∇f‖/‖∇f‖: how much of the input gradient lies in the data manifold's tangent space (VAE, else local PCA); "
       "a random direction gets √(k/D) (manifold).",
       "fixed",
       [](const json&, const json& m) -> std::optional<double> {
         const json* tangent = tangent_result(m);
         return tangent == nullptr ? std::nullopt : number(*tangent, {"tangent_fraction"});
       }},
  };
  analysis.report_section = manifold_section;
  return analysis;
}

}  // namespace robustlens::cli
