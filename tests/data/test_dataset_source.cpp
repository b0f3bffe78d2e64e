#include "robustlens/data/dataset_source.h"

#include "robustlens/core/error.h"
#include "test_support.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

namespace robustlens {
namespace {

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

TEST(DatasetSource, ReadsIdxFoldersWithClassNames) {
  testing::TemporaryDirectory dir;
  const Dataset train = testing::linear_rule_dataset(30, {1, 5, 5}, 3, 1);
  const Dataset test = testing::linear_rule_dataset(10, {1, 5, 5}, 3, 2);
  testing::write_idx_dataset(dir.path(), train, test);
  testing::write_bytes(dir.file("classes.txt"), "cat\ndog\nbird\n");
  const Dataset read = load_dataset("idx:" + dir.path(), Split::test);
  EXPECT_TRUE(at::equal(read.images, test.images));
  EXPECT_EQ(read.class_names, (std::vector<std::string>{"cat", "dog", "bird"}));
  EXPECT_EQ(load_dataset("idx:" + dir.path(), Split::train).size(), 30);
}

TEST(DatasetSource, ExplainsHowToInstallMissingFashionMnist) {
  setenv("ROBUSTLENS_FASHION_MNIST_DIR", "/nonexistent/fashion", 1);
  const std::string message = error_of([] { load_dataset("fashion-mnist", Split::test); });
  unsetenv("ROBUSTLENS_FASHION_MNIST_DIR");
  EXPECT_NE(message.find("apt-get install dataset-fashion-mnist"), std::string::npos) << message;
}

TEST(DatasetSource, LoadsDebianFashionMnist) {
  // Installed by scripts/setup.sh (package dataset-fashion-mnist).
  ASSERT_TRUE(std::filesystem::is_directory(default_fashion_mnist_directory()));
  const Dataset test = load_dataset("fashion-mnist", Split::test);
  EXPECT_EQ(test.size(), 10000);
  EXPECT_EQ(test.image_shape(), (std::vector<std::int64_t>{1, 28, 28}));
  EXPECT_EQ(test.class_names.at(9), "Ankle boot");
  EXPECT_EQ(test.labels.bincount().min().item<std::int64_t>(), 1000);
}

TEST(DatasetSource, RejectsUnknownSpecs) {
  EXPECT_NE(error_of([] { load_dataset("imagenet:/x", Split::test); }).find("unknown dataset kind"), std::string::npos);
  EXPECT_NE(error_of([] { load_dataset("mnist", Split::test); }).find("expected fashion-mnist"), std::string::npos);
  EXPECT_NE(error_of([] { load_dataset("mnist:/nonexistent", Split::test); }).find("does not exist"),
            std::string::npos);
}

TEST(Dataset, ValidationCatchesNanPixelsAndBadLabels) {
  Dataset data = testing::linear_rule_dataset(5, {1, 3, 3}, 3, 1);
  data.images[2][0][1][1] = std::nanf("");
  EXPECT_NE(error_of([&] { data.validate(); }).find("NaN"), std::string::npos);
  data = testing::linear_rule_dataset(5, {1, 3, 3}, 3, 1);
  data.labels[0] = 7;
  EXPECT_NE(error_of([&] { data.validate(); }).find("labels must lie in"), std::string::npos);
  data = testing::linear_rule_dataset(5, {1, 3, 3}, 3, 1);
  data.images[0][0][0][0] = 1.5f;
  EXPECT_NE(error_of([&] { data.validate(); }).find("[0,1]"), std::string::npos);
}

TEST(DatasetSource, SpecsAreParsedWithoutTouchingTheDisk) {
  const DatasetSpec spec = parse_dataset_spec("distractor:folder:/no/such/place");
  EXPECT_TRUE(spec.distractor);
  EXPECT_EQ(spec.kind, "folder");
  EXPECT_EQ(spec.directory, "/no/such/place");
  EXPECT_EQ(parse_dataset_spec("fashion-mnist").directory, "");
  EXPECT_NE(error_of([] { parse_dataset_spec("distractor:distractor:fashion-mnist"); }).find("cannot be nested"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              parse_dataset_spec("folder:");
            }).find("expected fashion-mnist, synthetic-subspace:START, or KIND:DIR"),
            std::string::npos);
}

TEST(DatasetSource, ImageShapesAreGreyOrRgbAndAtMostTheDocumentedSide) {
  EXPECT_EQ(parse_image_shape("3,32,32"), (std::vector<std::int64_t>{3, 32, 32}));
  EXPECT_NE(error_of([] { parse_image_shape("2,32,32"); }).find("C must be 1 (grey) or 3 (RGB), got 2"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_image_shape("1,4097,8"); }).find("at most 4096, got 4097×8"), std::string::npos);
  EXPECT_NE(error_of([] { parse_image_shape("1,8,8,8"); }).find("expected three numbers"), std::string::npos);
  EXPECT_NE(error_of([] { parse_image_shape("1,x,8"); }).find("'x' is not a positive integer"), std::string::npos);
}

}  // namespace
}  // namespace robustlens

namespace robustlens {
namespace {

TEST(DatasetClasses, LeavingClassesOutRenumbersTheRestAndTheHeldOutKeepTheirLabels) {
  Dataset data{"d", at::zeros({6, 1, 2, 2}), at::tensor({0, 1, 2, 3, 1, 3}, at::kLong), {"a", "b", "c", "d"}, {}};
  data.images += at::arange(6, at::kFloat).view({6, 1, 1, 1}) / 10;
  const Dataset kept = data.without_classes({0, 2});
  EXPECT_EQ(kept.class_names, (std::vector<std::string>{"b", "d"}));
  EXPECT_TRUE(kept.labels.equal(at::tensor({0, 1, 0, 1}, at::kLong)));
  EXPECT_TRUE(at::allclose(kept.images.flatten(1).select(1, 0) * 10, at::tensor({1.0f, 3.0f, 4.0f, 5.0f})));
  EXPECT_EQ(kept.name, "d without classes 0,2");
  kept.validate();
  const Dataset held_out = data.only_classes({0, 2});
  EXPECT_TRUE(held_out.labels.equal(at::tensor({0, 2}, at::kLong)));
  EXPECT_EQ(held_out.class_names, data.class_names);
  testing::expect_error([&] { data.without_classes({4}); }, "class 4 is out of range for dataset 'd' of 4 classes");
  testing::expect_error([&] { data.without_classes({0, 1, 2}); }, "leaves fewer than 2 of its 4 classes");
}

}  // namespace
}  // namespace robustlens
