// Comparing two attribution maps of the same images (N×H×W or N×C×H×W; each
// row compared with its counterpart). Used by UPI and by robustness audits of
// explanations.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace robustlens {

/// ‖b − a‖₂ / ‖a‖₂ per sample (a is the reference map).
at::Tensor relative_l2(const at::Tensor& a, const at::Tensor& b);

/// |top-k(a) ∩ top-k(b)| / k per sample (ties broken by position).
at::Tensor topk_intersection(const at::Tensor& a, const at::Tensor& b, std::int64_t k);

/// Spearman rank correlation per sample, with tied values given their average rank.
at::Tensor spearman_correlation(const at::Tensor& a, const at::Tensor& b);

/// Cosine similarity of the flattened maps per sample (0 when either is all zero).
at::Tensor map_cosine(const at::Tensor& a, const at::Tensor& b);

/// Each map divided by its largest |value| (an all-zero map stays zero): values in [−1, 1].
at::Tensor max_abs_normalise(const at::Tensor& maps);

/// SSIM per sample (Wang et al. 2004, their recommended settings: 11×11
/// Gaussian window of standard deviation 1.5, K1 = 0.01, K2 = 0.03, no
/// sample-covariance correction), averaged over the positions where the window
/// fits and over channels. Maps N×H×W or N×C×H×W, at least 11×11; `data_range`
/// is L (2 for maps in [−1, 1]).
at::Tensor structural_similarity(const at::Tensor& a, const at::Tensor& b, double data_range);

/// Ranks 1..D of each row of an N×D tensor, ties averaged (float64).
at::Tensor average_ranks(const at::Tensor& rows);

}  // namespace robustlens
