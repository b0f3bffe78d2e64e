// robustlens info: what a model file or a dataset holds, as JSON on stdout.
#include "commands.h"
#include "common.h"

#include "robustlens/core/error.h"
#include "robustlens/core/runtime.h"

#include <iostream>
#include <memory>

namespace robustlens::cli {
namespace {

void run_info(const CommonOptions& common, bool has_data) {
  RL_CHECK(!common.model.empty() || has_data, "info: give --model FILE and/or --data SPEC");
  nlohmann::json info = {{"versions", library_versions()}};
  if (!common.model.empty()) {
    auto model = load_model(common.model, at::Device(at::kCPU));
    info["model"] = model->info().to_json();
    info["model"]["has_latent"] = model->has_latent();
    std::int64_t parameters = 0;
    for (const auto& p : model->parameters()) parameters += p.numel();
    info["model"]["parameters"] = parameters;
  }
  if (has_data) info["data"] = load_data(common, common.split).summary();
  std::cout << info.dump(2) << std::endl;
}

}  // namespace

void add_info_command(CLI::App& app) {
  auto common = std::make_shared<CommonOptions>();
  CLI::App* sub = app.add_subcommand("info", "Show what a model file or a dataset holds");
  add_common_options(*sub, *common, kData | kSplit);
  sub->add_option("--model", common->model, "Model file (robustlens or TorchScript)");
  sub->callback([common, sub] { run_info(*common, sub->get_option("--data")->count() > 0); });
}

}  // namespace robustlens::cli
