#include "robustlens/data/image_folder.h"

#include "robustlens/core/error.h"
#include "test_support.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace robustlens {
namespace {

Dataset sorted_by_class(const Dataset& data) {
  // The folder reader returns class by class; order the original the same way.
  const at::Tensor order = std::get<1>(data.labels.sort(/*stable=*/true, 0, false));
  return {data.name, data.images.index_select(0, order), data.labels.index_select(0, order), data.class_names};
}

TEST(ImageFolder, RoundTripsGreyAndRgbPng) {
  for (const std::int64_t channels : {1, 3}) {
    testing::TemporaryDirectory dir;
    const Dataset data = testing::linear_rule_dataset(9, {channels, 6, 5}, 3, 7);
    write_image_folder(dir.path(), data);
    const Dataset read = read_image_folder(dir.path(), {channels, 6, 5});
    // Files are read in name order inside each class; compare as sets per class.
    const Dataset expected = sorted_by_class(data);
    EXPECT_EQ(read.class_names, data.class_names);
    EXPECT_TRUE(at::equal(read.labels, expected.labels));
    EXPECT_TRUE(at::equal(std::get<0>(read.images.flatten(1).sum(1).sort()),
                          std::get<0>(expected.images.flatten(1).sum(1).sort())));
  }
}

TEST(ImageFolder, ResizesToTheDeclaredShape) {
  testing::TemporaryDirectory dir;
  write_image_folder(dir.path(), testing::linear_rule_dataset(4, {1, 8, 8}, 2, 1));
  const Dataset read = read_image_folder(dir.path(), {3, 4, 6});
  EXPECT_EQ(read.image_shape(), (std::vector<std::int64_t>{3, 4, 6}));
}

TEST(ImageFolder, RejectsCorruptImagesAndMissingClasses) {
  testing::TemporaryDirectory dir;
  write_image_folder(dir.path(), testing::linear_rule_dataset(4, {1, 8, 8}, 2, 1));
  testing::write_bytes(dir.file("0/broken.png"), "not a png");
  try {
    read_image_folder(dir.path(), {1, 8, 8});
    ADD_FAILURE() << "a corrupt PNG must be rejected";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("broken.png"), std::string::npos) << error.what();
  }
  testing::TemporaryDirectory one_class;
  std::filesystem::create_directories(one_class.file("only"));
  EXPECT_THROW(read_image_folder(one_class.path(), {1, 8, 8}), Error);
  EXPECT_THROW(read_image_folder(dir.path(), {2, 8, 8}), Error);  // 2 channels are not an image format
}

TEST(ImageFolder, AClassWithoutImagesKeepsItsLabelAndTheOthersTheirs) {
  testing::TemporaryDirectory dir;
  const Dataset data = testing::linear_rule_dataset(30, {1, 6, 6}, 3, 4);
  write_image_folder(dir.path(), data);
  std::filesystem::remove_all(dir.file("1"));
  std::filesystem::create_directories(dir.file("1"));  // the class exists, this split has none of it
  std::filesystem::create_directories(dir.file(".ipynb_checkpoints"));  // not a class
  const Dataset read = read_image_folder(dir.path(), {1, 6, 6});
  EXPECT_EQ(read.class_names, data.class_names);
  const Dataset expected = sorted_by_class(data);
  const at::Tensor kept = expected.labels.ne(1);
  EXPECT_TRUE(at::equal(read.labels, expected.labels.masked_select(kept))) << read.labels;
  EXPECT_EQ(read.summary().at("images_per_class").get<std::vector<std::int64_t>>(),
            (std::vector<std::int64_t>{expected.labels.eq(0).sum().item<std::int64_t>(), 0,
                                       expected.labels.eq(2).sum().item<std::int64_t>()}));
}

}  // namespace
}  // namespace robustlens
