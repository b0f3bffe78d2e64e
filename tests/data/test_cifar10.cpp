#include "robustlens/data/cifar10.h"

#include "robustlens/core/error.h"
#include "test_support.h"

#include <gtest/gtest.h>

namespace robustlens {
namespace {

TEST(Cifar10, RoundTripsABatch) {
  testing::TemporaryDirectory dir;
  const Dataset data = testing::linear_rule_dataset(12, {3, 32, 32}, 10, 5);
  write_cifar10_batch(dir.file("test_batch.bin"), data.images, data.labels);
  const auto [images, labels] = read_cifar10_batch(dir.file("test_batch.bin"));
  EXPECT_TRUE(at::equal(images, data.images));
  EXPECT_TRUE(at::equal(labels, data.labels));
  EXPECT_EQ(cifar10_class_names(dir.path()).front(), "airplane");
}

TEST(Cifar10, RejectsTruncatedOversizedAndForeignFiles) {
  testing::TemporaryDirectory dir;
  const Dataset data = testing::linear_rule_dataset(3, {3, 32, 32}, 10, 5);
  write_cifar10_batch(dir.file("b.bin"), data.images, data.labels);
  const std::string bytes = testing::read_bytes(dir.file("b.bin"));
  testing::write_bytes(dir.file("cut.bin"), bytes.substr(0, bytes.size() - 100));
  EXPECT_THROW(read_cifar10_batch(dir.file("cut.bin")), Error);
  testing::write_bytes(dir.file("long.bin"), bytes + "x");
  EXPECT_THROW(read_cifar10_batch(dir.file("long.bin")), Error);
  std::string bad_label = bytes;
  bad_label[0] = 42;
  testing::write_bytes(dir.file("label.bin"), bad_label);
  try {
    read_cifar10_batch(dir.file("label.bin"));
    ADD_FAILURE() << "a label of 42 must be rejected";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("label 42"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace robustlens
