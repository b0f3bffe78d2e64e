#include "robustlens/core/batches.h"

#include "test_support.h"

#include <gtest/gtest.h>

#include <vector>

namespace robustlens {
namespace {

std::vector<std::pair<std::int64_t, std::int64_t>> ranges(std::int64_t count, std::int64_t batch_size) {
  std::vector<std::pair<std::int64_t, std::int64_t>> seen;
  for (const auto [begin, end] : batches(count, batch_size)) seen.emplace_back(begin, end);
  return seen;
}

TEST(Batches, CoverEveryItemOnceInOrderWithOnlyTheLastShorter) {
  using Ranges = std::vector<std::pair<std::int64_t, std::int64_t>>;
  EXPECT_EQ(ranges(10, 4), (Ranges{{0, 4}, {4, 8}, {8, 10}}));
  EXPECT_EQ(ranges(8, 4), (Ranges{{0, 4}, {4, 8}}));
  EXPECT_EQ(ranges(3, 100), (Ranges{{0, 3}}));
  EXPECT_EQ(ranges(5, 1), (Ranges{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}}));
  EXPECT_TRUE(ranges(0, 4).empty());
  EXPECT_EQ((*batches(10, 4).begin()).size(), 4);
}

TEST(Batches, ABatchSizeBelowOneIsAnErrorWithItsValue) {
  testing::expect_error([] { batches(10, 0); }, "batch size must be >= 1, got 0");
  testing::expect_error([] { batches(10, -3); }, "batch size must be >= 1, got -3");
}

}  // namespace
}  // namespace robustlens
