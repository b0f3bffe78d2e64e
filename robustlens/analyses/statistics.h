// Order statistics reported by the analyses (numpy's default linear interpolation).
#pragma once

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <utility>

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

}  // namespace robustlens
