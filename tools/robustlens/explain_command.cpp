// robustlens explain: attribution maps (saliency, input×gradient, integrated
// gradients, SmoothGrad) as heat maps beside the images, and the raw maps.
#include "analysis_registry.h"
#include "commands.h"
#include "common.h"
#include "report_sections.h"

#include "robustlens/core/console.h"
#include "robustlens/core/distributed.h"
#include "robustlens/core/error.h"
#include "robustlens/core/files.h"
#include "robustlens/core/parsing.h"
#include "robustlens/core/random.h"
#include "robustlens/data/image_folder.h"
#include "robustlens/explain/attributions.h"
#include "robustlens/report/images.h"

#include <filesystem>
#include <memory>

namespace robustlens::cli {
namespace {

struct ExplainCommand {
  CommonOptions common;
  AttributionOptions attribution;
  std::string method = "saliency";
  std::string target = "true";
};

/// true | predicted | a class index.
at::Tensor target_classes(const std::string& target, const Dataset& data, const at::Tensor& predictions,
                          std::int64_t classes) {
  if (target == "true") return data.labels;
  if (target == "predicted") return predictions;
  const auto k = parse_int64(target);
  RL_CHECK(k && *k >= 0 && *k < classes, "--target: expected true, predicted or a class index in 0..", classes - 1,
           ", got '", target, "'");
  return at::full({data.size()}, *k, at::kLong);
}

void run_explain(ExplainCommand command) {
  CommonOptions& common = command.common;
  const AnalysisRun run = start_analysis(common, "explain");
  const Dataset& data = run.data;
  Model& model = *run.model;
  const AttributionOptions options = command.attribution.set_method(parse_attribution_method(command.method));
  const at::Tensor predictions = batched_logits(model, data.images, common.batch_size).argmax(1);
  const at::Tensor targets = target_classes(command.target, data, predictions, model.info().num_classes);

  const ProgressCallback progress = terminal_progress();
  const at::Generator generator = make_generator(common.seed);  // SmoothGrad's noise
  // Each image's map is its own: a data-parallel run splits every batch (core/distributed.h).
  const at::Tensor raw = distributed::gather_batch_shares(
      data.size(), common.batch_size,
      [&](std::int64_t first, std::int64_t last) {
        return std::vector<at::Tensor>{attribute(model, data.images.slice(0, first, last).to(run.device),
                                                 targets.slice(0, first, last).to(run.device), options, generator)
                                           .to(at::kCPU)};
      },
      progress, to_string(options.method))[0];
  const at::Tensor maps = normalise_maps(raw);

  const std::filesystem::path out(common.out);
  write_tensors((out / "maps.pt").string(), {{"images", data.images},
                                             {"targets", targets},
                                             {"raw_maps", raw},
                                             {"maps", maps},
                                             {"indices", at::tensor(run.indices, at::kLong)}});
  std::vector<at::Tensor> tiles;
  for (std::int64_t i = 0; i < std::min<std::int64_t>(16, data.size()); ++i) {
    const at::Tensor image = to_rgb(data.images[i]), heat = heat_colormap(maps[i]);
    tiles.insert(tiles.end(), {image, heat, 0.5 * image.mean(0, true).expand_as(heat) + 0.5 * heat});
  }
  write_png((out / "heatmaps.png").string(), image_grid(tiles, 3, 4));
  nlohmann::json record = run.record("explain", options.to_json(), common);
  record["target"] = command.target;
  record["targets"] = tensor_to_json(targets);
  record["predictions"] = tensor_to_json(predictions);
  write_json_file((out / "explain.json").string(), record);
  console::print("%s maps of %lld images (target: %s) written to %s (image | map | overlay) and %s\n",
                 to_string(options.method).c_str(), static_cast<long long>(data.size()), command.target.c_str(),
                 (out / "heatmaps.png").c_str(), (out / "maps.pt").c_str());
}

}  // namespace

void add_explain_command(CLI::App& app) {
  auto command = std::make_shared<ExplainCommand>();
  command->common.samples = 8;
  CLI::App* sub =
      app.add_subcommand("explain", "Attribution maps: saliency, input×gradient, integrated gradients, SmoothGrad");
  add_common_options(*sub, command->common, kModel | kData | kSplit | kSamples | kBatchSize | kRuntime | kOut);
  add_attribution_options(*sub, command->attribution, command->method, "--method");
  sub->add_option("--target", command->target, "Class explained: true, predicted or a class index")
      ->capture_default_str();
  sub->add_flag("--softmax", command->attribution.softmax,
                "Differentiate the softmax probability instead of the logit");
  sub->callback([command] { run_explain(*command); });
}

namespace {

using json = nlohmann::json;

void explanations_section(HtmlReport& report, const json& audit) {
  report.heading(2, "Explanations (attribution maps)", "explanations");
  report.paragraph(
      "A saliency map shows how strongly each pixel sways the model's score for a class (the gradient "
      "of the score with respect to the image). Maps of robust models tend to follow the object's "
      "shape; maps of standard models look noisy. The same test images are shown for every model.");
  const auto models = ran_on(report, audit, "explain");
  if (models.empty()) return;
  model_figures(report, audit, "explain", "heatmaps.png",
                (*models.front().record)["options"].value("method", "saliency") + " maps (image | map | overlay)");
}

}  // namespace

Analysis explain_analysis() {
  Analysis analysis;
  analysis.name = "explain";
  analysis.result_file = "explain.json";
  analysis.add_command = add_explain_command;
  analysis.report_section = explanations_section;
  return analysis;
}

}  // namespace robustlens::cli
