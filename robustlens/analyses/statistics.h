// Statistics reported by the analyses: order statistics (numpy's default
// linear interpolation), means with standard errors, rank correlations with
// bootstrap intervals.
#pragma once

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

namespace robustlens {

struct Quartiles {
  double q1 = 0, median = 0, q3 = 0;
  nlohmann::json to_json() const { return {{"q1", q1}, {"median", median}, {"q3", q3}}; }
};

/// Quantile q in [0,1] of the values (any shape), linear interpolation between order statistics.
double interpolated_quantile(const at::Tensor& values, double q);
/// Quartiles of the values; NaN when there are none.
Quartiles quartiles(const at::Tensor& values);

/// Mean and standard error (sample std / √n; 0 for one value) of the values.
std::pair<double, double> mean_and_standard_error(const at::Tensor& values);

/// Spearman's rank correlation of paired values (average ranks for ties) and
/// its percentile bootstrap interval: the pairs resampled with replacement
/// `resamples` times from a generator seeded with `seed`.
struct RankCorrelation {
  double spearman = 0, low = 0, high = 0;
  double confidence = 0.95;
  std::int64_t pairs = 0, resamples = 0;
  std::uint64_t seed = 0;
  nlohmann::json to_json() const;
};
RankCorrelation spearman_with_bootstrap(const std::vector<double>& x, const std::vector<double>& y,
                                        std::int64_t resamples = 2000, std::uint64_t seed = 0,
                                        double confidence = 0.95);

/// Area under the ROC curve of `scores` separating positives (bool) from the
/// rest: the Mann–Whitney statistic from mid-ranks, so ties count half. NaN
/// when either side is empty.
double rank_auroc(const at::Tensor& scores, const at::Tensor& positives);

/// The top right singular vector (unit norm, sign: largest |entry| positive)
/// of the n×d matrix `rows`, by power iteration on RᵀR using only the
/// products R·v and Rᵀ·u (the d×d matrix is never formed). Starts from a
/// random vector drawn from `generator`; stops when the direction moves by less
/// than `tolerance`.
at::Tensor top_right_singular_vector(const at::Tensor& rows, const at::Generator& generator,
                                     std::int64_t iterations = 200, double tolerance = 1e-7);
/// The same for a matrix known by its product v ↦ RᵀR·v of `dims` entries (e.g. rows spread over processes, whose
/// products are summed over them), starting from a vector of `options`.
at::Tensor top_right_singular_vector(std::int64_t dims,
                                     const std::function<at::Tensor(const at::Tensor&)>& gram_product,
                                     const at::Generator& generator, const at::TensorOptions& options,
                                     std::int64_t iterations = 200, double tolerance = 1e-7);

}  // namespace robustlens
