// Image folders: one sub-folder per class (sorted names = class order), PNG or
// JPEG files inside, converted to a declared C×H×W (1 = grey, 3 = RGB; resized
// with stb's filter when the size differs), and PNG files written from tensors.
#pragma once

#include "robustlens/data/dataset.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace robustlens {

Dataset read_image_folder(const std::string& directory, const std::vector<std::int64_t>& image_shape);

/// The width and height that an image file's bytes declare, after the checks that keep stb's decoder safe (the
/// tables of a JPEG, the chunk lengths of a PNG); an Error names `path` when the bytes are not an image
/// robustlens reads.
std::pair<int, int> image_file_size(const std::string& bytes, const std::string& path);
/// An image file's bytes decoded to float32 C×H×W in [0,1] (C 1 grey or 3 RGB), resized to height×width when
/// its size differs; at most kMaxDecodedPixels (core/limits.h) are decoded.
at::Tensor decode_image(const std::string& bytes, const std::string& path, std::int64_t channels, std::int64_t height,
                        std::int64_t width);

/// Writes a C×H×W image (C = 1 or 3) with values in [0,1] as PNG, atomically.
void write_png(const std::string& path, const at::Tensor& image);

/// Writes each image as DIR/<class name>/<index>.png (for tests and exports).
void write_image_folder(const std::string& directory, const Dataset& dataset);

}  // namespace robustlens
