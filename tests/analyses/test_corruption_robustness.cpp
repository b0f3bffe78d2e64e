#include "robustlens/analyses/corruption_robustness.h"

#include "robustlens/core/random.h"
#include "robustlens/data/corruptions.h"
#include "test_support.h"

#include <gtest/gtest.h>

namespace robustlens {
namespace {

using testing::expect_error;

CorruptionAccuracy accuracies(double clean, std::vector<std::vector<double>> corrupted) {
  CorruptionAccuracy result;
  result.clean = clean;
  result.corrupted = std::move(corrupted);
  return result;
}

TEST(CorruptionRobustness, ErrorsFollowTheImageNetCDefinitions) {
  const CorruptionAccuracy baseline = accuracies(0.9, {{0.8, 0.6}, {0.9, 0.9}});
  const CorruptionAccuracy model = accuracies(0.95, {{0.9, 0.8}, {0.7, 0.9}});
  const CorruptionErrors errors = corruption_errors(model, baseline);
  // CE: (0.1 + 0.2) / (0.2 + 0.4) and (0.3 + 0.1) / (0.1 + 0.1).
  EXPECT_NEAR(*errors.corruption_error[0], 0.5, 1e-12);
  EXPECT_NEAR(*errors.corruption_error[1], 2.0, 1e-12);
  EXPECT_NEAR(*errors.mean_corruption_error, 1.25, 1e-12);
  // Relative: (0.05 + 0.15) / (0.1 + 0.3); the baseline loses nothing under the second corruption.
  EXPECT_NEAR(*errors.relative_corruption_error[0], 0.5, 1e-12);
  EXPECT_FALSE(errors.relative_corruption_error[1].has_value());
  EXPECT_FALSE(errors.relative_mean_corruption_error.has_value());
  const nlohmann::json record = errors.to_json({"a", "b"});
  EXPECT_TRUE(record["relative_mean_corruption_error"].is_null());
  EXPECT_NEAR(record["per_corruption"]["b"]["corruption_error"].get<double>(), 2.0, 1e-12);
  // The baseline against itself: 1 wherever defined.
  const CorruptionErrors itself = corruption_errors(baseline, baseline);
  EXPECT_NEAR(*itself.mean_corruption_error, 1.0, 1e-12);
  EXPECT_NEAR(*itself.relative_corruption_error[0], 1.0, 1e-12);
  // A baseline without errors leaves CE undefined.
  EXPECT_FALSE(corruption_errors(model, accuracies(1, {{1, 1}, {0.5, 0.5}})).corruption_error[0].has_value());
  expect_error([&] { corruption_errors(model, accuracies(0.9, {{0.8, 0.6}})); }, "the baseline 1");
}

TEST(CorruptionRobustness, AThresholdModelHasItsClosedFormAccuracyAndModelsArePaired) {
  // Class 1 iff the mean pixel exceeds 0.5; images flat at 0.3 (class 0) or 0.7 (class 1).
  const std::int64_t pixels = 64;
  testing::LinearModel threshold(at::stack({at::zeros({pixels}), at::full({pixels}, 1.0 / pixels)}),
                                 at::tensor({0.0, -0.5}));
  Dataset data;
  data.name = "flat";
  data.labels = at::arange(400, at::kLong).remainder(2);
  data.images = (0.3 + 0.4 * data.labels.to(at::kFloat)).view({400, 1, 1, 1}).expand({400, 1, 8, 8}).contiguous();
  data.class_names = {"dark", "light"};
  const auto options = CorruptionRobustnessOptions().set_corruptions({"brightness", "contrast", "gaussian-noise"});
  const std::vector<CorruptionAccuracy> both = measure_corruption_accuracy({&threshold, &threshold}, data, options);
  ASSERT_EQ(both.size(), 2u);
  EXPECT_EQ(both[0].clean, 1.0);
  // Brightness adds 0.05, 0.1, 0.15, 0.2, 0.3: the dark images cross 0.5 at the last severity only.
  EXPECT_EQ(both[0].corrupted[0], (std::vector<double>{1, 1, 1, 1, 0.5}));
  // Contrast keeps flat images as they are.
  EXPECT_EQ(both[0].corrupted[1], (std::vector<double>{1, 1, 1, 1, 1}));
  // Noise of σ ≤ 0.1 on the mean of 64 pixels (σ/8) never moves it by 0.2.
  EXPECT_EQ(both[0].corrupted[2], (std::vector<double>{1, 1, 1, 1, 1}));
  EXPECT_NEAR(both[0].mean_corrupted(), 14.5 / 15, 1e-12);
  EXPECT_EQ(both[1].corrupted, both[0].corrupted);

  // Every model sees the same corrupted images: one model whose accuracy depends on the noise draw, measured
  // alone and beside another, gets the same numbers.
  at::Tensor first_pixel = at::zeros({pixels});
  first_pixel[0] = 1;
  testing::LinearModel pixel(at::stack({at::zeros({pixels}), first_pixel}), at::tensor({0.0, -0.5}));
  const auto noisy = CorruptionRobustnessOptions().set_corruptions({"gaussian-noise", "impulse-noise"}).set_seed(3);
  const auto alone = measure_corruption_accuracy({&pixel}, data, noisy);
  const auto beside = measure_corruption_accuracy({&threshold, &pixel}, data, noisy);
  EXPECT_EQ(alone[0].corrupted, beside[1].corrupted);
  EXPECT_LT(alone[0].corrupted[1][4], 1.0);  // 7% of the first pixels become 0 or 1: about 14 of 400 cross 0.5
  // The numbers are the accuracies on corrupt()'s images with the stream of each corruption and severity.
  const Corruption impulse("impulse-noise", 5);
  const at::Tensor images = corrupt(data.images, impulse, make_generator(derive_seed(3, impulse.stream())));
  const double expected = (pixel.forward(images).argmax(1) == data.labels).to(at::kDouble).mean().item<double>();
  EXPECT_DOUBLE_EQ(alone[0].corrupted[1][4], expected);
}

TEST(CorruptionRobustness, OptionsAreChecked) {
  expect_error([] { CorruptionRobustnessOptions().set_corruptions({}).check(); }, "at least one corruption");
  expect_error([] { CorruptionRobustnessOptions().set_corruptions({"fog"}).check(); }, "'fog' is unknown");
  expect_error([] { CorruptionRobustnessOptions().set_severities({0}).check(); }, "severities: 1 to 5, got 0");
  expect_error([] { CorruptionRobustnessOptions().set_severities({2, 2}).check(); }, "each at most once");
  expect_error([] { CorruptionRobustnessOptions().set_batch_size(0).check(); }, "batch_size must be >= 1");
  // Scores rising with the accuracy under corruptions, the drop falling: the claim, in both forms.
  std::vector<CorruptionAccuracy> models;
  for (const double a : {0.5, 0.6, 0.7, 0.8}) models.push_back(accuracies(0.9, {{a, a}}));
  const SpectralCorruptionCorrelation monotone =
      spectral_corruption_correlation({0.1, 0.2, 0.3, 0.4}, {0.4, 0.3, 0.2, 0.1}, models, 0);
  EXPECT_NEAR(monotone.signed_vs_accuracy.spearman, 1.0, 1e-12);
  EXPECT_NEAR(monotone.unsigned_vs_accuracy.spearman, -1.0, 1e-12);
  EXPECT_NEAR(monotone.signed_vs_drop.spearman, -1.0, 1e-12);
  EXPECT_NEAR(monotone.unsigned_vs_drop.spearman, 1.0, 1e-12);
}

}  // namespace
}  // namespace robustlens
