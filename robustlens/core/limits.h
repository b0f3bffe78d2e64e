// The largest sizes robustlens accepts from files and options: far above any model or data set it is used
// with, low enough that no input can make it allocate without limit (docs/reliability.md).
#pragma once

#include "robustlens/core/error.h"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace robustlens {

inline constexpr std::int64_t kMaxImageSide = 4096;
inline constexpr std::int64_t kMaxChannels = 64;
inline constexpr std::int64_t kMaxClasses = 100000;
inline constexpr std::int64_t kMaxWidth = 16384;  ///< units or channels of one layer
inline constexpr std::int64_t kMaxDepth = 64;
inline constexpr std::int64_t kMaxLayerWeights = std::int64_t{1} << 30;  ///< one dense layer (4 GiB of floats)
/// An image file of an image folder, and the pixels it may decode to (4096×4096, more than a 12-megapixel photo).
inline constexpr std::size_t kMaxImageFileBytes = std::size_t{256} << 20;
inline constexpr std::int64_t kMaxDecodedPixels = std::int64_t{1} << 24;

/// Checks an input shape C,H,W: three numbers, 1 <= C <= kMaxChannels, 1 <= H, W <= kMaxImageSide.
/// `what` names the shape's owner in the message ("architecture", "VAE").
inline void check_input_shape(const std::vector<std::int64_t>& shape, const std::string& what) {
  RL_CHECK(shape.size() == 3 && shape[0] >= 1 && shape[0] <= kMaxChannels && shape[1] >= 1 &&
               shape[1] <= kMaxImageSide && shape[2] >= 1 && shape[2] <= kMaxImageSide,
           what, ": input shape must be C,H,W with 1 <= C <= ", kMaxChannels, " and 1 <= H, W <= ", kMaxImageSide,
           ", got ", nlohmann::json(shape).dump());
}

/// Checks that a dense layer of `inputs` × `units` weights stays within kMaxLayerWeights (both within limits,
/// so that the product cannot overflow).
inline void check_dense_layer(std::int64_t inputs, std::int64_t units, const std::string& what) {
  RL_CHECK(inputs <= kMaxChannels * kMaxImageSide * kMaxImageSide && units <= kMaxWidth &&
               inputs * units <= kMaxLayerWeights,
           what, ": a dense layer of ", inputs, " inputs and ", units, " units has more than ", kMaxLayerWeights,
           " weights");
}

}  // namespace robustlens
