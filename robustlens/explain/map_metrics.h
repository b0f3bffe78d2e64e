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

/// Ranks 1..D of each row of an N×D tensor, ties averaged (float64).
at::Tensor average_ranks(const at::Tensor& rows);

}  // namespace robustlens
