// MNIST / Fashion-MNIST idx files, plain or gzip-compressed (detected from the
// content). Writers exist so that tests round-trip and users can export subsets.
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace robustlens {

/// idx3 unsigned-byte images → float32 N×1×H×W in [0,1].
at::Tensor read_idx_images(const std::string& path);
/// idx1 unsigned-byte labels → int64 N.
at::Tensor read_idx_labels(const std::string& path);

/// images float32 N×1×H×W in [0,1] (rounded to bytes); gzip when `compress`.
void write_idx_images(const std::string& path, const at::Tensor& images, bool compress);
void write_idx_labels(const std::string& path, const at::Tensor& labels, bool compress);

}  // namespace robustlens
