#include "robustlens/core/distributed.h"

#include <gtest/gtest.h>

#include <cstdlib>

// One process: every function is the identity of a world of one. Two ranks run in scripts/distributed_trials.py
// (the ctest entry distributed_trials), which compares every command's numbers with one process's.
namespace robustlens {
namespace {

TEST(Distributed, WithoutTorchrunTheWorldIsThisProcess) {
  ::unsetenv("WORLD_SIZE");
  ::unsetenv("RANK");
  distributed::join(distributed::GroupOptions());
  EXPECT_EQ(distributed::world_size(), 1);
  EXPECT_EQ(distributed::rank(), 0);
  EXPECT_TRUE(distributed::is_main_process());
  EXPECT_FALSE(distributed::active());
  EXPECT_TRUE(distributed::describe().is_null());
  EXPECT_EQ(distributed::row_share(7), (std::pair<std::int64_t, std::int64_t>(0, 7)));
  EXPECT_EQ(distributed::sum_over_ranks({1.5, 2}), (std::vector<double>{1.5, 2}));
  EXPECT_TRUE(distributed::main_process_says(true));
  at::Tensor values = at::arange(4.0);
  distributed::all_reduce_sum(values);
  EXPECT_TRUE(at::equal(values, at::arange(4.0)));
  std::vector<std::int64_t> reported;
  const auto rows = distributed::shard_rows(
      5, [&](const ProgressUpdate& update) { reported.push_back(update.done); },
      [](std::int64_t begin, std::int64_t end, const ProgressCallback& progress) {
        report(progress, {"rows", end - begin, end - begin, ""});
        return std::vector<at::Tensor>{at::arange(begin, end)};
      });
  EXPECT_TRUE(at::equal(rows.front(), at::arange(5)));
  EXPECT_EQ(reported, std::vector<std::int64_t>{5});
}

TEST(Distributed, RowChunksCoverTheRowsInOrderAndShrinkTowardsTheEnd) {
  for (const int world : {1, 2, 3, 8}) {
    for (const std::int64_t rows : {0, 1, 2, 7, 100, 4200, 100003}) {
      const auto chunks = distributed::row_chunks(rows, world);
      std::int64_t expected_first = 0, previous_size = rows;
      for (const auto [first, last] : chunks) {
        EXPECT_EQ(first, expected_first) << rows << " rows, " << world << " ranks";
        EXPECT_GE(last - first, 1);
        // Never larger than the one before (the last may be a remainder) nor than 1/(2·world) of the rows left.
        EXPECT_LE(last - first, previous_size);
        EXPECT_LE(last - first, std::max<std::int64_t>((rows - first + 2 * world - 1) / (2 * world),
                                                       std::max<std::int64_t>(1, rows / (32 * world))));
        previous_size = last - first;
        expected_first = last;
      }
      EXPECT_EQ(expected_first, rows);
      // Every rank starts with a chunk of its own.
      if (rows >= world) EXPECT_GE(static_cast<int>(chunks.size()), world);
    }
  }
  EXPECT_EQ(distributed::row_chunks(8, 2),
            (std::vector<std::pair<std::int64_t, std::int64_t>>{{0, 2}, {2, 4}, {4, 5}, {5, 6}, {6, 7}, {7, 8}}));
  EXPECT_THROW(distributed::row_chunks(-1, 2), Error);
}

TEST(Distributed, OneProcessComputesEveryBatchWholeAndCountsIt) {
  const distributed::BatchShare share = distributed::batch_share(5);
  EXPECT_EQ(share.offset, 0);
  EXPECT_EQ(share.rows, 5);
  EXPECT_TRUE(share.counts);
  EXPECT_FALSE(share.split());
  std::vector<std::pair<std::int64_t, std::int64_t>> seen;
  distributed::for_each_batch_share(7, 3, [&](std::int64_t first, std::int64_t last, const distributed::BatchShare&) {
    seen.emplace_back(first, last);
  });
  EXPECT_EQ(seen, (std::vector<std::pair<std::int64_t, std::int64_t>>{{0, 3}, {3, 6}, {6, 7}}));
  const auto rows = distributed::gather_batch_shares(7, 3, [](std::int64_t first, std::int64_t last) {
    return std::vector<at::Tensor>{at::arange(first, last), at::arange(first, last) * 2};
  });
  EXPECT_TRUE(at::equal(rows[0], at::arange(7)));
  EXPECT_TRUE(at::equal(rows[1], at::arange(7) * 2));
  const std::vector<double> sums = distributed::sum_batch_shares(7, 3, [](std::int64_t first, std::int64_t last) {
    return std::vector<double>{static_cast<double>(last - first), at::arange(first, last).sum().item<double>()};
  });
  EXPECT_EQ(sums, (std::vector<double>{7, 21}));
  // Nothing to compute is refused, not an empty result that a caller would index.
  EXPECT_THROW(
      distributed::gather_batch_shares(0, 3, [](std::int64_t, std::int64_t) { return std::vector<at::Tensor>{}; }),
      Error);
  EXPECT_THROW(distributed::sum_batch_shares(0, 3, [](std::int64_t, std::int64_t) { return std::vector<double>{}; }),
               Error);
}

TEST(Distributed, AnErrorInAStepOfOneProcessIsItsOwn) {
  EXPECT_THROW(distributed::agree("a step", [] { throw Error("bad file"); }), Error);
}

TEST(Distributed, BadEnvironmentAndOptionsAreNamed) {
  ::setenv("WORLD_SIZE", "two", 1);
  try {
    (void)distributed::GroupOptions().resolved();
    FAIL() << "a malformed WORLD_SIZE was accepted";
  } catch (const Error& error) {
    EXPECT_STREQ(error.what(), "environment variable WORLD_SIZE='two' is not an integer");
  }
  ::unsetenv("WORLD_SIZE");
  try {
    (void)distributed::GroupOptions().set_world_size(2).set_rank(2).resolved();
    FAIL() << "rank 2 of 2 was accepted";
  } catch (const Error& error) {
    EXPECT_STREQ(error.what(), "rank (--rank or RANK) must lie in [0, 2), got 2");
  }
}

}  // namespace
}  // namespace robustlens
