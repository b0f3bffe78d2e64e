// The "distractor" data of the manifold analyses (Srinivas et al. 2023, after
// the MNIST-with-a-distractor data of tml-tuebingen/pags): every C×H×W item
// becomes a C×2H×W image with the item in a random half (top or bottom) and a
// fixed glyph, the same for every image, in the other half. The glyph half has
// zero variance across the data, so noise there leaves the data manifold; the
// dataset's signal_mask marks the item half of each image.
#pragma once

#include "robustlens/data/dataset.h"

#include <cstdint>
#include <vector>

namespace robustlens {

/// The fixed glyph: a letter "A" of unit-intensity strokes on black, H×W,
/// drawn for any size (the reference draws an "A" with a font).
at::Tensor distractor_glyph(std::int64_t height, std::int64_t width);

/// Items stacked with the glyph. The halves are drawn from `placement_seed`
/// alone, so a split is the same data in every run.
Dataset make_distractor_dataset(const Dataset& items, std::uint64_t placement_seed);

/// The glyph alone, as a data set of `count` identical C×H×W images of one class "glyph": images from outside
/// any training distribution of clothes or digits (data spec glyphs[:C,H,W], 10,000 training and 2,000 test
/// images; add +corrupt:elastic:S to vary them).
Dataset make_glyph_dataset(const std::vector<std::int64_t>& image_shape, std::int64_t count);

/// The placement seed of a split (data specs distractor:BASE use it).
std::uint64_t distractor_placement_seed(Split split);

}  // namespace robustlens
