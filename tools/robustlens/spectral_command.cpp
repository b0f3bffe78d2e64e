// robustlens spectral: where the model's predictive power sits in the Fourier
// spectrum (I-ASIDE: exact Shapley values of frequency bands, the importance
// distribution psi and the spectral robustness score) and how hard common
// perturbations hit each band (spectral SNR).
#include "analysis_registry.h"
#include "commands.h"
#include "common.h"
#include "report_sections.h"

#include "robustlens/analyses/spectral_importance.h"
#include "robustlens/core/console.h"
#include "robustlens/core/files.h"
#include "robustlens/data/image_folder.h"
#include "robustlens/report/chart.h"
#include "robustlens/report/images.h"
#include "robustlens/report/vega_lite.h"

#include <filesystem>
#include <memory>
#include <sstream>

namespace robustlens::cli {
namespace {

struct SpectralCommand {
  CommonOptions common;
  SpectralImportanceOptions importance;
  std::vector<std::string> snr{"gaussian:0.1", "fgsm-linf:0.0314", "pgd-l2:1"};
  std::int64_t pgd_steps = 10;
};

std::vector<std::string> band_names(std::int64_t bands) {
  std::vector<std::string> names;
  for (std::int64_t i = 0; i < bands; ++i) names.push_back(std::to_string(i));
  return names;
}

/// The grid's columns: the low-pass coalitions {0}, {0,1}, …, all bands, then
/// each single band above 0 ({1}, …, {M−1}).
std::vector<std::uint32_t> example_coalitions(std::int64_t bands) {
  std::vector<std::uint32_t> coalitions;
  for (std::int64_t i = 0; i < bands; ++i) coalitions.push_back((2u << i) - 1);
  for (std::int64_t i = 1; i < bands; ++i) coalitions.push_back(1u << i);
  return coalitions;
}

void write_coalition_grid(const std::filesystem::path& path, const at::Tensor& examples) {
  std::vector<at::Tensor> tiles;
  for (std::int64_t i = 0; i < examples.size(0); ++i) {
    for (std::int64_t c = 0; c < examples.size(1); ++c) tiles.push_back(to_rgb(examples[i][c]));
  }
  write_png(path.string(), image_grid(tiles, examples.size(1), examples.size(-1) < 64 ? 3 : 1));
}

void print_row(const char* name, const std::vector<double>& values, const char* format) {
  console::print("  %-22s", name);
  for (const double v : values) console::print(format, v);
  console::print("\n");
}

/// psi per Fourier band, one bar series per model in its colour; the note gives each signed score.
BarChart psi_chart(const std::vector<ModelRecord>& models) {
  BarChart psi{"Spectral importance distribution psi",
               "Fourier band (0 = lowest, holds the mean)",
               "share of predictive power",
               {},
               {},
               ""};
  for (const auto& [name, record, colour] : models) {
    const std::vector<double> values = numbers((*record)["psi"]);
    if (psi.categories.empty()) psi.categories = band_names(static_cast<std::int64_t>(values.size()));
    psi.series.push_back({name, values, colour});
    psi.note += (psi.note.empty() ? "signed score: " : ", ") + name + " " +
                format_number(signed_spectral_score(values, (*record)["options"]["beta"].get<double>()), "%.3f");
  }
  return psi;
}

/// The SNR per band of each perturbation: the model's colour, its perturbations by line style.
LineChart snr_chart(const std::vector<ModelRecord>& models) {
  LineChart snr{"Spectral signal-to-noise ratio of perturbations", "Fourier band", "SNR (dB)", {}};
  for (const auto& [name, record, colour] : models) {
    std::size_t variant = 0;
    for (const nlohmann::json& curve : record->value("snr", nlohmann::json::array())) {
      ChartSeries series{name + " · " + curve["perturbation"].get<std::string>(),
                         {},
                         numbers(curve["snr_db"]),
                         {},
                         {},
                         variant == 1,
                         colour,
                         variant >= 2};
      ++variant;
      for (std::size_t b = 0; b < series.y.size(); ++b) series.x.push_back(static_cast<double>(b));
      snr.series.push_back(series);
    }
  }
  return snr;
}

/// psi.svg and snr.svg from the record, drawn as the audit's report draws them (one model, a colour per
/// perturbation), and the coalition images.
void write_spectral_charts(const std::filesystem::path& out, const std::string& name, const nlohmann::json& record,
                           const SpectralImportanceResult& result) {
  const std::vector<ModelRecord> model{{name, &record, -1}};
  write_svg((out / "psi.svg").string(), psi_chart(model));
  const LineChart snr = snr_chart(model);
  if (!snr.series.empty()) write_svg((out / "snr.svg").string(), snr);
  write_coalition_grid(out / "coalitions.png", result.examples);
}

void print_spectral_result(const SpectralImportanceResult& result, const std::vector<SpectralSnrCurve>& curves,
                           const SpectralImportanceOptions& options, const Dataset& data) {
  const std::int64_t bands = options.bands;
  console::print("spectral importance over %lld images of %s (M=%lld bands, fill %s, output %s):\n",
                 static_cast<long long>(data.size()), data.name.c_str(), static_cast<long long>(bands),
                 options.fill.c_str(), options.output.c_str());
  console::print("  %-22s", "band");
  for (std::int64_t i = 0; i < bands; ++i) console::print("%8lld", static_cast<long long>(i));
  console::print("\n");
  print_row("phi (nats)", result.overall.phi, "%8.3f");
  print_row("psi", result.overall.psi, "%8.3f");
  for (const ClassSpectralImportance& c : result.per_class)
    print_row(("psi " + c.name).c_str(), c.importance.psi, "%8.3f");
  for (const SpectralSnrCurve& curve : curves)
    print_row(("SNR dB " + curve.perturbation).c_str(), curve.snr_db, "%8.1f");
  console::print(
      "spectral robustness score %.4f, signed %+.4f (beta %.3g; 0 = uniform psi, > 0 low bands, < 0 high "
      "bands); v(empty) %.4f, v(all) %.4f\n",
      result.overall.score, result.overall.signed_score, options.beta, result.overall.coalition_values.front(),
      result.overall.coalition_values.back());
  for (const ClassSpectralImportance& c : result.per_class) {
    console::print("  class %-16s score %.4f, signed %+.4f over %lld images\n", c.name.c_str(), c.importance.score,
                   c.importance.signed_score, static_cast<long long>(c.images));
  }
}

void run_spectral(SpectralCommand command) {
  CommonOptions& common = command.common;
  std::vector<SnrPerturbation> perturbations;
  for (const std::string& text : command.snr) {
    if (text != "none") perturbations.push_back(SnrPerturbation::parse(text));
  }
  const AnalysisRun run = start_analysis(common, "spectral");
  Model& model = *run.model;
  const std::int64_t bands = command.importance.bands;
  const SpectralImportanceOptions options =
      command.importance.set_batch_size(common.batch_size)
          .set_seed(common.seed)
          .set_examples(example_coalitions(bands), std::min<std::int64_t>(4, run.data.size()));
  const SpectralSnrOptions snr_options = SpectralSnrOptions()
                                             .set_perturbations(perturbations)
                                             .set_bands(bands)
                                             .set_circular(options.circular)
                                             .set_pgd_steps(command.pgd_steps)
                                             .set_batch_size(common.batch_size)
                                             .set_seed(common.seed);
  snr_options.check();
  const SpectralImportanceResult result = analyse_spectral_importance(model, run.data, options, terminal_progress());
  const std::vector<SpectralSnrCurve> curves = analyse_spectral_snr(model, run.data, snr_options, terminal_progress());

  const std::filesystem::path out(common.out);
  nlohmann::json options_json = options.to_json();
  options_json.erase("example_coalitions");
  options_json["snr"] = snr_options.to_json();
  nlohmann::json record = run.record("spectral", options_json, common);
  record["value"] = "v(S) = mean over the images of log softmax(f(x_S))[label]";
  record.update(result.to_json());
  record["snr"] = nlohmann::json::array();
  for (const SpectralSnrCurve& curve : curves) record["snr"].push_back(curve.to_json());
  write_json_file((out / "spectral.json").string(), record);

  write_spectral_charts(out, model_names({common.model}, {}).front(), record, result);
  print_spectral_result(result, curves, options, run.data);
  console::print("results in %s, %s%s, %s\n", (out / "spectral.json").c_str(), (out / "psi.svg").c_str(),
                 curves.empty() ? "" : (", " + (out / "snr.svg").string()).c_str(), (out / "coalitions.png").c_str());
}

}  // namespace

void add_spectral_command(CLI::App& app) {
  auto command = std::make_shared<SpectralCommand>();
  command->common.samples = 256;
  command->common.batch_size = 512;  // forward-only: coalitions are stacked up to this
  CLI::App* sub = app.add_subcommand(
      "spectral", "Spectral importance of Fourier bands (I-ASIDE) and spectral SNR of perturbations");
  add_common_options(*sub, command->common, kModel | kData | kSplit | kSamples | kBatchSize | kRuntime | kOut);
  SpectralImportanceOptions& o = command->importance;
  sub->add_option("--bands", o.bands, "Number of Fourier bands M (2^M coalitions are evaluated)")
      ->check(CLI::Range(2, 12))
      ->capture_default_str();
  sub->add_option("--beta", o.beta, "Decay of the score's reference weights beta^k")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("--fill", o.fill, "What replaces the bands outside a coalition")
      ->check(CLI::IsMember({"donor", "zero", "noise"}))
      ->capture_default_str();
  sub->add_option("--output", o.output,
                  "reference: modulus + min-max over the images (the reference code); real: real part clipped to [0,1]")
      ->check(CLI::IsMember({"reference", "real"}))
      ->capture_default_str();
  sub->add_flag("--circular", o.circular, "Circular rings instead of the reference's square rings");
  sub->add_flag("--per-class", o.per_class, "Also the Shapley values of each class's images alone");
  sub->add_option(
         "--snr", command->snr,
         "Perturbations whose spectral SNR is measured: gaussian:SIGMA, fgsm-l2|fgsm-linf|pgd-l2|pgd-linf:EPS, or none")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--pgd-steps", command->pgd_steps, "PGD steps for the SNR perturbations")
      ->check(kPositive)
      ->capture_default_str();
  sub->callback([command] { run_spectral(*command); });
}

namespace {

using json = nlohmann::json;

void spectral_section(HtmlReport& report, const json& audit) {
  report.heading(2, "Spectral importance (I-ASIDE)", "spectral");
  report.paragraph(
      "Which frequencies does the model's predictive power come from? The image's Fourier spectrum is "
      "split into rings from low to high frequency; the model is scored on images rebuilt from every "
      "subset of rings, and the exact Shapley value of each ring is its fair share of the score. psi is "
      "that share normalised to sum to 1. Robust models put more of it on the low bands; the signed "
      "spectral score summarises this (0 = spread evenly, positive = low bands, negative = high bands; "
      "the paper's score is its absolute value). The signal-to-noise ratio per band shows "
      "where perturbations put their energy.");
  const auto models = ran_on(report, audit, "spectral");
  if (models.empty()) return;
  const BarChart psi = psi_chart(models);
  const LineChart snr = snr_chart(models);
  std::vector<json> charts{vega_lite_spec(psi)};
  if (!snr.series.empty()) charts.push_back(vega_lite_spec(snr));
  charts_side_by_side(report, charts);
  report.paragraph("Images rebuilt from growing sets of bands (columns: coalitions of bands, from none to all).");
  model_figures(report, audit, "spectral", "coalitions.png", "images rebuilt from subsets of Fourier bands");
}

}  // namespace

Analysis spectral_analysis() {
  Analysis analysis;
  analysis.name = "spectral";
  analysis.result_file = "spectral.json";
  analysis.add_command = add_spectral_command;
  analysis.quick_arguments = {"--samples", "64"};
  analysis.summary_columns = {
      {"spectral_score", "signed spectral score",
       "I-ASIDE score, signed: (⟨b̂, psi⟩ − eta)/(1 − eta), 0 when the predictive power is spread evenly over the "
       "Fourier bands, positive when it rests on the low bands, which perturbations move least, negative when on "
       "the high ones (the paper's score is its absolute value; spectral).",
       "fixed",
       [](const json&, const json& m) -> std::optional<double> {
         // From psi, so that records written before the signed score existed are read the same way.
         const json* psi = find(m, {"analyses", "spectral", "psi"});
         const json* beta = find(m, {"analyses", "spectral", "options", "beta"});
         if (psi == nullptr || beta == nullptr) return std::nullopt;
         return signed_spectral_score(psi->get<std::vector<double>>(), beta->get<double>());
       }},
  };
  analysis.report_section = spectral_section;
  return analysis;
}

}  // namespace robustlens::cli
