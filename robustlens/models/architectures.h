// Built-in classifier architectures: an MLP, a LeNet-style CNN and a small
// CIFAR-style ResNet. Each splits into a backbone, features() = h, an optional
// bottleneck, latent() = z (the representation the latent analyses read), and
// a linear output layer, logits = head(z). The bottleneck variants of the
// latent-binary-encoding paper (Sbailò & Ghiringhelli):
//   nopen      no bottleneck, z = h (the plain classifier)
//   binenc     z = W_H h + b_H with P units, trained with the penalty gamma·mean z²
//   linpen     the same linear bottleneck, no penalty
//   nonlinpen  z = SiLU(W_H h + b_H), no penalty
//   wide       binenc with a wide bottleneck (512 units by default)
#pragma once

#include "robustlens/core/options.h"

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace robustlens {

/// Everything needed to rebuild an architecture; stored in model files.
struct ArchitectureSpec {
  /// "mlp", "lenet" or "resnet".
  std::string name = "lenet";
  /// C, H, W of the input images.
  std::vector<std::int64_t> input_shape{1, 28, 28};
  std::int64_t num_classes = 10;
  /// 0 = the architecture's default: mlp hidden units 256; lenet channels of the
  /// first convolution 16 (the second has twice as many); resnet base channels 16.
  std::int64_t width = 0;
  /// 0 = default: mlp hidden layers 2; resnet basic blocks per stage 1 (ResNet-8;
  /// 3 gives ResNet-20). LeNet has a fixed depth.
  std::int64_t depth = 0;
  /// "relu" or "softplus" (smooth; for finite-difference checks and second-order attacks).
  std::string activation = "relu";
  double softplus_beta = 10.0;
  /// Bottleneck variant: "nopen", "binenc", "linpen", "nonlinpen" or "wide".
  std::string head = "nopen";
  /// Bottleneck units P; 0 = default: ceil(log2 K) + 2 (the smallest hypercube with
  /// K vertices plus a margin of 2; 6 for 10 classes), 512 for wide. Unused by nopen.
  std::int64_t bottleneck = 0;

  RL_SETTER(name)
  RL_SETTER(input_shape)
  RL_SETTER(num_classes)
  RL_SETTER(width)
  RL_SETTER(depth)
  RL_SETTER(activation)
  RL_SETTER(softplus_beta)
  RL_SETTER(head)
  RL_SETTER(bottleneck)

  /// True for the variants trained with the latent penalty (binenc, wide).
  bool penalised() const { return head == "binenc" || head == "wide"; }

  /// Defaults filled in (width, depth), checked; what gets recorded.
  ArchitectureSpec resolved() const;
  nlohmann::json to_json() const;
  /// `where` names the record in error messages (a missing key or a wrong type is an Error).
  static ArchitectureSpec from_json(const nlohmann::json& json, const std::string& where = "architecture record");
};

/// Base of the built-in networks: logits = head(latent(x)), latent = the
/// bottleneck of features(x), or features(x) itself for nopen.
class ClassifierNetImpl : public torch::nn::Module {
 public:
  virtual at::Tensor features(const at::Tensor& images) = 0;
  at::Tensor latent(const at::Tensor& images);
  at::Tensor forward(const at::Tensor& images) { return head->forward(latent(images)); }
  torch::nn::Linear head{nullptr};

 protected:
  /// Registers the bottleneck (if the spec has one) and the output layer on
  /// top of `features` backbone features.
  void build_head(std::int64_t features, const ArchitectureSpec& spec);

 private:
  torch::nn::Linear bottleneck_{nullptr};
  bool silu_ = false;
};

std::shared_ptr<ClassifierNetImpl> build_architecture(const ArchitectureSpec& spec);

}  // namespace robustlens
