#include "robustlens/data/corruptions.h"

#include "robustlens/core/error.h"
#include "robustlens/core/random.h"
#include "robustlens/data/dataset_source.h"
#include "test_support.h"

#include <gtest/gtest.h>

#include <cmath>

namespace robustlens {
namespace {

using testing::expect_error;

/// Smooth images with edges (blobs and bars), the kind JPEG and blurs are made for.
at::Tensor smooth_images(std::int64_t n, std::int64_t channels) {
  const at::Tensor rows = at::arange(28, at::kFloat).view({1, 1, 28, 1});
  const at::Tensor columns = at::arange(28, at::kFloat).view({1, 1, 1, 28});
  const at::Tensor centre = at::arange(n, at::kFloat).view({n, 1, 1, 1}).remainder(10) + 9;
  const at::Tensor blob = at::exp(-((rows - centre).pow(2) + (columns - 14).pow(2)) / 40);
  const at::Tensor bar = (columns > centre).to(at::kFloat) * 0.4;
  const at::Tensor shade = at::linspace(0.5, 1, channels).view({1, channels, 1, 1});
  return ((0.6 * blob + bar) * shade).clamp(0, 1);
}

bool is_random(const std::string& name) {
  return name == "gaussian-noise" || name == "shot-noise" || name == "impulse-noise" || name == "motion-blur" ||
         name == "elastic";
}

TEST(Corruptions, EveryOneIsDeterministicForAGeneratorStaysInTheUnitRangeAndChangesTheImages) {
  for (const std::int64_t channels : {1, 3}) {
    const at::Tensor images = smooth_images(6, channels);
    for (const std::string& name : corruption_names()) {
      for (int severity = 1; severity <= kMaxCorruptionSeverity; ++severity) {
        const Corruption corruption(name, severity);
        SCOPED_TRACE(corruption.label() + " channels " + std::to_string(channels));
        const at::Tensor a = corrupt(images, corruption, make_generator(7));
        ASSERT_EQ(a.sizes(), images.sizes());
        EXPECT_TRUE(a.equal(corrupt(images, corruption, make_generator(7))));
        EXPECT_GE(a.min().item<float>(), 0.0f);
        EXPECT_LE(a.max().item<float>(), 1.0f);
        EXPECT_GT((a - images).abs().max().item<float>(), 1e-3f);
        EXPECT_EQ(is_random(name), !a.equal(corrupt(images, corruption, make_generator(8))));
      }
    }
  }
}

TEST(Corruptions, NoiseHasTheStatedDistributionAtEverySeverity) {
  const at::Tensor grey = at::full({4, 1, 100, 100}, 0.4f);
  const double n = 40000;
  for (int severity = 1; severity <= kMaxCorruptionSeverity; ++severity) {
    SCOPED_TRACE(severity);
    // Gaussian: x + N(0, σ²); 0.4 is 4σ from either bound, so clipping is negligible.
    const double sigma = Corruption("gaussian-noise", severity).parameters()["sigma"];
    const at::Tensor gaussian = corrupt(grey, {"gaussian-noise", severity}, make_generator(1)) - 0.4;
    EXPECT_NEAR(gaussian.std().item<double>(), sigma, 4 * sigma / std::sqrt(2 * n));
    EXPECT_NEAR(gaussian.mean().item<double>(), 0, 4 * sigma / std::sqrt(n));
    // Shot: Poisson(x·λ)/λ has mean x and variance x/λ.
    const double photons = Corruption("shot-noise", severity).parameters()["photons_per_unit"];
    const at::Tensor shot = corrupt(grey, {"shot-noise", severity}, make_generator(2));
    EXPECT_NEAR(shot.var().item<double>() / (0.4 / photons), 1, 0.03);
    EXPECT_NEAR(shot.mean().item<double>(), 0.4, 4 * std::sqrt(0.4 / photons / n));
    // Impulse: a share `amount` of the pixels becomes 0 or 1, half each.
    const double amount = Corruption("impulse-noise", severity).parameters()["amount"];
    const at::Tensor impulse = corrupt(grey, {"impulse-noise", severity}, make_generator(3));
    const double hit = (impulse != 0.4f).to(at::kDouble).mean().item<double>();
    EXPECT_NEAR(hit, amount, 4 * std::sqrt(amount / n));
    EXPECT_EQ(((impulse != 0.4f) & (impulse != 0.0f) & (impulse != 1.0f)).sum().item<std::int64_t>(), 0);
    EXPECT_NEAR((impulse == 1.0f).to(at::kDouble).mean().item<double>() / hit, 0.5, 0.1);
  }
}

TEST(Corruptions, DefocusBlurIsAConvolutionWithTheSmoothedDisk) {
  // Radius below one pixel: the disk is the centre alone, so the kernel is the 3×3 Gaussian of the alias sigma.
  const at::Tensor g = at::exp(-at::tensor({1.0, 0.0, 1.0}) / (2 * 0.4 * 0.4));
  const at::Tensor expected = at::outer(g, g) / at::outer(g, g).sum();
  EXPECT_TRUE(at::allclose(defocus_kernel(0.3, 0.4).to(at::kDouble), expected, 1e-6, 1e-7));
  // Radius 1.5 with almost no alias blur: the 3×3 block (corners at distance √2 < 1.5), a ninth each.
  const at::Tensor block = defocus_kernel(1.5, 0.1);
  ASSERT_EQ(block.sizes(), (at::IntArrayRef{5, 5}));
  EXPECT_NEAR(block.slice(0, 1, 4).slice(1, 1, 4).sum().item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(block[2][2].item<double>(), 1.0 / 9, 1e-6);
  // Radius 1: the centre and its four neighbours.
  const at::Tensor plus = defocus_kernel(1, 1e-3);
  ASSERT_EQ(plus.sizes(), (at::IntArrayRef{3, 3}));
  EXPECT_NEAR(plus[1][1].item<double>(), 0.2, 1e-6);
  EXPECT_NEAR(plus[0][1].item<double>(), 0.2, 1e-6);
  EXPECT_NEAR(plus[0][0].item<double>(), 0.0, 1e-6);
  // A point in the interior spreads into the kernel itself; the severity uses the kernel of its parameters.
  at::Tensor point = at::zeros({1, 1, 28, 28});
  point[0][0][10][12] = 1;
  for (int severity = 1; severity <= kMaxCorruptionSeverity; ++severity) {
    const nlohmann::json p = Corruption("defocus-blur", severity).parameters();
    const at::Tensor kernel = defocus_kernel(p["disk_radius"], p["alias_sigma"]);
    const std::int64_t half = kernel.size(0) / 2;
    const at::Tensor spread = corrupt(point, {"defocus-blur", severity}, make_generator(0))[0][0];
    EXPECT_TRUE(at::allclose(spread.slice(0, 10 - half, 11 + half).slice(1, 12 - half, 13 + half), kernel, 1e-5, 1e-7));
    EXPECT_NEAR(spread.sum().item<double>(), 1.0, 1e-5);
  }
}

TEST(Corruptions, MotionBlurIsTheOneSidedGaussianLineAlongTheAngle) {
  const at::Tensor weights = motion_blur_weights(6, 1);
  ASSERT_EQ(weights.size(0), 13);
  for (std::int64_t i = 0; i < 13; ++i) {
    EXPECT_NEAR(weights[i].item<double>() / weights[0].item<double>(), std::exp(-i * i / 2.0), 1e-6);
  }
  EXPECT_NEAR(weights.sum().item<double>(), 1, 1e-6);
  // Output (r, c) reads (r + round(i sin θ), c + round(i cos θ)): a point spreads backwards along the direction.
  at::Tensor point = at::zeros({2, 1, 28, 28});
  point.select(2, 20).select(2, 20).fill_(1);
  const at::Tensor blurred = motion_blur(point, 6, 2, {0.0, 90.0});
  const at::Tensor wide = motion_blur_weights(6, 2);
  for (std::int64_t i = 0; i < 13; ++i) {
    EXPECT_NEAR(blurred[0][0][20][20 - i].item<double>(), wide[i].item<double>(), 1e-6);
    EXPECT_NEAR(blurred[1][0][20 - i][20].item<double>(), wide[i].item<double>(), 1e-6);
  }
  EXPECT_NEAR(blurred[0].sum().item<double>(), 1, 1e-5);
  // Edges repeat: a constant image stays constant.
  EXPECT_TRUE(at::allclose(motion_blur(at::full({1, 3, 9, 9}, 0.3f), 9, 2.5, {33.0}), at::full({1, 3, 9, 9}, 0.3f)));
}

TEST(Corruptions, BrightnessRaisesTheHsvValueAndContrastIsTheLinearMapAboutTheMean) {
  // Two pixels, (0.2, 0.4, 0.6) and black.
  const at::Tensor pixels = at::tensor({0.2f, 0.0f, 0.4f, 0.0f, 0.6f, 0.0f}).view({1, 3, 1, 2});
  const at::Tensor bright = corrupt(pixels, {"brightness", 5}, make_generator(0));  // value + 0.3
  // V 0.6 → 0.9 with hue and saturation kept: every channel times 1.5. Black becomes grey 0.3.
  const at::Tensor expected = at::tensor({0.3f, 0.3f, 0.6f, 0.3f, 0.9f, 0.3f}).view({1, 3, 1, 2});
  EXPECT_TRUE(at::allclose(bright, expected, 1e-6, 1e-6)) << bright;
  const at::Tensor grey = smooth_images(3, 1);
  for (int severity = 1; severity <= kMaxCorruptionSeverity; ++severity) {
    const double delta = Corruption("brightness", severity).parameters()["value_added"];
    EXPECT_TRUE(at::allclose(corrupt(grey, {"brightness", severity}, make_generator(0)), (grey + delta).clamp(0, 1)));
    const double factor = Corruption("contrast", severity).parameters()["factor"];
    const at::Tensor mean = grey.mean({2, 3}, true);
    EXPECT_TRUE(at::allclose(corrupt(grey, {"contrast", severity}, make_generator(0)),
                             ((grey - mean) * factor + mean).clamp(0, 1), 1e-6, 1e-6));
  }
}

TEST(Corruptions, PixelateAveragesBlocksAndBoxResamplingFollowsPil) {
  // Halving: output pixel o averages input pixels 2o and 2o+1; doubling back repeats each pixel twice.
  const at::Tensor down = box_resampling_matrix(28, 14);
  for (std::int64_t o = 0; o < 14; ++o) {
    EXPECT_NEAR(down[o][2 * o].item<double>(), 0.5, 1e-7);
    EXPECT_NEAR(down[o][2 * o + 1].item<double>(), 0.5, 1e-7);
    EXPECT_NEAR(down[o].sum().item<double>(), 1, 1e-6);
  }
  const at::Tensor images = smooth_images(4, 3);
  const at::Tensor blocks = at::avg_pool2d(images, {2, 2}).repeat_interleave(2, 2).repeat_interleave(2, 3);
  EXPECT_TRUE(at::allclose(pixelate(images, 0.5), blocks, 1e-5, 1e-6));
  // 28 → 26 (severity 1): PIL's BOX takes the pixels whose centres lie within 28/26/2 of the output centre.
  const at::Tensor rows = box_resampling_matrix(28, 26);
  EXPECT_NEAR(rows[0][0].item<double>(), 1.0, 1e-7);    // centre 0.538: only pixel 0 (centre 0.5) is within 0.538
  EXPECT_NEAR(rows[13][14].item<double>(), 1.0, 1e-7);  // centre 14.54: only pixel 14 (centre 14.5)
  EXPECT_NEAR(rows[6][6].item<double>(), 0.5, 1e-7);    // centre 6.5·28/26 = 7: pixels 6 and 7 (6.5, 7.5)
  EXPECT_NEAR(rows[6][7].item<double>(), 0.5, 1e-7);
  // Constant images stay constant under every severity.
  for (int severity = 1; severity <= kMaxCorruptionSeverity; ++severity) {
    EXPECT_TRUE(at::allclose(corrupt(at::full({1, 1, 28, 28}, 0.7f), {"pixelate", severity}, make_generator(0)),
                             at::full({1, 1, 28, 28}, 0.7f)));
  }
}

TEST(Corruptions, JpegErrorGrowsWithSeverityAndElasticKeepsFlatImagesFlat) {
  const at::Tensor images = smooth_images(20, 1);
  double previous = 0;
  for (int severity = 1; severity <= kMaxCorruptionSeverity; ++severity) {
    const at::Tensor decoded = corrupt(images, {"jpeg", severity}, make_generator(0));
    EXPECT_TRUE(at::allclose(decoded * 255, (decoded * 255).round(), 0, 1e-3));  // bytes
    const double error = (decoded - images).pow(2).mean().sqrt().item<double>();
    EXPECT_GT(error, previous) << "severity " << severity;
    previous = error;
  }
  EXPECT_LT((jpeg_round_trip(images, 100) - images).abs().mean().item<double>(), 2.0 / 255);
  EXPECT_GT(previous, 2 * (jpeg_round_trip(images, 95) - images).pow(2).mean().sqrt().item<double>());
  for (int severity = 1; severity <= kMaxCorruptionSeverity; ++severity) {
    const at::Tensor flat = at::full({2, 3, 28, 28}, 0.25f);
    EXPECT_TRUE(at::allclose(corrupt(flat, {"elastic", severity}, make_generator(4)), flat, 1e-5, 1e-6));
  }
  // Elastic moves pixels by about the stated amounts: on a ramp (value = column/27), every output pixel reads a
  // column near its own. At severity 5 the displacement field is at most 0.1·28 = 2.8 pixels, and the affine
  // moves the square's corners by at most 0.03·28 = 0.84 (by a few times that at the image's corners).
  const at::Tensor ramp = (at::arange(28, at::kFloat) / 27).expand({4, 1, 28, 28}).contiguous();
  const at::Tensor moved = (corrupt(ramp, {"elastic", 5}, make_generator(5)) - ramp).abs() * 27;
  EXPECT_GT(moved.max().item<double>(), 0.3);
  EXPECT_LT(moved.max().item<double>(), 2.8 + 5 * 0.84);
}

TEST(Corruptions, NamesAndSeveritiesAreCheckedAndADataSpecCorruptsASplit) {
  expect_error([] { Corruption("fog", 2); }, "corruption 'fog' is unknown (expected one of gaussian-noise");
  expect_error([] { Corruption("contrast", 6); }, "severity must be 1 to 5, got 6");
  expect_error([] { parse_corruption("contrast"); }, "expected NAME:SEVERITY");
  expect_error([] { parse_corruption("contrast:x"); }, "'x' is not an integer");
  EXPECT_EQ(parse_corruption("jpeg:4").parameters()["quality"], 50);

  testing::TemporaryDirectory dir;
  const Dataset train = testing::linear_rule_dataset(30, {1, 8, 8}, 3, 1);
  const Dataset test = testing::linear_rule_dataset(12, {1, 8, 8}, 3, 2);
  testing::write_idx_dataset(dir.path(), train, test);
  const std::string spec = "idx:" + dir.path() + "+corrupt:gaussian-noise:2";
  const Dataset corrupted = load_dataset(spec, Split::test);
  EXPECT_TRUE(corrupted.labels.equal(test.labels));
  EXPECT_TRUE(corrupted.images.equal(
      corrupt(test.images, {"gaussian-noise", 2}, make_generator(corruption_seed(Split::test, "gaussian-noise:2")))));
  EXPECT_TRUE(load_dataset(spec, Split::test).images.equal(corrupted.images));
  EXPECT_NE(corruption_seed(Split::train, "gaussian-noise:2"), corruption_seed(Split::test, "gaussian-noise:2"));
  EXPECT_NE(corruption_seed(Split::test, "gaussian-noise:3"), corruption_seed(Split::test, "gaussian-noise:2"));
  const Dataset both = load_dataset("distractor:idx:" + dir.path() + "+corrupt:contrast:1", Split::test);
  EXPECT_EQ(both.image_shape(), (std::vector<std::int64_t>{1, 16, 8}));
  expect_error([&] { parse_dataset_spec(spec + "+corrupt:jpeg:1"); }, "one corruption per dataset");
  expect_error([&] { parse_dataset_spec("fashion-mnist+corrupt:fog:1"); }, "'fog' is unknown");
}

}  // namespace
}  // namespace robustlens
