// A TorchScript module saved from PyTorch (torch.jit.save). It may expose its
// penultimate representation through a method named `latent`.
#pragma once

#include "robustlens/core/model.h"

#include <torch/csrc/jit/api/module.h>

namespace robustlens {

class TorchScriptModel : public Model {
 public:
  TorchScriptModel(torch::jit::Module module, const std::string& path, const at::Device& device);

  at::Tensor forward(const at::Tensor& images) override;
  at::Tensor latent(const at::Tensor& images) override;
  bool has_latent() const override { return has_latent_; }
  void to(const at::Device& device) override;
  at::Device device() const override { return device_; }
  void set_training(bool training) override { module_.train(training); }
  std::vector<at::Tensor> parameters() override;

  /// Records the input shape (TorchScript files do not carry it) and learns K
  /// from one forward pass of zeros, checking the output is N×K logits.
  void bind_input_shape(const std::vector<std::int64_t>& input_shape);

 private:
  at::Tensor call(const std::string& method, const at::Tensor& images);

  torch::jit::Module module_;
  at::Device device_;
  bool has_latent_;
};

}  // namespace robustlens
