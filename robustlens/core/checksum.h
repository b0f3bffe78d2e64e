// Checksums that tell a changed or corrupted input from the one recorded:
// 64-bit FNV-1a over bytes, over tensors (shape, dtype and values) and over a
// module's parameters and buffers. Model and generative files store the
// checksum of their parameters and refuse to load when it no longer matches
// (the PyTorch archive itself does not check its records); checkpoints and
// audit steps compare fingerprints of what they were made from.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace torch {
namespace nn {
class Module;
}
namespace serialize {
class InputArchive;
class OutputArchive;
}  // namespace serialize
}  // namespace torch

namespace robustlens {

/// 64-bit FNV-1a, fed incrementally.
class Fnv1a {
 public:
  void add(const void* data, std::size_t bytes);
  /// The tensor's dtype, shape and values (read on the CPU, contiguous).
  void add(const at::Tensor& tensor);
  void add(const std::string& text);
  std::uint64_t value() const { return hash_; }
  /// 16 hex digits.
  std::string hex() const;

 private:
  std::uint64_t hash_ = 1469598103934665603ull;
};

/// Over every named parameter and buffer of `module` (names included), in its registration order.
std::string module_checksum(const torch::nn::Module& module);

/// Records module_checksum(module) in a model or generative archive.
void write_parameter_checksum(torch::serialize::OutputArchive& archive, const torch::nn::Module& module);

/// Errors, naming `path`, when the archive records a parameter checksum that `module` (just loaded from it)
/// does not match: the file was corrupted after it was written. Files written before checksums pass.
void check_parameter_checksum(torch::serialize::InputArchive& archive, const torch::nn::Module& module,
                              const std::string& path);

/// Over a dataset's images and labels: equal only for the same data in the same order.
std::string data_checksum(const at::Tensor& images, const at::Tensor& labels);

}  // namespace robustlens
