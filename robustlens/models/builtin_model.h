// A built-in architecture behind the Model interface, and its file format: a
// PyTorch archive (zip) holding the parameters plus one JSON attribute,
// "robustlens_metadata", with architecture, input shape, class names and the
// training recipe. Python can read it with torch.jit.load.
#pragma once

#include "robustlens/core/model.h"
#include "robustlens/models/architectures.h"

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

namespace robustlens {

inline constexpr const char* kBuiltinMetadataKey = "robustlens_metadata";

class BuiltinModel : public Model {
 public:
  /// Fresh parameters from LibTorch's layer initialisers, which draw from the global generator only: build it
  /// inside with_global_seed (core/random.h) to fix them.
  BuiltinModel(const ArchitectureSpec& spec, std::vector<std::string> class_names,
               nlohmann::json training = nlohmann::json::object());

  at::Tensor forward(const at::Tensor& images) override;
  at::Tensor latent(const at::Tensor& images) override;
  bool has_latent() const override { return true; }
  std::pair<at::Tensor, at::Tensor> forward_with_latent(const at::Tensor& images) override;
  void to(const at::Device& device) override;
  at::Device device() const override { return device_; }
  void set_training(bool training) override { net_->train(training); }
  std::vector<at::Tensor> parameters() override { return net_->parameters(); }

  ClassifierNetImpl& net() { return *net_; }
  const ArchitectureSpec& spec() const { return spec_; }

  /// The same network with every activation replaced by softplus(beta) and the
  /// same parameters and buffers (activations have none).
  std::unique_ptr<Model> softplus_surrogate(double beta) const override;

  /// Metadata + parameters into an archive (also used inside training checkpoints).
  void save_to(torch::serialize::OutputArchive& archive) const;
  /// Errors naming `path` when the parameters do not fit the spec or no longer match their recorded checksum.
  void load_parameters_from(torch::serialize::InputArchive& archive, const std::string& path);
  /// Writes the model file atomically.
  void save(const std::string& path) const;

 private:
  ArchitectureSpec spec_;
  std::shared_ptr<ClassifierNetImpl> net_;
  at::Device device_{at::kCPU};
};

/// Reads a robustlens model file (load_model() dispatches here).
std::unique_ptr<BuiltinModel> load_builtin_model(const std::string& path, const at::Device& device);
/// What the metadata record of a robustlens model file says.
struct BuiltinMetadata {
  ArchitectureSpec spec;  ///< resolved and checked
  std::vector<std::string> class_names;
  nlohmann::json training;
};
/// Parses and checks a metadata record (JSON text) of model file `path`: format and version, the architecture,
/// the class names. Anything malformed is an Error naming the file and the key.
BuiltinMetadata parse_builtin_metadata(const std::string& text, const std::string& path);
/// The metadata record of an archive written by BuiltinModel::save_to.
BuiltinMetadata read_builtin_metadata(torch::serialize::InputArchive& archive, const std::string& path);

}  // namespace robustlens
