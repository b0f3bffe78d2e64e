#include "robustlens/models/load_model.h"

#include "robustlens/core/archive_integrity.h"
#include "robustlens/core/error.h"
#include "robustlens/models/builtin_model.h"
#include "robustlens/models/torchscript_model.h"

#include <torch/script.h>

#include <filesystem>
#include <fstream>

namespace robustlens {

std::unique_ptr<Model> load_model(const std::string& path, const at::Device& device,
                                  const std::vector<std::int64_t>& input_shape) {
  RL_CHECK(std::filesystem::is_regular_file(path), "model file '", path, "' does not exist");
  {
    // Both kinds are zip archives (PyTorch's serialisation); check the magic first
    // so that a wrong file gets a clear message rather than a zip-reader trace.
    std::ifstream in(path, std::ios::binary);
    char magic[4] = {};
    in.read(magic, 4);
    RL_CHECK(in.gcount() == 4 && magic[0] == 'P' && magic[1] == 'K', "model file '", path,
             "' is not a robustlens model or TorchScript file (expected a zip archive, "
             "as written by 'robustlens train' or torch.jit.save)");
  }
  check_archive_records(path, "model file '" + path + "'");
  torch::jit::Module module;
  try {
    module = torch::jit::load(path, device);
  } catch (const std::exception& error) {  // c10::Error, and TorchScript parser errors (torch::jit::ErrorReport)
    RL_CHECK(false, "model file '", path,
             "' cannot be read (truncated or not a TorchScript/robustlens file): ", first_line(error.what()));
  }
  std::unique_ptr<Model> model;
  TorchScriptModel* scripted = nullptr;
  if (module.hasattr(kBuiltinMetadataKey)) {
    model = load_builtin_model(path, device);
  } else {
    auto scripted_model = std::make_unique<TorchScriptModel>(std::move(module), path, device);
    scripted = scripted_model.get();
    model = std::move(scripted_model);
  }
  // A NaN or infinite weight makes every number computed with the model meaningless, yet argmax still
  // returns a class: refuse it here rather than report an accuracy.
  const std::vector<at::Tensor> parameters = model->parameters();
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    const std::int64_t bad = at::isfinite(parameters[i].detach()).logical_not().sum().item<std::int64_t>();
    RL_CHECK(bad == 0, "model file '", path, "' holds ", bad, " NaN or infinite values in parameter ", i, " (shape ",
             parameters[i].sizes(), "); the model cannot be measured");
  }
  if (scripted != nullptr && scripted->info().input_shape.empty() && !input_shape.empty()) {
    scripted->bind_input_shape(input_shape);
  }
  return model;
}

}  // namespace robustlens
