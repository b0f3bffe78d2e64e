// A two-component 1-D Gaussian mixture fitted by EM to each column of a matrix: the binarity measure of the latent
// analyses (analyses/latent.h; Sbailò & Ghiringhelli), as scikit-learn's GaussianMixture(2) fits one column.
#pragma once

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

namespace robustlens {

/// A 1-D mixture of two Gaussians; component 0 has the smaller mean.
struct TwoGaussians {
  double weight[2] = {0.5, 0.5}, mean[2] = {0, 0}, std[2] = {1, 1};
  double mean_log_likelihood = 0;  ///< mean over the values of log p(x)
  double separation() const;
  nlohmann::json to_json() const;
};

/// EM for each column of `values` (N×P) on its own, vectorised over columns;
/// initialised by 1-D two-means from the column's extremes. In a data-parallel
/// run every rank passes the same values, computes the E-step of its share of
/// the rows, and the M-step's sums are added up over the ranks
/// (core/distributed.h).
std::vector<TwoGaussians> fit_two_gaussians(const at::Tensor& values, std::int64_t max_iterations, double tolerance,
                                            double regularisation);

}  // namespace robustlens
