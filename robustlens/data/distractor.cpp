#include "robustlens/data/distractor.h"

#include "robustlens/core/error.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace robustlens {
namespace {

/// Distance from point p to the segment a–b, all in (row, column) units.
double segment_distance(double pr, double pc, double ar, double ac, double br, double bc) {
  const double dr = br - ar, dc = bc - ac;
  const double t = std::clamp(((pr - ar) * dr + (pc - ac) * dc) / (dr * dr + dc * dc), 0.0, 1.0);
  return std::hypot(pr - (ar + t * dr), pc - (ac + t * dc));
}

}  // namespace

at::Tensor distractor_glyph(std::int64_t height, std::int64_t width) {
  RL_CHECK(height >= 4 && width >= 4, "distractor glyph: images must be at least 4×4 pixels, got ", height, "×", width);
  // Two legs from the apex and a crossbar, in coordinates relative to the image.
  const double top = 0.15 * height, bottom = 0.85 * height, middle = 0.5 * width;
  const double left = 0.2 * width, right = 0.8 * width, bar = 0.62 * height;
  const double half_stroke = std::max(0.75, 0.05 * static_cast<double>(std::min(height, width)));
  at::Tensor glyph = at::zeros({height, width});
  auto pixels = glyph.accessor<float, 2>();
  for (std::int64_t r = 0; r < height; ++r) {
    for (std::int64_t c = 0; c < width; ++c) {
      const double pr = r + 0.5, pc = c + 0.5;
      const double bar_left = left + (middle - left) * (bottom - bar) / (bottom - top);
      const double distance = std::min({segment_distance(pr, pc, bottom, left, top, middle),
                                        segment_distance(pr, pc, bottom, right, top, middle),
                                        segment_distance(pr, pc, bar, bar_left, bar, width - bar_left)});
      if (distance <= half_stroke) pixels[r][c] = 1.0f;
    }
  }
  return glyph;
}

std::uint64_t distractor_placement_seed(Split split) { return split == Split::train ? 0x5eed0001 : 0x5eed0002; }

Dataset make_distractor_dataset(const Dataset& items, std::uint64_t placement_seed) {
  RL_CHECK(!items.signal_mask.defined(), "distractor data: '", items.name,
           "' is distractor data already (one glyph half per image is the design)");
  const std::vector<std::int64_t> shape = items.image_shape();
  const std::int64_t n = items.size(), channels = shape[0], height = shape[1], width = shape[2];
  const at::Tensor glyph = distractor_glyph(height, width).expand({channels, height, width});
  // One bit per image from a fixed engine (std::bernoulli_distribution is not
  // specified to give the same draws on every standard library).
  std::mt19937_64 engine(placement_seed);
  std::vector<std::int64_t> item_on_top(static_cast<std::size_t>(n));
  for (auto& top : item_on_top) top = static_cast<std::int64_t>(engine() >> 63);
  const at::Tensor on_top = at::tensor(item_on_top, at::kLong).to(at::kBool).view({n, 1, 1, 1});

  const at::Tensor glyphs = glyph.unsqueeze(0).expand({n, channels, height, width});
  Dataset dataset;
  dataset.name = "distractor:" + items.name;
  dataset.images =
      at::cat({at::where(on_top, items.images, glyphs), at::where(on_top, glyphs, items.images)}, 2).contiguous();
  const at::Tensor ones = at::ones({n, 1, height, width}), zeros = at::zeros({n, 1, height, width});
  dataset.signal_mask = at::cat({at::where(on_top, ones, zeros), at::where(on_top, zeros, ones)}, 2).contiguous();
  dataset.labels = items.labels;
  dataset.class_names = items.class_names;
  return dataset;
}

Dataset make_glyph_dataset(const std::vector<std::int64_t>& image_shape, std::int64_t count) {
  RL_CHECK(image_shape.size() == 3 && count >= 1, "glyph data: expected a shape C,H,W and at least one image");
  const at::Tensor glyph = distractor_glyph(image_shape[1], image_shape[2]);
  Dataset dataset;
  dataset.images = glyph.expand({count, image_shape[0], image_shape[1], image_shape[2]}).contiguous();
  dataset.labels = at::zeros({count}, at::kLong);
  dataset.class_names = {"glyph"};
  return dataset;
}

}  // namespace robustlens
