// Image folders: one sub-folder per class (sorted names = class order), PNG or
// JPEG files inside, converted to a declared C×H×W (1 = grey, 3 = RGB; resized
// with stb's filter when the size differs).
#pragma once

#include "robustlens/data/dataset.h"

#include <cstdint>
#include <string>
#include <vector>

namespace robustlens {

Dataset read_image_folder(const std::string& directory, const std::vector<std::int64_t>& image_shape);

/// Writes each image as DIR/<class name>/<index>.png (for tests and exports).
void write_image_folder(const std::string& directory, const Dataset& dataset);

}  // namespace robustlens
