#include "robustlens/report/images.h"

#include "robustlens/core/error.h"

namespace robustlens {

at::Tensor heat_colormap(const at::Tensor& map) {
  const at::Tensor t = map.detach().to(at::kCPU, at::kFloat);
  const at::Tensor v = t / t.max().clamp_min(1e-30);
  return at::stack({(3 * v).clamp(0, 1), (3 * v - 1).clamp(0, 1), (3 * v - 2).clamp(0, 1)});
}

at::Tensor diverging_colormap(const at::Tensor& map) {
  const at::Tensor t = map.detach().to(at::kCPU, at::kFloat);
  const at::Tensor v = t / t.abs().max().clamp_min(1e-30);
  const at::Tensor positive = v.clamp_min(0), negative = (-v).clamp_min(0);
  return at::stack({1 - negative, 1 - positive - negative, 1 - positive});
}

at::Tensor to_rgb(const at::Tensor& image) {
  const at::Tensor t = image.detach().to(at::kCPU, at::kFloat);
  return t.size(0) == 1 ? t.expand({3, t.size(1), t.size(2)}).contiguous() : t;
}

at::Tensor image_grid(const std::vector<at::Tensor>& images, std::int64_t columns, std::int64_t scale) {
  RL_CHECK(!images.empty() && columns >= 1 && scale >= 1, "image grid needs images, columns >= 1 and scale >= 1");
  const std::int64_t h = images[0].size(1) * scale, w = images[0].size(2) * scale;
  const auto count = static_cast<std::int64_t>(images.size());
  const std::int64_t rows = (count + columns - 1) / columns;
  at::Tensor grid = at::ones({3, rows * (h + 1) + 1, columns * (w + 1) + 1});
  for (std::int64_t i = 0; i < count; ++i) {
    RL_CHECK(images[i].dim() == 3 && images[i].size(0) == 3, "grid tiles must be 3×H×W, got ", images[i].sizes());
    const at::Tensor tile = images[i].repeat_interleave(scale, 1).repeat_interleave(scale, 2);
    const std::int64_t top = (i / columns) * (h + 1) + 1, left = (i % columns) * (w + 1) + 1;
    grid.slice(1, top, top + h).slice(2, left, left + w).copy_(tile);
  }
  return grid;
}

}  // namespace robustlens
