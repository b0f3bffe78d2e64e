#include "robustlens/data/idx.h"

#include "robustlens/core/error.h"
#include "robustlens/data/byte_file.h"
#include "test_support.h"

#include <gtest/gtest.h>

namespace robustlens {
namespace {

using testing::TemporaryDirectory;

void expect_read_error(const std::string& path, const std::string& fragment, bool labels = false) {
  try {
    labels ? read_idx_labels(path) : read_idx_images(path);
    ADD_FAILURE() << "expected an error containing '" << fragment << "'";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find(path), std::string::npos) << "message must name the file";
  }
}

TEST(Idx, RoundTripsPlainAndGzip) {
  TemporaryDirectory dir;
  const Dataset data = testing::linear_rule_dataset(20, {1, 7, 5}, 4, 3);
  for (const bool compress : {false, true}) {
    write_idx_images(dir.file("images"), data.images, compress);
    write_idx_labels(dir.file("labels"), data.labels, compress);
    EXPECT_TRUE(at::equal(read_idx_images(dir.file("images")), data.images));
    EXPECT_TRUE(at::equal(read_idx_labels(dir.file("labels")), data.labels));
  }
}

TEST(Idx, RejectsTruncatedOversizedAndWrongMagic) {
  TemporaryDirectory dir;
  const Dataset data = testing::linear_rule_dataset(10, {1, 4, 4}, 3, 1);
  write_idx_images(dir.file("images"), data.images, false);
  write_idx_labels(dir.file("labels"), data.labels, false);
  const std::string bytes = testing::read_bytes(dir.file("images"));

  testing::write_bytes(dir.file("truncated"), bytes.substr(0, bytes.size() - 1));
  expect_read_error(dir.file("truncated"), "truncated");
  testing::write_bytes(dir.file("header_only"), bytes.substr(0, 10));
  expect_read_error(dir.file("header_only"), "truncated");
  testing::write_bytes(dir.file("oversized"), bytes + "extra");
  expect_read_error(dir.file("oversized"), "oversized");
  expect_read_error(dir.file("labels"), "magic");  // a labels file is not an images file
  expect_read_error(dir.file("images"), "magic", true);
  expect_read_error(dir.file("absent"), "does not exist");

  std::string huge = bytes.substr(0, 16);
  huge[4] = '\x7f';  // 2 billion images: rejected before any allocation
  testing::write_bytes(dir.file("huge"), huge);
  expect_read_error(dir.file("huge"), "beyond the supported");
}

TEST(Idx, RejectsTruncatedGzipStream) {
  TemporaryDirectory dir;
  write_idx_images(dir.file("images.gz"), testing::linear_rule_dataset(50, {1, 8, 8}, 3, 2).images, true);
  const std::string bytes = testing::read_bytes(dir.file("images.gz"));
  testing::write_bytes(dir.file("cut.gz"), bytes.substr(0, bytes.size() / 2));
  expect_read_error(dir.file("cut.gz"), "gzip");
}

TEST(Idx, ChecksTheHeaderBeforeInflatingTheRest) {
  // Two labels, then 64 MiB of zeros: a 64 KiB gzip file that inflates 1000-fold.
  TemporaryDirectory dir;
  std::vector<std::uint8_t> bomb{0, 0, 8, 1, 0, 0, 0, 2, 1, 0};
  bomb.resize(bomb.size() + (std::size_t{64} << 20), 0);
  write_byte_file(dir.file("bomb.gz"), bomb, true);
  ASSERT_LT(testing::read_bytes(dir.file("bomb.gz")).size(), std::size_t{1} << 20);
  expect_read_error(dir.file("bomb.gz"), "oversized", true);
  try {
    read_idx_labels(dir.file("bomb.gz"));
  } catch (const Error& error) {
    // The reader stops one byte past the promised payload: the file's true size is known only to one that inflated it
    // all.
    EXPECT_EQ(std::string(error.what()).find(std::to_string(bomb.size())), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace robustlens
