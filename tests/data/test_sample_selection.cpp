#include "robustlens/data/sample_selection.h"

#include "robustlens/core/error.h"
#include "test_support.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace robustlens {
namespace {

TEST(SampleSelection, SeededSubsetIsSortedUniqueAndReproducible) {
  const auto a = select_samples(1000, SampleSelection().set_count(100).set_seed(3));
  EXPECT_EQ(a.size(), 100u);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  EXPECT_EQ(std::set<std::int64_t>(a.begin(), a.end()).size(), 100u);
  EXPECT_EQ(a, select_samples(1000, SampleSelection().set_count(100).set_seed(3)));
  EXPECT_NE(a, select_samples(1000, SampleSelection().set_count(100).set_seed(4)));
  EXPECT_EQ(select_samples(5, SampleSelection()).size(), 5u);
}

TEST(SampleSelection, ExplicitIndicesAreKeptAndChecked) {
  EXPECT_EQ(select_samples(10, SampleSelection().set_indices({7, 2, 9})), (std::vector<std::int64_t>{7, 2, 9}));
  EXPECT_THROW(select_samples(10, SampleSelection().set_indices({10})), Error);
  EXPECT_THROW(select_samples(10, SampleSelection().set_count(11)), Error);
  try {
    select_samples(10, SampleSelection().set_indices({3, 5, 3}));
    ADD_FAILURE() << "a repeated index must be refused";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("index 3 is given twice"), std::string::npos) << error.what();
  }
}

TEST(SampleSelection, ParsesCommaListsAndFiles) {
  EXPECT_EQ(parse_index_list("3, 5,7"), (std::vector<std::int64_t>{3, 5, 7}));
  testing::TemporaryDirectory dir;
  testing::write_bytes(dir.file("idx.txt"), "1\n4 9,16\n");
  EXPECT_EQ(parse_index_list(dir.file("idx.txt")), (std::vector<std::int64_t>{1, 4, 9, 16}));
  EXPECT_THROW(parse_index_list("1,x"), Error);
  EXPECT_THROW(parse_index_list("-2"), Error);
  EXPECT_THROW(parse_index_list(""), Error);
  // 300 inline values: far longer than a file name may be, still a list.
  std::string many;
  for (int i = 0; i < 300; ++i) many += std::to_string(1000 + i) + ",";
  EXPECT_EQ(parse_index_list(many).size(), 300u);
  try {
    parse_index_list(dir.file("absent.txt"));
    ADD_FAILURE() << "a missing index file must be refused";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("absent.txt"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace robustlens
