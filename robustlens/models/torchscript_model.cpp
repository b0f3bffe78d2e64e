#include "robustlens/models/torchscript_model.h"

#include "robustlens/core/error.h"

#include <torch/script.h>

namespace robustlens {
namespace {

/// The line that says what went wrong: an exception raised inside the script (torch::jit::JITException,
/// not a c10::Error) comes after a TorchScript traceback, as its last line; LibTorch's own errors put
/// their message first and a C++ backtrace after it.
std::string script_error_message(const std::string& what) {
  if (what.find("Traceback of TorchScript") == std::string::npos) return first_line(what);
  const auto end = what.find_last_not_of(" \n");
  if (end == std::string::npos) return what;
  const auto start = what.rfind('\n', end);
  return what.substr(start == std::string::npos ? 0 : start + 1,
                     end - (start == std::string::npos ? 0 : start + 1) + 1);
}

}  // namespace

TorchScriptModel::TorchScriptModel(torch::jit::Module module, const std::string& path, const at::Device& device)
    : module_(std::move(module)), device_(device) {
  has_latent_ = module_.find_method("latent").has_value();
  info_.kind = "torchscript";
  info_.path = path;
  module_.eval();
  module_.to(device_);
  // Optional metadata a user may attach in Python (python/export_torchscript.py does).
  if (module_.hasattr("robustlens_input_shape")) {
    for (const c10::IValue& v : module_.attr("robustlens_input_shape").toListRef())
      info_.input_shape.push_back(v.toInt());
  }
  if (module_.hasattr("robustlens_class_names")) {
    for (const c10::IValue& name : module_.attr("robustlens_class_names").toListRef()) {
      info_.class_names.push_back(name.toStringRef());
    }
  }
  if (!info_.input_shape.empty()) bind_input_shape(info_.input_shape);
}

at::Tensor TorchScriptModel::call(const std::string& method, const at::Tensor& images) {
  check_images(images, info_.input_shape, "TorchScript model '" + info_.path + "'");
  c10::IValue output;
  try {
    output = module_.get_method(method)({images});
  } catch (const std::exception& error) {  // c10::Error and exceptions the script raises
    RL_CHECK(false, "TorchScript model '", info_.path, "' failed in ", method, "() on a batch of shape ",
             images.sizes(), ": ", script_error_message(error.what()));
  }
  RL_CHECK(output.isTensor(), "TorchScript model '", info_.path, "': ", method, "() must return a Tensor, got ",
           output.tagKind());
  return output.toTensor();
}

at::Tensor TorchScriptModel::forward(const at::Tensor& images) {
  at::Tensor logits = call("forward", images);
  check_logits(logits, images.size(0), "TorchScript model '" + info_.path + "'");
  return logits;
}

at::Tensor TorchScriptModel::latent(const at::Tensor& images) {
  RL_CHECK(has_latent_, "TorchScript model '", info_.path,
           "' has no method named 'latent' (needed for latent analyses)");
  at::Tensor z = call("latent", images);
  RL_CHECK(z.dim() == 2 && z.size(0) == images.size(0), "TorchScript model '", info_.path,
           "': latent() must return N×P for a batch of N=", images.size(0), ", got ", z.sizes());
  return z;
}

void TorchScriptModel::to(const at::Device& device) {
  module_.to(device);
  device_ = device;
}

std::vector<at::Tensor> TorchScriptModel::parameters() {
  std::vector<at::Tensor> result;
  for (const auto& p : module_.parameters()) result.push_back(p);
  return result;
}

void TorchScriptModel::bind_input_shape(const std::vector<std::int64_t>& input_shape) {
  RL_CHECK(input_shape.size() == 3, "input shape must be C,H,W, got ", input_shape.size(), " numbers");
  info_.input_shape = input_shape;
  std::vector<std::int64_t> batch_shape{2};
  batch_shape.insert(batch_shape.end(), input_shape.begin(), input_shape.end());
  at::NoGradGuard no_grad;
  const at::Tensor logits = forward(at::zeros(batch_shape, at::TensorOptions().dtype(at::kFloat).device(device_)));
  info_.num_classes = logits.size(1);
}

}  // namespace robustlens
