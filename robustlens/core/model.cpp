#include "robustlens/core/model.h"

#include "robustlens/core/archive_integrity.h"
#include "robustlens/core/error.h"
#include "robustlens/core/torchscript_model.h"
#include "robustlens/models/builtin_model.h"

#include <torch/script.h>
#include <torch/serialize/input-archive.h>

#include <filesystem>
#include <fstream>

namespace robustlens {

nlohmann::json ModelInfo::to_json() const {
  return {{"kind", kind},
          {"path", path},
          {"input_shape", input_shape},
          {"num_classes", num_classes},
          {"class_names", class_names},
          {"architecture", architecture},
          {"training", training}};
}

std::unique_ptr<Model> load_model(const std::string& path, const at::Device& device) {
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
    RL_CHECK(false, "model file '", path, "' cannot be read (truncated or not a TorchScript/robustlens file): ",
             first_line(error.what()));
  }
  std::unique_ptr<Model> model;
  if (module.hasattr(kBuiltinMetadataKey)) {
    model = load_builtin_model(path, device);
  } else {
    model = std::make_unique<TorchScriptModel>(std::move(module), path, device);
  }
  // A NaN or infinite weight makes every number computed with the model meaningless, yet argmax still
  // returns a class: refuse it here rather than report an accuracy.
  const std::vector<at::Tensor> parameters = model->parameters();
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    const std::int64_t bad = at::isfinite(parameters[i].detach()).logical_not().sum().item<std::int64_t>();
    RL_CHECK(bad == 0, "model file '", path, "' holds ", bad, " NaN or infinite values in parameter ", i,
             " (shape ", parameters[i].sizes(), "); the model cannot be measured");
  }
  return model;
}

void check_logits(const at::Tensor& logits, std::int64_t batch, const std::string& who) {
  RL_CHECK(logits.dim() == 2 && logits.size(0) == batch, who, " must return N×K logits for a batch of N=",
           batch, ", got a tensor of shape ", logits.sizes());
  RL_CHECK(at::isFloatingType(logits.scalar_type()), who, " must return floating-point logits, got ",
           logits.scalar_type());
}

void check_images(const at::Tensor& images, const std::vector<std::int64_t>& input_shape,
                  const std::string& who) {
  RL_CHECK(images.dim() == 4, who, " takes images N×C×H×W, got a tensor of shape ", images.sizes());
  if (input_shape.size() == 3) {
    RL_CHECK(images.size(1) == input_shape[0] && images.size(2) == input_shape[1] &&
                 images.size(3) == input_shape[2],
             who, " takes images of shape C×H×W = ", input_shape[0], "×", input_shape[1], "×",
             input_shape[2], ", got ", images.size(1), "×", images.size(2), "×", images.size(3));
  }
}

at::Tensor batched_logits(Model& model, const at::Tensor& images, std::int64_t batch_size,
                          const ProgressCallback& progress) {
  RL_CHECK(batch_size > 0, "--batch-size must be > 0, got ", batch_size);
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> chunks;
  for (std::int64_t start = 0; start < images.size(0); start += batch_size) {
    const std::int64_t end = std::min(start + batch_size, images.size(0));
    chunks.push_back(model.forward(images.slice(0, start, end).to(model.device())).to(at::kCPU, at::kFloat));
    report(progress, {"evaluate", end, images.size(0), ""});
  }
  RL_CHECK(!chunks.empty(), "no images to evaluate");
  at::Tensor logits = at::cat(chunks);
  const std::int64_t bad = at::isfinite(logits).logical_not().sum().item<std::int64_t>();
  RL_CHECK(bad == 0, "model '", model.info().path, "' returned ", bad, " NaN or infinite logits on ", images.size(0),
           " images; its predictions would be meaningless");
  return logits;
}

}  // namespace robustlens
