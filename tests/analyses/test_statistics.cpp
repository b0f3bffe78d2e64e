#include "robustlens/analyses/statistics.h"

#include "robustlens/core/error.h"
#include "test_support.h"

#include <gtest/gtest.h>

#include <cmath>

namespace robustlens {
namespace {

using testing::expect_error;

TEST(RankCorrelation, IsOneForAMonotoneRelationMinusOneReversedAndUsesAverageRanks) {
  const std::vector<double> x{1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<double> cubed, reversed;
  for (const double v : x) {
    cubed.push_back(v * v * v);
    reversed.push_back(-v);
  }
  const RankCorrelation same = spearman_with_bootstrap(x, cubed, 500, 1);
  EXPECT_NEAR(same.spearman, 1.0, 1e-12);
  EXPECT_NEAR(same.low, 1.0, 1e-12);  // every resample of a monotone relation is monotone
  EXPECT_NEAR(same.high, 1.0, 1e-12);
  EXPECT_NEAR(spearman_with_bootstrap(x, reversed, 500, 1).spearman, -1.0, 1e-12);
  // Pearson correlation of the average ranks [1..5] and [2, 1, 3.5, 3.5, 5], computed with numpy.
  EXPECT_NEAR(spearman_with_bootstrap({1, 2, 3, 4, 5}, {2, 1, 4, 4, 5}, 10, 0).spearman, 0.8720815992723809, 1e-12);
}

TEST(RankCorrelation, TheBootstrapIntervalIsSeededAndCoversTheEstimate) {
  std::vector<double> x, y;
  for (int i = 0; i < 30; ++i) {
    x.push_back(i);
    y.push_back(i + 12 * std::sin(i * 1.7));  // a noisy increasing relation
  }
  const RankCorrelation a = spearman_with_bootstrap(x, y, 1000, 7), b = spearman_with_bootstrap(x, y, 1000, 7);
  EXPECT_EQ(a.low, b.low);
  EXPECT_EQ(a.high, b.high);
  EXPECT_NE(spearman_with_bootstrap(x, y, 1000, 8).low, a.low);
  EXPECT_LT(a.low, a.spearman);
  EXPECT_GT(a.high, a.spearman);
  EXPECT_GT(a.spearman, 0.5);
  EXPECT_EQ(a.pairs, 30);
  EXPECT_EQ(a.to_json().at("interval").size(), 2u);
}

TEST(RankCorrelation, NeedsThreePairsAndIsUndefinedForAConstant) {
  expect_error([] { spearman_with_bootstrap({1, 2}, {1, 2}); }, "at least three pairs, got 2 and 2");
  expect_error([] { spearman_with_bootstrap({1, 2, 3}, {1, 2}); }, "got 3 and 2");
  expect_error([] { spearman_with_bootstrap({1, 2, 3}, {1, 2, 3}, 0); }, "resamples must be >= 1, got 0");
  EXPECT_TRUE(std::isnan(spearman_with_bootstrap({1, 2, 3}, {4, 4, 4}, 10).spearman));
}

}  // namespace
}  // namespace robustlens
