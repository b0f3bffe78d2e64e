// CIFAR-10 binary batches: records of 1 label byte + 3072 pixel bytes
// (R, G, B planes of 32×32). The folder holds data_batch_1..5.bin and test_batch.bin.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

namespace robustlens {

/// One batch file → (images float32 N×3×32×32 in [0,1], labels int64 N).
std::pair<at::Tensor, at::Tensor> read_cifar10_batch(const std::string& path);
void write_cifar10_batch(const std::string& path, const at::Tensor& images, const at::Tensor& labels);

/// The ten CIFAR-10 class names, or those of batches.meta.txt when present in `directory`.
std::vector<std::string> cifar10_class_names(const std::string& directory);

}  // namespace robustlens
