// The Model contract: a float32 batch N×C×H×W with pixels in [0,1] goes in,
// logits N×K come out; normalisation lives inside the model. Two kinds sit
// behind this interface: TorchScript files saved from PyTorch
// (models/torchscript_model.h) and the built-in architectures trained here
// (models/builtin_model.h). Analyses only ever see a Model&.
#pragma once

#include "robustlens/core/progress.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace robustlens {

/// What a model file records about itself. Fields a TorchScript file does not
/// carry stay empty (input_shape, class_names) until the caller supplies them.
struct ModelInfo {
  std::string kind;                       ///< "builtin" or "torchscript"
  std::string path;                       ///< file it was loaded from ("" if built in memory)
  std::vector<std::int64_t> input_shape;  ///< C, H, W
  std::int64_t num_classes = 0;
  std::vector<std::string> class_names;
  nlohmann::json architecture;  ///< builtin: the ArchitectureSpec
  nlohmann::json training;      ///< builtin: the recipe it was trained with
  nlohmann::json to_json() const;
};

class Model {
 public:
  virtual ~Model() = default;

  /// Logits N×K for images N×C×H×W in [0,1], on the model's device. Differentiable:
  /// gradients flow to the input (and with create_graph, second derivatives).
  virtual at::Tensor forward(const at::Tensor& images) = 0;
  /// Penultimate representation N×P; only when has_latent().
  virtual at::Tensor latent(const at::Tensor& images) = 0;
  virtual bool has_latent() const = 0;
  /// Logits and latent of the same images, {N×K, N×P}; only when has_latent().
  /// This default runs forward() and latent(); built-in models share one pass.
  virtual std::pair<at::Tensor, at::Tensor> forward_with_latent(const at::Tensor& images) {
    return {forward(images), latent(images)};
  }

  virtual void to(const at::Device& device) = 0;
  virtual at::Device device() const = 0;
  /// Training mode (batch norm statistics); analyses run in evaluation mode.
  virtual void set_training(bool training) = 0;
  virtual std::vector<at::Tensor> parameters() = 0;
  /// The same network with every activation replaced by softplus(beta) and the same parameters: a smooth
  /// surrogate for attacks that need second derivatives of a ReLU network. Only built-in models can make one;
  /// this default is an Error naming the model.
  virtual std::unique_ptr<Model> softplus_surrogate(double beta) const;

  const ModelInfo& info() const { return info_; }
  ModelInfo& info() { return info_; }

 protected:
  ModelInfo info_;
};

/// Checks that `logits` is the N×K floating tensor a classifier must return for
/// a batch of N; `who` names the model in the message.
void check_logits(const at::Tensor& logits, std::int64_t batch, const std::string& who);

/// Checks that `images` is N×C×H×W float matching `input_shape` (when known).
void check_images(const at::Tensor& images, const std::vector<std::int64_t>& input_shape, const std::string& who);

/// Logits of a whole tensor of images, evaluated in chunks of batch_size
/// without autograd; returned on the CPU as float32. Reports progress per chunk.
at::Tensor batched_logits(Model& model, const at::Tensor& images, std::int64_t batch_size,
                          const ProgressCallback& progress = {});

}  // namespace robustlens
