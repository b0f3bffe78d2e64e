#include "robustlens/analyses/statistics.h"

#include "robustlens/core/error.h"

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
  return sorted[below].item<double>() * (1 - fraction) + sorted[above].item<double>() * fraction;
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

}  // namespace robustlens
