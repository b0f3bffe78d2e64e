#include "robustlens/analyses/statistics.h"

#include "robustlens/core/error.h"
#include "robustlens/core/random.h"
#include "robustlens/explain/map_metrics.h"

#include <cmath>
#include <limits>

namespace robustlens {

double interpolated_quantile(const at::Tensor& values, double q) {
  RL_CHECK(q >= 0 && q <= 1, "quantile must lie in [0,1], got ", q);
  const at::Tensor sorted = std::get<0>(values.detach().to(at::kCPU, at::kDouble).flatten().sort());
  const std::int64_t n = sorted.numel();
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  const double position = q * static_cast<double>(n - 1);
  const auto below = static_cast<std::int64_t>(std::floor(position));
  const std::int64_t above = std::min(below + 1, n - 1);
  const double fraction = position - static_cast<double>(below);
  const double low = sorted[below].item<double>(), high = sorted[above].item<double>();
  // Infinite values (e.g. "no adversarial found") are order statistics like any other: no 0·inf.
  if (fraction == 0 || low == high) return low;
  if (std::isinf(high)) return high;
  return low * (1 - fraction) + high * fraction;
}

Quartiles quartiles(const at::Tensor& values) {
  return {interpolated_quantile(values, 0.25), interpolated_quantile(values, 0.5), interpolated_quantile(values, 0.75)};
}

std::pair<double, double> mean_and_standard_error(const at::Tensor& values) {
  const double n = static_cast<double>(values.numel());
  const double mean = values.mean().item<double>();
  const double deviation = n > 1 ? values.std().item<double>() : 0.0;
  return {mean, deviation / std::sqrt(n)};
}

nlohmann::json RankCorrelation::to_json() const {
  const auto finite = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); };
  return {{"spearman", finite(spearman)},
          {"interval", {finite(low), finite(high)}},
          {"confidence", confidence},
          {"pairs", pairs},
          {"bootstrap_resamples", resamples},
          {"seed", seed},
          {"interval_method", "percentile bootstrap over the pairs"}};
}

RankCorrelation spearman_with_bootstrap(const std::vector<double>& x, const std::vector<double>& y,
                                        std::int64_t resamples, std::uint64_t seed, double confidence) {
  RL_CHECK(x.size() == y.size() && x.size() >= 3, "a rank correlation needs at least three pairs, got ", x.size(),
           " and ", y.size(), " values");
  RL_CHECK(resamples >= 1, "bootstrap resamples must be >= 1, got ", resamples);
  RL_CHECK(confidence > 0 && confidence < 1, "confidence must lie in (0, 1), got ", confidence);
  const auto n = static_cast<std::int64_t>(x.size());
  const at::Tensor a = at::tensor(x, at::kDouble), b = at::tensor(y, at::kDouble);
  RankCorrelation result;
  result.pairs = n;
  result.resamples = resamples;
  result.seed = seed;
  result.confidence = confidence;
  // A constant variable has no ranks to correlate: NaN, not the 0 the clamped denominator would give.
  const auto correlation = [](const at::Tensor& u, const at::Tensor& v) {
    const at::Tensor r = spearman_correlation(u, v);
    const at::Tensor constant = (u.amax(1) == u.amin(1)) | (v.amax(1) == v.amin(1));
    return at::where(constant, at::full_like(r, std::numeric_limits<double>::quiet_NaN()), r);
  };
  result.spearman = correlation(a.unsqueeze(0), b.unsqueeze(0)).item<double>();
  at::Generator generator = make_generator(seed);
  const at::Tensor picks = at::randint(n, {resamples, n}, generator, at::kLong);
  const at::Tensor draws = correlation(a.index_select(0, picks.flatten()).view({resamples, n}),
                                       b.index_select(0, picks.flatten()).view({resamples, n}));
  // Resamples that drew one value of a variable only have no correlation; the interval is over the others.
  const at::Tensor defined = draws.masked_select(~draws.isnan());
  const double tail = (1 - confidence) / 2;
  result.low = interpolated_quantile(defined, tail);
  result.high = interpolated_quantile(defined, 1 - tail);
  return result;
}

double rank_auroc(const at::Tensor& scores, const at::Tensor& positives) {
  RL_CHECK(scores.dim() == 1 && positives.dim() == 1 && scores.size(0) == positives.size(0),
           "AUROC needs as many labels as scores, got ", scores.sizes(), " and ", positives.sizes());
  const at::Tensor s = scores.detach().to(at::kCPU, at::kDouble), positive = positives.to(at::kCPU, at::kBool);
  const std::int64_t n = s.size(0), n_positive = positive.sum().item<std::int64_t>(), n_negative = n - n_positive;
  if (n_positive == 0 || n_negative == 0) return std::numeric_limits<double>::quiet_NaN();
  RL_CHECK(at::isfinite(s).all().item<bool>(), "AUROC: scores must be finite");
  // Mid-ranks: tied scores share the mean of the ranks they occupy.
  const auto [sorted, order] = s.sort();
  const double* values = sorted.data_ptr<double>();
  std::vector<double> rank_of_sorted(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n;) {
    std::int64_t j = i;
    while (j + 1 < n && values[j + 1] == values[i]) ++j;
    const double mid_rank = 0.5 * static_cast<double>(i + j) + 1;
    for (std::int64_t k = i; k <= j; ++k) rank_of_sorted[static_cast<std::size_t>(k)] = mid_rank;
    i = j + 1;
  }
  const at::Tensor ranks = at::empty({n}, s.options());
  ranks.index_put_({order}, at::tensor(rank_of_sorted, at::kDouble));
  const double positive_rank_sum = ranks.masked_select(positive).sum().item<double>();
  const auto p = static_cast<double>(n_positive);
  return (positive_rank_sum - p * (p + 1) / 2) / (p * static_cast<double>(n_negative));
}

at::Tensor top_right_singular_vector(std::int64_t dims,
                                     const std::function<at::Tensor(const at::Tensor&)>& gram_product,
                                     const at::Generator& generator, const at::TensorOptions& options,
                                     std::int64_t iterations, double tolerance) {
  RL_CHECK(dims >= 1, "power iteration: need vectors of at least one entry, got ", dims);
  RL_CHECK(iterations >= 1, "power iterations must be >= 1, got ", iterations);
  at::Tensor v = random_normal({dims}, generator, options);
  v = v / v.norm();
  for (std::int64_t i = 0; i < iterations; ++i) {
    at::Tensor next = gram_product(v);
    const double norm = next.norm().item<double>();
    if (norm == 0) break;  // v is in the null space: R is zero
    next = next / norm;
    const bool converged = (next - v).norm().item<double>() < tolerance;
    v = next;
    if (converged) break;
  }
  return v * v[v.abs().argmax()].sign();
}

at::Tensor top_right_singular_vector(const at::Tensor& rows, const at::Generator& generator, std::int64_t iterations,
                                     double tolerance) {
  RL_CHECK(rows.dim() == 2 && rows.size(0) >= 1 && rows.size(1) >= 1,
           "power iteration: need a non-empty n×d matrix, got ", rows.sizes());
  return top_right_singular_vector(
      rows.size(1), [&](const at::Tensor& v) { return rows.t().mv(rows.mv(v)); }, generator, rows.options(), iterations,
      tolerance);
}

}  // namespace robustlens
