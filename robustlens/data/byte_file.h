// Whole-file byte I/O shared by the dataset readers and writers.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace robustlens {

/// The file's bytes, gunzipped when it is gzip-compressed (detected from the
/// content, not the name). A truncated gzip stream is an error.
std::vector<std::uint8_t> read_maybe_gzipped_file(const std::string& path);

/// Writes atomically; gzip-compressed when `compress`.
void write_byte_file(const std::string& path, const std::vector<std::uint8_t>& bytes, bool compress);

/// Float pixels in [0,1] → contiguous uint8 (rounded), same shape.
at::Tensor to_bytes(const at::Tensor& images);

}  // namespace robustlens
