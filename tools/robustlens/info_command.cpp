// robustlens info: what a model file (classifier, VAE or denoiser) or a dataset
// holds, as JSON on stdout.
#include "commands.h"
#include "common.h"

#include "robustlens/core/console.h"
#include "robustlens/core/error.h"
#include "robustlens/core/runtime.h"
#include "robustlens/generative/denoiser.h"
#include "robustlens/generative/generative_file.h"
#include "robustlens/generative/vae.h"
#include "robustlens/models/load_model.h"

#include <memory>

namespace robustlens::cli {
namespace {

void run_info(const CommonOptions& common, bool has_data) {
  RL_CHECK(!common.model.empty() || has_data, "info: give --model FILE and/or --data SPEC");
  nlohmann::json info = {{"versions", library_versions()}};
  const nlohmann::json generative =
      common.model.empty() ? nlohmann::json(nullptr) : read_generative_metadata(common.model);
  if (!generative.is_null()) {
    // A VAE or denoiser (train-vae, train-denoiser): its record, and its size.
    std::int64_t parameters = 0;
    if (generative.at("format") == kVaeFormat) {
      for (const auto& p : load_vae(common.model, at::kCPU)->parameters()) parameters += p.numel();
    } else {
      for (const auto& p : load_denoiser(common.model, at::kCPU)->parameters()) parameters += p.numel();
    }
    info["model"] = generative;
    info["model"]["path"] = common.model;
    info["model"]["parameters"] = parameters;
  } else if (!common.model.empty()) {
    auto model = load_model(common.model, at::Device(at::kCPU));
    info["model"] = model->info().to_json();
    info["model"]["has_latent"] = model->has_latent();
    std::int64_t parameters = 0;
    for (const auto& p : model->parameters()) parameters += p.numel();
    info["model"]["parameters"] = parameters;
  }
  if (has_data) info["data"] = load_data(common, common.split).summary();
  console::print("%s\n", info.dump(2).c_str());
}

}  // namespace

void add_info_command(CLI::App& app) {
  auto common = std::make_shared<CommonOptions>();
  CLI::App* sub = app.add_subcommand("info", "Show what a model file or a dataset holds");
  add_common_options(*sub, *common, kData | kSplit);
  sub->add_option("--model", common->model, "Model file (robustlens classifier, VAE or denoiser, or TorchScript)");
  sub->callback([common, sub] { run_info(*common, sub->get_option("--data")->count() > 0); });
}

}  // namespace robustlens::cli
