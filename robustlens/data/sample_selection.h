// Which samples an analysis runs on: all, a seeded random subset of a given
// count, or an explicit index list (to compare with another tool on the same images).
#pragma once

#include "robustlens/core/options.h"

#include <cstdint>
#include <string>
#include <vector>

namespace robustlens {

struct SampleSelection {
  /// Number of samples; 0 = all. Ignored when indices are given.
  std::int64_t count = 0;
  /// Seed of the random subset (the same seed always picks the same samples).
  std::uint64_t seed = 0;
  /// Explicit indices, used as given (order kept).
  std::vector<std::int64_t> indices;

  RL_SETTER(count)
  RL_SETTER(seed)
  RL_SETTER(indices)
};

/// Indices into a dataset of `dataset_size` images, sorted for a random subset.
std::vector<std::int64_t> select_samples(std::int64_t dataset_size, const SampleSelection& selection);

/// "3,17,42" or the path of a file of indices separated by commas, spaces or newlines.
std::vector<std::int64_t> parse_index_list(const std::string& text);

}  // namespace robustlens
