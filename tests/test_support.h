// Shared fixtures of the test suite: temporary folders, small synthetic data,
// TorchScript models with closed-form outputs, and running the CLI.
#pragma once

#include "robustlens/core/model.h"
#include "robustlens/data/dataset.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace robustlens::testing {

/// A fresh folder under the system temp dir, removed on destruction.
class TemporaryDirectory {
 public:
  TemporaryDirectory();
  ~TemporaryDirectory();
  TemporaryDirectory(const TemporaryDirectory&) = delete;
  TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;
  std::string path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// Images whose class is decided by a random linear rule fixed by shape and class
/// count (so sets with different seeds share it; learnable far above chance),
/// pixels quantised to k/255 so that they survive the byte formats exactly.
Dataset linear_rule_dataset(std::int64_t size, std::vector<std::int64_t> shape, std::int64_t classes,
                            std::uint64_t seed);

/// Base of the closed-form test models: a fixed function on the CPU, without
/// parameters or latent representation; `classes` named "0", "1", ...
class FixedFunctionModel : public Model {
 public:
  explicit FixedFunctionModel(std::int64_t classes);
  at::Tensor latent(const at::Tensor& images) override { return images.flatten(1); }
  bool has_latent() const override { return false; }
  void to(const at::Device&) override {}
  at::Device device() const override { return at::kCPU; }
  void set_training(bool) override {}
  std::vector<at::Tensor> parameters() override { return {}; }
};

/// logits = flatten(x) · Wᵀ + b computed in double precision (W: K×D): a model
/// whose input gradients and decision boundaries have closed forms.
class LinearModel : public FixedFunctionModel {
 public:
  LinearModel(at::Tensor weight, at::Tensor bias);
  at::Tensor forward(const at::Tensor& images) override;

 protected:
  at::Tensor weight_, bias_;
};

/// The same linear model with a third of the true slope in its input gradient: the forward pass is
/// flatten(x)·Wᵀ + b, the backward pass sees x/3 (the rest detached). DeepFool's linearised step then
/// lands three times too far; the direction is still right (gradient masking with a known answer).
class MaskedLinearModel : public LinearModel {
 public:
  using LinearModel::LinearModel;
  at::Tensor forward(const at::Tensor& images) override;
};

/// A GoogleTest failure unless `action` throws robustlens::Error with `fragment` in its message.
void expect_error(const std::function<void()>& action, const std::string& fragment);

/// Writes a dataset as an idx folder (train- and t10k- files, gzip).
void write_idx_dataset(const std::string& directory, const Dataset& train, const Dataset& test);

/// TorchScript file computing logits = flatten(x) · Wᵀ + b (W: K×D), optionally with
/// latent(x) = flatten(x).
void save_linear_torchscript(const std::string& path, const at::Tensor& weight, const at::Tensor& bias,
                             bool with_latent = false);
/// TorchScript whose forward body is given (argument x), for malformed-model tests.
void save_torchscript(const std::string& path, const std::string& forward_body);

struct CommandResult {
  int exit_code;
  std::string output;  ///< stdout and stderr together
};
/// Runs the robustlens CLI with the given arguments (shell-quoted by the caller).
CommandResult run_cli(const std::string& arguments);
/// Runs a shell command line; output: what it writes to stdout.
CommandResult run_shell(const std::string& command);

/// True when `fragment` occurs in `text` (CLI output, messages).
inline bool contains(const std::string& text, const std::string& fragment) {
  return text.find(fragment) != std::string::npos;
}

/// Fixture of the CLI tests: an idx dataset of linear_rule_dataset images (3
/// classes, 1×6×6) in a temporary folder, and a temporary output folder.
class CliOnIdxData : public ::testing::Test {
 protected:
  explicit CliOnIdxData(std::int64_t train_size = 240, std::int64_t test_size = 60)
      : train_size_(train_size), test_size_(test_size) {}
  void SetUp() override {
    write_idx_dataset(data_.path(), linear_rule_dataset(train_size_, {1, 6, 6}, 3, 11),
                      linear_rule_dataset(test_size_, {1, 6, 6}, 3, 12));
  }
  std::string data_arg() const { return " --data idx:" + data_.path(); }
  TemporaryDirectory data_, out_;

 private:
  std::int64_t train_size_, test_size_;
};

/// GoogleTest failures unless an attack.json's minimal perturbations are consistent with its robust
/// accuracy: at every eps, the share of images within eps is at least 1 − robust accuracy − 0.02, and the
/// ensemble's robust accuracy is at most the attack's own and within 0.02 below 1 − that share.
void expect_minimum_consistent_with_robust_accuracy(const nlohmann::json& attack_record);

/// Bytes of a file, and writing bytes back (to make truncated or corrupt copies).
std::string read_bytes(const std::string& path);
/// The id of a process that has exited (a forked child, reaped): what a killed writer's temporaries name.
int exited_process_id();
void write_bytes(const std::string& path, const std::string& bytes);
/// Writes the PyTorch archive `from` again as `to`, each record passed through `edit` (its name relative to the
/// archive's top folder, and its bytes); the new archive's CRC-32s match the edited records, so what it tests
/// gets past the CRC check to the readers behind it. Returns how many records `edit` changed.
int rewrite_archive(const std::string& from, const std::string& to,
                    const std::function<void(const std::string& name, std::string& record)>& edit);

}  // namespace robustlens::testing
