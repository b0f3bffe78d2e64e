#include "robustlens/explain/map_metrics.h"

#include "robustlens/core/error.h"

#include <gtest/gtest.h>

#include <cmath>

namespace robustlens {
namespace {

TEST(MapMetrics, IdenticalMapsAreMaximallySimilar) {
  const at::Tensor a = at::rand({4, 6, 6});
  EXPECT_TRUE(at::allclose(relative_l2(a, a), at::zeros({4})));
  EXPECT_TRUE(at::allclose(topk_intersection(a, a, 5), at::ones({4}, at::kDouble)));
  EXPECT_TRUE(at::allclose(spearman_correlation(a, a), at::ones({4}, at::kDouble)));
  EXPECT_TRUE(at::allclose(spearman_correlation(a, -a), -at::ones({4}, at::kDouble)));
}

TEST(MapMetrics, HandComputedValues) {
  const at::Tensor a = at::tensor({3.0, 1.0, 3.0, 2.0}).view({1, 4});
  EXPECT_TRUE(at::equal(average_ranks(a), at::tensor({3.5, 1.0, 3.5, 2.0}, at::kDouble).view({1, 4})));
  // Centred ranks: a (1, −1.5, 1, −0.5), b = (1,2,3,4) → (−1.5, −0.5, 0.5, 1.5); dot −1,
  // norms √4.5 and √5: ρ = −1/√22.5.
  const at::Tensor b = at::tensor({1.0, 2.0, 3.0, 4.0}).view({1, 4});
  EXPECT_NEAR(spearman_correlation(a, b).item<double>(), -1.0 / std::sqrt(22.5), 1e-12);
  // top-2 of x: {0, 3}; of y: {3, 2}: one in common.
  const at::Tensor x = at::tensor({0.9, 0.1, 0.2, 0.8}).view({1, 4});
  const at::Tensor y = at::tensor({0.1, 0.2, 0.7, 0.9}).view({1, 4});
  EXPECT_DOUBLE_EQ(topk_intersection(x, y, 2).item<double>(), 0.5);
  EXPECT_NEAR(relative_l2(x, y).item<double>(), (y - x).norm().item<double>() / x.norm().item<double>(), 1e-7);
  EXPECT_THROW(topk_intersection(x, y, 5), Error);
  EXPECT_THROW(relative_l2(x, at::rand({1, 5})), Error);
}

TEST(MapMetrics, CosineSimilarityAndMaxAbsNormalisation) {
  const at::Tensor a = at::tensor({1.0, 0.0, 0.0, 0.0, 2.0, 0.0}, at::kDouble).view({2, 3});
  const at::Tensor b = at::tensor({1.0, 1.0, 0.0, 0.0, -3.0, 0.0}, at::kDouble).view({2, 3});
  const at::Tensor cosine = map_cosine(a, b);
  EXPECT_NEAR(cosine[0].item<double>(), 1 / std::sqrt(2.0), 1e-12);
  EXPECT_NEAR(cosine[1].item<double>(), -1.0, 1e-12);
  EXPECT_EQ(map_cosine(at::zeros({1, 3}), at::ones({1, 3})).item<float>(), 0.0f);
  const at::Tensor normalised = max_abs_normalise(b);
  EXPECT_TRUE(at::allclose(normalised, at::tensor({1.0, 1.0, 0.0, 0.0, -1.0, 0.0}, at::kDouble).view({2, 3})));
  EXPECT_TRUE(max_abs_normalise(at::zeros({2, 3})).eq(0).all().item<bool>());
}

/// SSIM written out window by window (the oracle for the convolutional version).
double windowed_ssim(const at::Tensor& x, const at::Tensor& y, double range) {
  const std::int64_t h = x.size(0), w = x.size(1);
  const at::Tensor offsets = at::arange(11, at::kDouble) - 5;
  at::Tensor weights = at::outer(at::exp(-offsets.pow(2) / 4.5), at::exp(-offsets.pow(2) / 4.5));
  weights = weights / weights.sum();
  const double c1 = std::pow(0.01 * range, 2), c2 = std::pow(0.03 * range, 2);
  double total = 0;
  for (std::int64_t r = 0; r + 11 <= h; ++r) {
    for (std::int64_t c = 0; c + 11 <= w; ++c) {
      const at::Tensor px = x.slice(0, r, r + 11).slice(1, c, c + 11), py = y.slice(0, r, r + 11).slice(1, c, c + 11);
      const double mx = (weights * px).sum().item<double>(), my = (weights * py).sum().item<double>();
      const double vx = (weights * (px - mx).pow(2)).sum().item<double>(),
                   vy = (weights * (py - my).pow(2)).sum().item<double>();
      const double cxy = (weights * (px - mx) * (py - my)).sum().item<double>();
      total += (2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2));
    }
  }
  return total / static_cast<double>((h - 10) * (w - 10));
}

TEST(MapMetrics, StructuralSimilarityAgreesWithTheWindowedDefinition) {
  at::manual_seed(0);
  const at::Tensor x = at::rand({2, 14, 13}, at::kDouble) * 2 - 1;
  const at::Tensor y = 0.6 * x + 0.4 * (at::rand({2, 14, 13}, at::kDouble) * 2 - 1);
  const at::Tensor ssim = structural_similarity(x, y, 2.0);
  for (std::int64_t i = 0; i < 2; ++i) EXPECT_NEAR(ssim[i].item<double>(), windowed_ssim(x[i], y[i], 2.0), 1e-10);
  EXPECT_TRUE(at::allclose(structural_similarity(x, x, 2.0), at::ones({2}, at::kDouble)));
  // Constant images: only the luminance term is left.
  const double a = 0.3, b = -0.5, c1 = std::pow(0.02, 2);
  EXPECT_NEAR(
      structural_similarity(at::full({1, 1, 12, 12}, a, at::kDouble), at::full({1, 1, 12, 12}, b, at::kDouble), 2.0)
          .item<double>(),
      (2 * a * b + c1) / (a * a + b * b + c1), 1e-12);
  EXPECT_THROW(structural_similarity(at::zeros({1, 8, 8}), at::zeros({1, 8, 8}), 2.0), Error);
  EXPECT_THROW(structural_similarity(x, x, 0.0), Error);
}

}  // namespace
}  // namespace robustlens
