#include "robustlens/explain/map_metrics.h"

#include "robustlens/core/error.h"

#include <cmath>
#include <vector>

namespace robustlens {
namespace {

void check_pair(const at::Tensor& a, const at::Tensor& b) {
  RL_CHECK(a.sizes() == b.sizes() && a.dim() >= 2, "maps to compare must have the same shape N×..., got ", a.sizes(),
           " and ", b.sizes());
}

}  // namespace

at::Tensor relative_l2(const at::Tensor& a, const at::Tensor& b) {
  check_pair(a, b);
  return (b - a).flatten(1).norm(2, 1) / a.flatten(1).norm(2, 1).clamp_min(1e-30);
}

at::Tensor topk_intersection(const at::Tensor& a, const at::Tensor& b, std::int64_t k) {
  check_pair(a, b);
  const std::int64_t d = a[0].numel();
  RL_CHECK(k >= 1 && k <= d, "top-k: k must lie in [1, ", d, "], got ", k);
  const at::Tensor top_a = std::get<1>(a.flatten(1).topk(k, 1));
  const at::Tensor top_b = std::get<1>(b.flatten(1).topk(k, 1));
  at::Tensor in_a = at::zeros({a.size(0), d}, a.options().dtype(at::kBool));
  in_a.scatter_(1, top_a, true);
  return in_a.gather(1, top_b).sum(1).to(at::kDouble) / static_cast<double>(k);
}

at::Tensor average_ranks(const at::Tensor& rows) {
  const at::Tensor values = rows.to(at::kCPU, at::kDouble).contiguous();
  const auto [sorted, order] = values.sort(1);
  at::Tensor ranks = at::empty_like(values);
  const auto v = sorted.accessor<double, 2>();
  const auto o = order.accessor<std::int64_t, 2>();
  auto r = ranks.accessor<double, 2>();
  for (std::int64_t i = 0; i < values.size(0); ++i) {
    for (std::int64_t start = 0; start < values.size(1);) {
      std::int64_t end = start + 1;
      while (end < values.size(1) && v[i][end] == v[i][start]) ++end;
      const double rank = 0.5 * static_cast<double>(start + end + 1);  // mean of ranks start+1..end
      for (std::int64_t j = start; j < end; ++j) r[i][o[i][j]] = rank;
      start = end;
    }
  }
  return ranks;
}

at::Tensor spearman_correlation(const at::Tensor& a, const at::Tensor& b) {
  check_pair(a, b);
  const at::Tensor ra = average_ranks(a.flatten(1)), rb = average_ranks(b.flatten(1));
  const at::Tensor ca = ra - ra.mean(1, true), cb = rb - rb.mean(1, true);
  return (ca * cb).sum(1) / (ca.norm(2, 1) * cb.norm(2, 1)).clamp_min(1e-30);
}

at::Tensor map_cosine(const at::Tensor& a, const at::Tensor& b) {
  check_pair(a, b);
  const at::Tensor x = a.flatten(1), y = b.flatten(1);
  return (x * y).sum(1) / (x.norm(2, 1) * y.norm(2, 1)).clamp_min(1e-30);
}

at::Tensor max_abs_normalise(const at::Tensor& maps) {
  RL_CHECK(maps.dim() >= 2, "maps must be N×..., got ", maps.sizes());
  const at::Tensor largest = std::get<0>(maps.abs().flatten(1).max(1)).clamp_min(1e-30);
  std::vector<std::int64_t> shape(static_cast<std::size_t>(maps.dim()), 1);
  shape[0] = maps.size(0);
  return maps / largest.view(shape);
}

at::Tensor structural_similarity(const at::Tensor& a, const at::Tensor& b, double data_range) {
  check_pair(a, b);
  RL_CHECK(a.dim() == 3 || a.dim() == 4, "SSIM needs maps N×H×W or N×C×H×W, got ", a.sizes());
  RL_CHECK(data_range > 0, "SSIM: the data range must be > 0, got ", data_range);
  constexpr std::int64_t window = 11;
  RL_CHECK(a.size(-1) >= window && a.size(-2) >= window, "SSIM needs maps of at least ", window, "×", window,
           " pixels, got ", a.sizes());
  // Channels become separate images of one channel.
  const at::Tensor x = a.to(at::kDouble).reshape({-1, 1, a.size(-2), a.size(-1)});
  const at::Tensor y = b.to(at::kDouble).reshape({-1, 1, a.size(-2), a.size(-1)});
  const at::Tensor offsets = at::arange(window, x.options()) - (window - 1) / 2;
  const at::Tensor profile = at::exp(-offsets.pow(2) / (2 * 1.5 * 1.5));
  const at::Tensor weights = profile / profile.sum();
  // Gaussian filtering at the valid window positions as two products with banded matrices,
  // W_rows · image · W_colsᵀ, over the five local moments at once: a double-precision
  // convolution (im2col, image by image) cost the alignment analysis more than its denoiser.
  const auto window_matrix = [&](std::int64_t size) {
    at::Tensor matrix = at::zeros({size - window + 1, size}, x.options());
    for (std::int64_t row = 0; row < matrix.size(0); ++row) matrix[row].slice(0, row, row + window).copy_(weights);
    return matrix;
  };
  const std::vector<at::Tensor> moments =
      at::matmul(at::matmul(window_matrix(x.size(2)), at::cat({x, y, x * x, y * y, x * y})),
                 window_matrix(x.size(3)).t())
          .chunk(5);
  const at::Tensor &mean_x = moments[0], &mean_y = moments[1];
  const at::Tensor variance_x = moments[2] - mean_x.pow(2), variance_y = moments[3] - mean_y.pow(2);
  const at::Tensor covariance = moments[4] - mean_x * mean_y;
  const double c1 = std::pow(0.01 * data_range, 2), c2 = std::pow(0.03 * data_range, 2);
  const at::Tensor ssim_map = (2 * mean_x * mean_y + c1) * (2 * covariance + c2) /
                              ((mean_x.pow(2) + mean_y.pow(2) + c1) * (variance_x + variance_y + c2));
  return ssim_map.flatten(1).mean(1).view({a.size(0), -1}).mean(1);
}

}  // namespace robustlens
