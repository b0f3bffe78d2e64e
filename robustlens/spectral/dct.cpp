#include "robustlens/spectral/dct.h"

#include "robustlens/core/error.h"
#include "robustlens/core/parsing.h"

#include <cmath>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

namespace robustlens {

at::Tensor dct_matrix(std::int64_t n, const at::TensorOptions& options) {
  RL_CHECK(n >= 1, "DCT size must be >= 1, got ", n);
  static std::mutex mutex;
  static std::map<std::tuple<std::int64_t, std::string, int>, at::Tensor> cache;
  const auto key = std::make_tuple(n, options.device().str(), static_cast<int>(options.dtype().toScalarType()));
  std::lock_guard<std::mutex> lock(mutex);
  if (const auto found = cache.find(key); found != cache.end()) return found->second;
  // Built in float64 on the CPU, then converted: the same matrix on every device.
  const at::Tensor k = at::arange(n, at::kDouble).unsqueeze(1), i = at::arange(n, at::kDouble).unsqueeze(0);
  at::Tensor d =
      at::cos(M_PI * (2 * i + 1) * k / (2.0 * static_cast<double>(n))) * std::sqrt(2.0 / static_cast<double>(n));
  d[0] = d[0] / std::sqrt(2.0);
  const at::Tensor converted = d.to(options);
  cache.emplace(key, converted);
  return converted;
}

at::Tensor dct2(const at::Tensor& x) {
  RL_CHECK(x.dim() >= 2, "dct2 needs at least 2 dimensions, got ", x.sizes());
  const at::Tensor dh = dct_matrix(x.size(-2), x.options()), dw = dct_matrix(x.size(-1), x.options());
  return at::matmul(at::matmul(dh, x), dw.t());
}

at::Tensor idct2(const at::Tensor& coefficients) {
  RL_CHECK(coefficients.dim() >= 2, "idct2 needs at least 2 dimensions, got ", coefficients.sizes());
  const at::Tensor dh = dct_matrix(coefficients.size(-2), coefficients.options());
  const at::Tensor dw = dct_matrix(coefficients.size(-1), coefficients.options());
  return at::matmul(at::matmul(dh.t(), coefficients), dw);
}

std::int64_t DctSubspaces::count() const { return (std::min(height, width) - block) / step + 1; }

at::Tensor DctSubspaces::masks(const at::TensorOptions& options) const {
  at::Tensor masks = at::zeros({count(), height, width}, options);
  for (std::int64_t t = 0; t < count(); ++t) {
    masks[t].slice(0, t * step, t * step + block).slice(1, t * step, t * step + block).fill_(1);
  }
  return masks;
}

nlohmann::json DctSubspaces::to_json() const {
  return {{"kind", "dct-diagonal-blocks"}, {"block", block}, {"step", step}, {"count", count()}};
}

DctSubspaces dct_subspaces(std::int64_t height, std::int64_t width, std::int64_t block, std::int64_t step) {
  RL_CHECK(block >= 1 && step >= 1, "subspace spec dct:K:T needs K >= 1 and T >= 1, got K=", block, " T=", step);
  RL_CHECK(block <= std::min(height, width), "subspace spec dct:K:T: block K=", block, " exceeds the image side ",
           std::min(height, width));
  return {height, width, block, step};
}

DctSubspaces default_dct_subspaces(std::int64_t height, std::int64_t width) {
  const std::int64_t side = std::min(height, width);
  if (side <= 28) return dct_subspaces(height, width, std::min<std::int64_t>(8, side), 1);
  if (side <= 64) return dct_subspaces(height, width, 8, 2);
  const std::int64_t block = side / 14;
  return dct_subspaces(height, width, block, block);
}

at::Tensor project_onto_dct_subspaces(const at::Tensor& w, const at::Tensor& masks, const at::Tensor& subspace_of_row) {
  RL_CHECK(w.dim() == 4 && masks.dim() == 3 && w.size(2) == masks.size(1) && w.size(3) == masks.size(2),
           "DCT projection: rows must be M×C×H×W matching masks t×H×W, got ", w.sizes(), " and ", masks.sizes());
  const at::Tensor row_masks = masks.index_select(0, subspace_of_row).unsqueeze(1);  // M×1×H×W, same for every channel
  return idct2(dct2(w) * row_masks);
}

at::Tensor dct_flip(const at::Tensor& images) { return idct2(dct2(images).flip({-2, -1})); }

DctSubspaceSpec parse_dct_subspace_spec(const std::string& text) {
  if (text == "auto") return {};
  const auto second = text.find(':', 4);
  const auto block = text.rfind("dct:", 0) == 0 && second != std::string::npos ? parse_int64(text.substr(4, second - 4))
                                                                               : std::nullopt;
  const auto step = block ? parse_int64(text.substr(second + 1)) : std::nullopt;
  RL_CHECK(block && step && *block >= 1 && *step >= 1,
           "subspace spec: expected auto or dct:K:T with positive K and T, got '", text.substr(0, 200), "'");
  return {*block, *step};
}

DctTransformSpec parse_dct_transform(const std::string& spec) {
  if (spec == "none" || spec == "dct-flip") return {spec, 0};
  const auto bandwidth = spec.rfind("low-pass:", 0) == 0 ? parse_int64(spec.substr(9)) : std::nullopt;
  RL_CHECK(bandwidth && *bandwidth >= 1, "transform spec: expected none, dct-flip or low-pass:B with B >= 1, got '",
           spec.substr(0, 200), "'");
  return {"low-pass", *bandwidth};
}

at::Tensor apply_dct_transform(const std::string& spec, const at::Tensor& images) {
  const DctTransformSpec transform = parse_dct_transform(spec);
  if (transform.kind == "none") return images;
  if (transform.kind == "dct-flip") return dct_flip(images);
  const std::int64_t side = std::min(images.size(-2), images.size(-1));
  RL_CHECK(transform.bandwidth <= side, "transform spec ", spec, ": the bandwidth must be at most the images' side ",
           side);
  return dct_low_pass(images, transform.bandwidth);
}

at::Tensor dct_low_pass(const at::Tensor& images, std::int64_t bandwidth) {
  RL_CHECK(bandwidth >= 1, "low-pass bandwidth must be >= 1, got ", bandwidth);
  at::Tensor coefficients = dct2(images);
  at::Tensor mask = at::zeros({images.size(-2), images.size(-1)}, images.options());
  mask.slice(0, 0, bandwidth).slice(1, 0, bandwidth).fill_(1);
  return idct2(coefficients * mask);
}

}  // namespace robustlens
