#include "robustlens/data/distractor.h"

#include "robustlens/core/error.h"
#include "robustlens/data/dataset_source.h"
#include "test_support.h"

#include <gtest/gtest.h>

namespace robustlens {
namespace {

TEST(DistractorData, ItemInOneHalfTheSameGlyphInTheOtherAndTheMaskMarksTheItem) {
  const Dataset items = testing::linear_rule_dataset(64, {1, 6, 5}, 3, 0);
  const Dataset data = make_distractor_dataset(items, 7);
  ASSERT_EQ(data.images.sizes(), (at::IntArrayRef{64, 1, 12, 5}));
  ASSERT_EQ(data.signal_mask.sizes(), (at::IntArrayRef{64, 1, 12, 5}));
  EXPECT_TRUE(data.labels.equal(items.labels));
  const at::Tensor glyph = distractor_glyph(6, 5);
  EXPECT_GT(glyph.sum().item<float>(), 0.0f);
  std::int64_t on_top = 0;
  for (std::int64_t i = 0; i < data.size(); ++i) {
    const bool top = data.signal_mask[i][0][0][0].item<float>() == 1.0f;
    on_top += top;
    const at::Tensor item_half = data.images[i][0].slice(0, top ? 0 : 6, top ? 6 : 12);
    const at::Tensor glyph_half = data.images[i][0].slice(0, top ? 6 : 0, top ? 12 : 6);
    EXPECT_TRUE(item_half.equal(items.images[i][0]));
    EXPECT_TRUE(glyph_half.equal(glyph));
    EXPECT_EQ(data.signal_mask[i].sum().item<float>(), 30.0f);
  }
  EXPECT_GT(on_top, 16);
  EXPECT_LT(on_top, 48);
  EXPECT_TRUE(make_distractor_dataset(items, 7).images.equal(data.images));
  EXPECT_FALSE(make_distractor_dataset(items, 8).signal_mask.equal(data.signal_mask));
  data.validate();
  EXPECT_TRUE(data.subset({5, 2}).signal_mask.equal(at::stack({data.signal_mask[5], data.signal_mask[2]})));
}

TEST(DistractorData, ASpecWrapsAnyDatasetAndABadMaskIsRefused) {
  testing::TemporaryDirectory directory;
  const Dataset train = testing::linear_rule_dataset(20, {1, 8, 8}, 2, 0),
                test = testing::linear_rule_dataset(10, {1, 8, 8}, 2, 1);
  testing::write_idx_dataset(directory.path(), train, test);
  const Dataset loaded = load_dataset("distractor:idx:" + directory.path(), Split::test);
  EXPECT_EQ(loaded.image_shape(), (std::vector<std::int64_t>{1, 16, 8}));
  EXPECT_EQ(loaded.name, "distractor:idx:" + directory.path() + " (test)");
  EXPECT_TRUE(loaded.images.equal(make_distractor_dataset(test, distractor_placement_seed(Split::test)).images));
  EXPECT_THROW(load_dataset("distractor:nothing", Split::test), Error);

  Dataset broken = loaded;
  broken.signal_mask = broken.signal_mask.slice(0, 0, 3);
  EXPECT_THROW(broken.validate(), Error);
  EXPECT_THROW(distractor_glyph(2, 8), Error);
}

}  // namespace
}  // namespace robustlens

namespace robustlens {
namespace {

TEST(GlyphData, IdenticalGlyphImagesOfOneClassWithTheShapeTheSpecGives) {
  const Dataset glyphs = make_glyph_dataset({3, 8, 6}, 4);
  ASSERT_EQ(glyphs.images.sizes(), (at::IntArrayRef{4, 3, 8, 6}));
  for (std::int64_t i = 0; i < 4; ++i) {
    for (std::int64_t c = 0; c < 3; ++c) EXPECT_TRUE(glyphs.images[i][c].equal(distractor_glyph(8, 6)));
  }
  EXPECT_EQ(glyphs.class_names, (std::vector<std::string>{"glyph"}));
  EXPECT_EQ(glyphs.labels.sum().item<std::int64_t>(), 0);
  const Dataset test = load_dataset("glyphs", Split::test);
  EXPECT_EQ(test.size(), 2000);
  EXPECT_EQ(test.image_shape(), (std::vector<std::int64_t>{1, 28, 28}));
  EXPECT_EQ(load_dataset("glyphs:1,10,12", Split::train).size(), 10000);
  testing::expect_error([] { parse_dataset_spec("glyphs:2,8,8"); }, "dataset spec 'glyphs:2,8,8': image shape spec");
}

}  // namespace
}  // namespace robustlens
