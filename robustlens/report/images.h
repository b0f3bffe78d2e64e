// Pictures for reports: colour maps of heat maps and signed maps, and grids of
// images (written as PNG by data/image_folder.h's write_png).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace robustlens {

/// H×W non-negative values → 3×H×W RGB, black → red → yellow → white, scaled to the map's maximum.
at::Tensor heat_colormap(const at::Tensor& map);
/// H×W signed values → 3×H×W RGB, blue (negative) → white (0) → red, scaled to the largest magnitude.
at::Tensor diverging_colormap(const at::Tensor& map);
/// C×H×W image (C = 1 or 3) → 3×H×W.
at::Tensor to_rgb(const at::Tensor& image);

/// Tiles equally sized 3×H×W images row by row with a 1-pixel white gap,
/// each pixel repeated `scale` times in both directions.
at::Tensor image_grid(const std::vector<at::Tensor>& images, std::int64_t columns, std::int64_t scale = 1);

}  // namespace robustlens
