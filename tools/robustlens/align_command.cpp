// robustlens align: how closely a classifier's input gradients follow the data
// score of a denoiser (robustlens train-denoiser): cosine similarity and SSIM
// per image and noise level, the denoiser's error beside trivial denoisers
// (how far its score can be trusted), as JSON, and a figure of images,
// gradients and scores.
#include "analysis_registry.h"
#include "commands.h"
#include "common.h"
#include "generative_support.h"
#include "report_sections.h"

#include "robustlens/analyses/alignment.h"
#include "robustlens/core/console.h"
#include "robustlens/core/error.h"
#include "robustlens/core/files.h"
#include "robustlens/core/random.h"
#include "robustlens/report/vega_lite.h"

#include <cmath>
#include <filesystem>
#include <memory>

namespace robustlens::cli {
namespace {

struct AlignCommand {
  CommonOptions common;
  std::string denoiser;
  AlignmentFlags alignment;
  std::int64_t figure_images = 8;
};

/// The noise stream of the denoising-error table (derive_seed of --seed).
constexpr std::uint64_t kDenoisingErrorStream = 41;

void run_align(const AlignCommand& command) {
  CommonOptions common = command.common;
  RL_CHECK(command.figure_images >= 0, "--figure-images must be >= 0, got ", command.figure_images);
  const AnalysisRun run = start_analysis(common, "align");
  const std::unique_ptr<Denoiser> denoiser = load_denoiser_for(command.denoiser, run.data, run.device);
  const AlignmentFlags& flags = command.alignment;
  const AlignmentOptions options = alignment_options_for(*denoiser, command.denoiser, flags.pairing, flags.label,
                                                         flags.sigmas, flags.summary_sigma, common.batch_size);
  const ScoreFunction score = denoiser_score_function(*denoiser);
  const AlignmentResult result = analyse_alignment(*run.model, run.data, score, options, terminal_progress());
  // The score is only as good as the denoiser: its error on these images at the same noise levels.
  const DenoisingErrors errors = evaluate_denoising_errors(
      *denoiser, run.data, options.sigmas, derive_seed(common.seed, kDenoisingErrorStream), nullptr, common.batch_size);

  const std::filesystem::path out(common.out);
  nlohmann::json options_json = options.to_json();
  options_json.update(
      {{"denoiser", command.denoiser},
       {"score", "Tweedie: (D(x', sigma, y) - x') / sigma^2, x' = 2x - 1; s(x) from the no-label token"}});
  nlohmann::json record = run.record("align", options_json, common);
  record["denoiser_spec"] = denoiser->spec().to_json();
  record.update(result.to_json(true));
  record["denoising_errors"] = errors.to_json();
  const nlohmann::json& training = denoiser->training_record();
  record["denoiser_training_errors"] = training.value("denoising_errors", nlohmann::json());
  write_json_file((out / "alignment.json").string(), record);
  const std::int64_t shown = std::min(command.figure_images, run.data.size());
  if (shown > 0) {
    const at::Tensor images = run.data.images.slice(0, 0, shown).to(run.device);
    const at::Tensor labels =
        options.predicted_label ? at::Tensor() : run.data.labels.slice(0, 0, shown).to(run.device);
    const auto [gradient, y] = alignment_gradient(*run.model, images, labels, options.pairing);
    write_gradient_figure((out / "gradients.png").string(), images,
                          {gradient, paired_score(score, images, y, options.pairing, options.summary_sigma)});
  }
  console::print("alignment of input gradients with the data score of %s on %lld images\n  pairing %s: %s\n",
                 command.denoiser.c_str(), static_cast<long long>(result.images),
                 alignment_pairing_name(options.pairing).c_str(),
                 alignment_pairing_description(options.pairing).c_str());
  const auto error_cell = [](double value) { return format_number(value, "%.5f", "-"); };
  console::print("%8s %18s %18s %12s %12s %12s\n", "sigma", "cosine", "SSIM", "MSE given y", "MSE no label",
                 "MSE identity");
  for (std::size_t s = 0; s < result.per_sigma.size(); ++s) {
    const AlignmentAtSigma& entry = result.per_sigma[s];
    console::print("%8.3g %9.4f ± %.4f %9.4f ± %.4f %12s %12s %12s%s\n", entry.sigma, entry.mean_cosine,
                   entry.cosine_standard_error, entry.mean_ssim, entry.ssim_standard_error,
                   error_cell(errors.conditional[s]).c_str(), error_cell(errors.unconditional[s]).c_str(),
                   error_cell(errors.identity[s]).c_str(), entry.sigma == result.summary_sigma ? "   <- summary" : "");
  }
  console::print("(mean ± standard error over images; MSE: per pixel, [-1,1] units, the denoiser on these images)\n");
  console::print("results in %s%s\n", (out / "alignment.json").c_str(),
                 shown > 0 ? (", " + (out / "gradients.png").string() + " (image | gradient | score)").c_str() : "");
}

}  // namespace

void add_align_command(CLI::App& app) {
  auto command = std::make_shared<AlignCommand>();
  command->common.samples = 1000;
  command->common.batch_size = 64;
  CLI::App* sub = app.add_subcommand(
      "align", "Alignment of input gradients with the data score of a denoiser (perceptually aligned gradients)");
  add_common_options(*sub, command->common, kModel | kData | kSplit | kSamples | kBatchSize | kRuntime | kOut);
  sub->add_option("--denoiser", command->denoiser, "Denoiser file (robustlens train-denoiser)")->required();
  add_alignment_flags(*sub, command->alignment);
  sub->add_option("--figure-images", command->figure_images, "Images in gradients.png")->capture_default_str();
  sub->callback([command] { run_align(*command); });
}

namespace {

using json = nlohmann::json;

void alignment_section(HtmlReport& report, const json& audit) {
  report.heading(2, "Perceptually aligned gradients", "alignment");
  report.paragraph(
      "Does the input gradient point where a generative model of the data would change the image? A "
      "denoiser trained on the data gives the score of the noisy data, with the image's class "
      "(s(x, y)) and without it (s(x)); their difference is the input gradient of log p(y|x) of the "
      "Bayes classifier of that data. The cosine similarity between it and the gradient of the "
      "model's log-probability of the class measures the alignment (SSIM as a second metric). The "
      "score is read at several noise levels sigma: small sigma sees fine detail, large sigma the "
      "coarse shape. The paper reports that moderately robust models have the most aligned "
      "gradients. (robustlens align also pairs the gradient with s(x, y) alone, the conditional "
      "pairing; on Fashion-MNIST that reads about 0 for every model.)");
  const auto models = ran_on(report, audit, "align");
  if (models.empty()) return;
  LineChart chart{"Alignment of input gradients with the data score",
                  "noise level sigma of the score",
                  "mean cosine over the images",
                  {}};
  chart.log_x = true;
  for (const auto& [name, record, colour] : models) {
    std::vector<double> sigmas, cosines;
    for (const json& level : record->value("per_sigma", json::array())) {
      sigmas.push_back(level.at("sigma").get<double>());
      cosines.push_back(level.at("mean_cosine").get<double>());
    }
    chart.series.push_back({name, sigmas, cosines, {}, {}, false, colour});
  }
  const json& options = (*models.front().record)["options"];
  chart.note = "pairing: " + options.value("pairing_description", options.value("pairing", "")) +
               "; the summary table uses sigma " + format_number(options.value("summary_sigma", 0.5), "%.2f");
  report.chart(vega_lite_spec(chart));
  model_figures(report, audit, "align", "gradients.png", "image | input gradient | data score");
}

}  // namespace

Analysis align_analysis() {
  Analysis analysis;
  analysis.name = "align";
  analysis.result_file = "alignment.json";
  analysis.add_command = add_align_command;
  analysis.needs = kDenoiser;
  analysis.audit_arguments = {"--pairing", "bayes"};
  analysis.quick_arguments = {"--samples", "100"};
  analysis.summary_columns = {
      {"alignment", "gradient alignment",
       "Cosine similarity between the input gradient of log p(y|x) and s(x, y) − s(x), the gradient of a Bayes "
       "classifier of the data (the difference of a denoiser's class-conditional and unconditional scores), at "
       "noise level 0.5 (the align step's pairing and summary noise level): perceptually aligned gradients score "
       "higher (align).",
       "fixed",
       [](const json&, const json& m) {
         return number(m, {"analyses", "align", "mean_cosine"});
       }},
  };
  analysis.report_section = alignment_section;
  return analysis;
}

}  // namespace robustlens::cli
