#include "robustlens/explain/map_metrics.h"

#include "robustlens/core/error.h"

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

}  // namespace robustlens
