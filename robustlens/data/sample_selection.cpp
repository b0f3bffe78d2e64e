#include "robustlens/data/sample_selection.h"

#include "robustlens/core/error.h"
#include "robustlens/core/parsing.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>

namespace robustlens {

std::vector<std::int64_t> select_samples(std::int64_t dataset_size, const SampleSelection& selection) {
  if (!selection.indices.empty()) {
    std::vector<bool> seen(static_cast<std::size_t>(std::max<std::int64_t>(dataset_size, 0)));
    for (const std::int64_t i : selection.indices) {
      RL_CHECK(i >= 0 && i < dataset_size, "sample index ", i, " is out of range (the dataset has ", dataset_size,
               " images: valid indices are 0..", dataset_size - 1, ")");
      // A repeated index would count one image twice in every share and mean.
      RL_CHECK(!seen[static_cast<std::size_t>(i)], "sample index ", i, " is given twice; give each image once");
      seen[static_cast<std::size_t>(i)] = true;
    }
    return selection.indices;
  }
  RL_CHECK(selection.count >= 0, "sample count must be >= 0 (0 = all), got ", selection.count);
  RL_CHECK(selection.count <= dataset_size, "sample count ", selection.count, " exceeds the ", dataset_size,
           " images of the dataset");
  std::vector<std::int64_t> all(static_cast<std::size_t>(dataset_size));
  std::iota(all.begin(), all.end(), 0);
  if (selection.count == 0 || selection.count == dataset_size) return all;
  // Partial Fisher–Yates with a fixed engine: the same seed picks the same samples
  // whatever LibTorch version is linked.
  std::mt19937_64 engine(selection.seed);
  for (std::int64_t i = 0; i < selection.count; ++i) {
    std::uniform_int_distribution<std::int64_t> pick(i, dataset_size - 1);
    std::swap(all[i], all[pick(engine)]);
  }
  all.resize(static_cast<std::size_t>(selection.count));
  std::sort(all.begin(), all.end());
  return all;
}

std::vector<std::int64_t> parse_index_list(const std::string& text) {
  std::string content = text;
  std::string source = "index list";
  // Digits, commas and spaces are a list, never looked up as a path (a long list is no valid file name).
  const bool inline_list = text.find_first_not_of("0123456789, \t\n") == std::string::npos;
  if (!inline_list) {
    std::error_code error;
    RL_CHECK(std::filesystem::is_regular_file(text, error), "index list '", text.substr(0, 80),
             text.size() > 80 ? "...'" : "'",
             " is neither a list of non-negative integers (e.g. 3,17,42) nor a readable file");
    std::ifstream in(text);
    content.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    RL_CHECK(in.good() || in.eof(), "index file '", text, "' cannot be read");
    source = "index file '" + text + "'";
  }
  std::replace(content.begin(), content.end(), ',', ' ');
  std::istringstream tokens(content);
  std::vector<std::int64_t> indices;
  for (std::string token; tokens >> token;) {
    const auto value = parse_int64(token);
    RL_CHECK(value && *value >= 0, source, ": '", token, "' is not a non-negative integer index");
    indices.push_back(*value);
  }
  RL_CHECK(!indices.empty(), source, " holds no indices (expected e.g. 3,17,42 or a file of integers)");
  return indices;
}

}  // namespace robustlens
