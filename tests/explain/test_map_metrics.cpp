#include "robustlens/explain/map_metrics.h"

#include "robustlens/core/error.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace robustlens
