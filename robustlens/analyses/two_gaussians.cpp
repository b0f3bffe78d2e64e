#include "robustlens/analyses/two_gaussians.h"

#include "robustlens/core/batches.h"
#include "robustlens/core/distributed.h"
#include "robustlens/core/error.h"

#include <cmath>
#include <limits>

namespace robustlens {
namespace {

/// Columns fitted together by EM (bounds its N × columns × 2 temporaries).
constexpr std::int64_t kColumnsPerFit = 32;

/// log N(x; mean, var) for x N×C and mean, var C (broadcast).
at::Tensor gaussian_log_density(const at::Tensor& x, const at::Tensor& mean, const at::Tensor& variance) {
  return -0.5 * ((x - mean).pow(2) / variance + at::log(2 * M_PI * variance));
}

/// EM on the columns of `all` (N×C, double), all fitted at once; each rank does the E-step of its share of the rows
/// and adds its sums over them up with the other ranks'.
std::vector<TwoGaussians> fit_columns(const at::Tensor& all, std::int64_t max_iterations, double tolerance,
                                      double regularisation) {
  const std::int64_t columns = all.size(1);
  const auto n = static_cast<double>(all.size(0));
  const at::Tensor x = distributed::share_of_rows(all);
  // Two-means from the extremes: a deterministic start that sees unequal modes.
  at::Tensor low = std::get<0>(all.min(0)), high = std::get<0>(all.max(0));
  at::Tensor nearer_high;
  for (int step = 0; step < 50; ++step) {
    nearer_high = (x - high).abs() < (x - low).abs();
    const at::Tensor in_high = nearer_high.to(at::kDouble);
    std::vector<at::Tensor> sums{in_high.sum(0), (x * in_high).sum(0), (x * (1 - in_high)).sum(0)};
    distributed::all_reduce_sum(sums);
    const at::Tensor count_high = sums[0], count_low = n - count_high;
    const at::Tensor new_high = at::where(count_high > 0, sums[1] / count_high.clamp_min(1), high);
    const at::Tensor new_low = at::where(count_low > 0, sums[2] / count_low.clamp_min(1), low);
    const bool settled = new_high.equal(high) && new_low.equal(low);
    high = new_high;
    low = new_low;
    if (settled) break;
  }
  at::Tensor responsibility_high = nearer_high.to(at::kDouble);
  at::Tensor mean = at::stack({low, high}), weight, variance;  // 2×C
  const auto m_step = [&](const at::Tensor& r_high) {
    const at::Tensor r = at::stack({1 - r_high, r_high});  // 2×N×C
    std::vector<at::Tensor> sums{r.sum(1), (r * x.unsqueeze(0)).sum(1)};
    distributed::all_reduce_sum(sums);
    const at::Tensor mass = sums[0].clamp_min(1e-300);  // 2×C
    weight = mass / n;
    mean = sums[1] / mass;
    at::Tensor squares = (r * (x.unsqueeze(0) - mean.unsqueeze(1)).pow(2)).sum(1);
    distributed::all_reduce_sum(squares);
    variance = squares / mass + regularisation;
  };
  m_step(responsibility_high);
  at::Tensor log_likelihood = at::full({columns}, -std::numeric_limits<double>::infinity(), x.options());
  for (std::int64_t iteration = 0; iteration < max_iterations; ++iteration) {
    const at::Tensor joint = at::stack({gaussian_log_density(x, mean[0], variance[0]) + at::log(weight[0]),
                                        gaussian_log_density(x, mean[1], variance[1]) + at::log(weight[1])});
    const at::Tensor total = at::logsumexp(joint, 0);  // N×C
    at::Tensor log_likelihood_sum = total.sum(0);
    distributed::all_reduce_sum(log_likelihood_sum);
    const at::Tensor new_log_likelihood = log_likelihood_sum / n;
    const double change = (new_log_likelihood - log_likelihood).abs().max().item<double>();
    log_likelihood = new_log_likelihood;
    m_step(at::exp(joint[1] - total));
    if (change < tolerance) break;
  }
  std::vector<TwoGaussians> fits(static_cast<std::size_t>(columns));
  for (std::int64_t c = 0; c < columns; ++c) {
    TwoGaussians& fit = fits[static_cast<std::size_t>(c)];
    const int first = mean[0][c].item<double>() <= mean[1][c].item<double>() ? 0 : 1;
    for (int k = 0; k < 2; ++k) {
      const int source = k == 0 ? first : 1 - first;
      fit.weight[k] = weight[source][c].item<double>();
      fit.mean[k] = mean[source][c].item<double>();
      fit.std[k] = std::sqrt(variance[source][c].item<double>());
    }
    fit.mean_log_likelihood = log_likelihood[c].item<double>();
  }
  return fits;
}

}  // namespace

double TwoGaussians::separation() const { return std::abs(mean[1] - mean[0]) / (0.5 * (std[0] + std[1])); }

nlohmann::json TwoGaussians::to_json() const {
  return {{"weights", {weight[0], weight[1]}},
          {"means", {mean[0], mean[1]}},
          {"stds", {std[0], std[1]}},
          {"separation", separation()},
          {"mean_log_likelihood", mean_log_likelihood}};
}

std::vector<TwoGaussians> fit_two_gaussians(const at::Tensor& values, std::int64_t max_iterations, double tolerance,
                                            double regularisation) {
  RL_CHECK(values.dim() == 2 && values.size(0) >= 2, "two-Gaussian fit needs N×P values with N >= 2, got ",
           values.sizes());
  RL_CHECK(regularisation > 0, "two-Gaussian fit: regularisation must be > 0, got ", regularisation);
  const at::Tensor x = values.detach().to(at::kCPU, at::kDouble);
  std::vector<TwoGaussians> fits;
  for (const auto [start, end] : batches(x.size(1), kColumnsPerFit)) {
    const std::vector<TwoGaussians> part =
        fit_columns(x.slice(1, start, end), max_iterations, tolerance, regularisation);
    fits.insert(fits.end(), part.begin(), part.end());
  }
  return fits;
}

}  // namespace robustlens
