// robustlens align: how closely a classifier's input gradients follow the data
// score of a denoiser (robustlens train-denoiser): cosine similarity and SSIM
// per image, as JSON, and a figure of images, gradients and scores.
#include "commands.h"
#include "common.h"
#include "generative_support.h"

#include "robustlens/analyses/alignment.h"
#include "robustlens/core/error.h"
#include "robustlens/report/files.h"

#include <filesystem>
#include <memory>

namespace robustlens::cli {
namespace {

struct AlignCommand {
  CommonOptions common;
  std::string denoiser;
  double sigma = 0.5;
  std::int64_t figure_images = 8;
};

void run_align(const AlignCommand& command) {
  CommonOptions common = command.common;
  RL_CHECK(command.sigma > 0, "--sigma must be > 0, got ", command.sigma);
  RL_CHECK(command.figure_images >= 0, "--figure-images must be >= 0, got ", command.figure_images);
  const AnalysisRun run = start_analysis(common, "align");
  const std::unique_ptr<Denoiser> denoiser = load_denoiser_for(command.denoiser, run.data, run.device);
  const AlignmentOptions options =
      AlignmentOptions().set_conditional(denoiser->spec().num_classes > 0).set_batch_size(common.batch_size);
  const ScoreFunction score = denoiser_score_function(*denoiser, command.sigma);
  const AlignmentResult result = analyse_alignment(*run.model, run.data, score, options, terminal_progress());

  const std::filesystem::path out(common.out);
  nlohmann::json options_json = options.to_json();
  options_json.update({{"denoiser", command.denoiser}, {"sigma", command.sigma},
                       {"score", "Tweedie: (D(x', sigma, y) - x') / sigma^2, x' = 2x - 1"}});
  nlohmann::json record = run.record("align", options_json, common);
  record["denoiser_spec"] = denoiser->spec().to_json();
  record.update(result.to_json());
  record["cosine_per_image"] = tensor_to_json(result.cosine);
  record["ssim_per_image"] = tensor_to_json(result.ssim);
  write_json_file((out / "alignment.json").string(), record);
  const std::int64_t shown = std::min(command.figure_images, run.data.size());
  if (shown > 0) {
    const at::Tensor images = run.data.images.slice(0, 0, shown).to(run.device);
    const at::Tensor labels = run.data.labels.slice(0, 0, shown).to(run.device);
    write_gradient_figure((out / "gradients.png").string(), images,
                          {alignment_gradient(*run.model, images, labels, options.conditional),
                           score(images, options.conditional ? labels : at::Tensor())});
  }
  std::printf("alignment of input gradients with the %s score of %s (sigma %.3g) on %lld images:\n",
              options.conditional ? "class-conditional" : "unconditional", command.denoiser.c_str(), command.sigma,
              static_cast<long long>(result.cosine.numel()));
  std::printf("  cosine similarity %.4f ± %.4f   SSIM %.4f ± %.4f   (mean ± standard error)\n", result.mean_cosine,
              result.cosine_standard_error, result.mean_ssim, result.ssim_standard_error);
  std::printf("results in %s%s\n", (out / "alignment.json").c_str(),
              shown > 0 ? (", " + (out / "gradients.png").string() + " (image | gradient | score)").c_str() : "");
}

}  // namespace

void add_align_command(CLI::App& app) {
  auto command = std::make_shared<AlignCommand>();
  command->common.samples = 1000;
  command->common.batch_size = 64;
  CLI::App* sub = app.add_subcommand("align", "Alignment of input gradients with the data score of a denoiser (perceptually aligned gradients)");
  add_common_options(*sub, command->common, kModel | kData | kSplit | kSamples | kBatchSize | kRuntime | kOut);
  sub->add_option("--denoiser", command->denoiser, "Denoiser file (robustlens train-denoiser); an unconditional one gives the unconditional pairing")
      ->required();
  sub->add_option("--sigma", command->sigma, "Noise level of the Tweedie score ([-1,1] pixel units)")->capture_default_str();
  sub->add_option("--figure-images", command->figure_images, "Images in gradients.png")->capture_default_str();
  sub->callback([command] { run_align(*command); });
}

}  // namespace robustlens::cli
