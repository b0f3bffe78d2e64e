#include "robustlens/analyses/spectral_importance.h"

#include "robustlens/core/error.h"
#include "robustlens/core/random.h"
#include "robustlens/models/load_model.h"
#include "test_support.h"

#include <gtest/gtest.h>
#include <torch/utils.h>

namespace robustlens {
namespace {

TEST(SpectralScore, UnitValuesOfTheSpec) {
  EXPECT_NEAR(spectral_score_baseline(8, 0.75), 0.29911, 5e-6);
  EXPECT_NEAR(spectral_robustness_score(std::vector<double>(8, 1.0 / 8), 0.75), 0.0, 1e-12);
  std::vector<double> low(8, 0.0), high(8, 0.0);
  low[0] = 1;
  high[7] = 1;
  EXPECT_NEAR(spectral_robustness_score(low, 0.75), 0.52172, 5e-6);
  EXPECT_NEAR(spectral_robustness_score(high, 0.75), 0.30016, 5e-6);
  // The signed score tells the two apart: low bands positive, high bands negative.
  EXPECT_NEAR(signed_spectral_score(low, 0.75), 0.52172, 5e-6);
  EXPECT_NEAR(signed_spectral_score(high, 0.75), -0.30016, 5e-6);
  EXPECT_NEAR(signed_spectral_score(std::vector<double>(8, 1.0 / 8), 0.75), 0.0, 1e-12);
}

TEST(Shapley, AdditiveGameGivesItsWeightsAndEfficiencyHolds) {
  const std::vector<double> a{0.5, -1.0, 2.0, 0.25};
  std::vector<double> additive(16), random_game(16);
  at::Tensor noise = at::randn({16}, at::kDouble);
  for (std::uint32_t s = 0; s < 16; ++s) {
    for (int i = 0; i < 4; ++i) additive[s] += ((s >> i) & 1u) ? a[i] : 0.0;
    random_game[s] = noise[s].item<double>();
  }
  const auto phi = shapley_values(additive, 4);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(phi[i], a[i], 1e-12);
  const auto psi_random = shapley_values(random_game, 4);
  double sum = 0;
  for (const double p : psi_random) sum += p;
  EXPECT_NEAR(sum, random_game[15] - random_game[0], 1e-12);  // efficiency axiom
  const auto psi = importance_distribution(phi);
  EXPECT_NEAR(psi[1], 0.0, 1e-12);
  EXPECT_NEAR(psi[0] + psi[1] + psi[2] + psi[3], 1.0, 1e-12);
  EXPECT_THROW(shapley_values(additive, 3), Error);
}

TEST(FourierBands, TileTheSpectrumWithTheReferenceRingSizes) {
  const at::Tensor masks = fourier_band_masks(224, 224, 8);
  EXPECT_TRUE(at::equal(masks.sum(0), at::ones({224, 224})));
  for (std::int64_t i = 0; i < 8; ++i) EXPECT_EQ(masks[i].sum().item<float>(), 784.0f * (2 * i + 1)) << "band " << i;
  const at::Tensor odd = fourier_band_masks(28, 31, 5);  // non-square: the last band takes the rest
  EXPECT_TRUE(at::equal(odd.sum(0), at::ones({28, 31})));
  EXPECT_EQ(odd[0][14][15].item<float>(), 1.0f);  // DC (after fftshift) is in band 0
  EXPECT_TRUE(at::equal(fourier_band_masks(20, 20, 4, true).sum(0), at::ones({20, 20})));
}

TEST(FourierBands, BandImagesSumToTheImage) {
  const at::Tensor x = at::rand({3, 2, 12, 10}, at::kDouble);
  const at::Tensor bands = band_images(x, fourier_band_masks(12, 10, 4).to(at::kDouble));
  EXPECT_TRUE(at::allclose(at::real(bands.sum(1)), x, 1e-10, 1e-12));
  EXPECT_LT(at::imag(bands.sum(1)).abs().max().item<double>(), 1e-10);
  const at::Tensor masks = fourier_band_masks(12, 10, 4);
  const at::Tensor full =
      coalition_images(bands, fill_band_images(bands, masks, CoalitionFill::zero), 15, CoalitionOutput::real_clip);
  EXPECT_TRUE(at::allclose(full, x.to(at::kFloat), 1e-5, 1e-6));
  EXPECT_EQ(coalition_images(bands, fill_band_images(bands, masks, CoalitionFill::donor), 0, CoalitionOutput::reference)
                .abs()
                .max()
                .item<double>(),
            0.0);
}

TEST(FourierBands, GrayCodeEnumerationMatchesDirectSumsForEveryFill) {
  torch::manual_seed(4);
  const at::Tensor masks = fourier_band_masks(10, 10, 5);
  const at::Tensor bands = band_images(at::rand({6, 3, 10, 10}), masks);
  for (const CoalitionFill fill : {CoalitionFill::zero, CoalitionFill::noise, CoalitionFill::donor}) {
    const at::Tensor filler = fill_band_images(bands, masks, fill, make_generator(4));
    std::vector<bool> seen(32, false);
    for (CoalitionEnumerator all(bands, filler, CoalitionOutput::reference); !all.done(); all.advance()) {
      seen[all.members()] = true;
      EXPECT_TRUE(at::allclose(all.images(), coalition_images(bands, filler, all.members(), CoalitionOutput::reference),
                               1e-5, 1e-5))
          << "coalition " << all.members();
    }
    EXPECT_EQ(std::count(seen.begin(), seen.end(), true), 32);
  }
  // Noise fill: each band's noise carries the energy the image has in that band.
  const at::Tensor noise = fill_band_images(bands, masks, CoalitionFill::noise, make_generator(5));
  const auto energy = [](const at::Tensor& t) { return t.abs().pow(2).sum({2, 3, 4}); };
  EXPECT_TRUE(at::allclose(energy(noise), energy(bands), 1e-3, 1e-6));
  EXPECT_FALSE(at::allclose(noise, bands, 1e-2, 1e-2));
}

TEST(SpectralImportance, ModelThatSeesOnlyTheLowestBandPutsPsiThere) {
  // Logits depend on the mean pixel (the DC coefficient, inside band 0) only.
  testing::TemporaryDirectory dir;
  const at::Tensor weight = at::stack({at::full({144}, 1.0f / 144), at::full({144}, -1.0f / 144)}) * 20;
  testing::save_linear_torchscript(dir.file("dc.pt"), weight, at::tensor({-10.0f, 10.0f}));
  auto model = load_model(dir.file("dc.pt"), at::kCPU);
  torch::manual_seed(0);
  const at::Tensor images = at::rand({64, 1, 12, 12});
  const at::Tensor labels = images.mean({1, 2, 3}).gt(0.5).logical_not().to(at::kLong);  // class 0 when bright
  const Dataset data{"dc", images, labels, numbered_class_names(2)};
  for (const std::string fill : {"zero", "donor"}) {
    const auto result = analyse_spectral_importance(
                            *model, data, SpectralImportanceOptions().set_bands(4).set_fill(fill).set_output("real"))
                            .overall;
    EXPECT_GT(result.psi[0], 0.9) << fill << ": " << nlohmann::json(result.psi).dump();
    double sum = 0;
    for (const double p : result.phi) sum += p;
    EXPECT_NEAR(sum, result.coalition_values.back() - result.coalition_values.front(), 1e-9);
  }
}

TEST(SpectralImportance, ModelThatSeesOnlyTheTopBandPutsPsiThere) {
  // The weight is the checkerboard (−1)^(i+j): the Nyquist frequency, which
  // fftshift puts in the corner bin (0,0), outside every square: the top band.
  testing::TemporaryDirectory dir;
  const at::Tensor rows = at::arange(12).view({-1, 1}), cols = at::arange(12).view({1, -1});
  const at::Tensor checker = (rows + cols).remainder(2).mul(-2).add(1).to(at::kFloat).flatten();
  EXPECT_EQ(fourier_band_masks(12, 12, 4)[3][0][0].item<float>(), 1.0f);
  testing::save_linear_torchscript(dir.file("nyquist.pt"), at::stack({checker, -checker}) * 20, at::zeros({2}));
  auto model = load_model(dir.file("nyquist.pt"), at::kCPU);
  torch::manual_seed(1);
  // Mid-grey images and donor fill keep coalition images inside [0,1], so the
  // clip adds no high frequencies of its own (a zero-filled image without DC
  // would be half clipped away).
  const at::Tensor images = 0.3 + 0.4 * at::rand({48, 1, 12, 12});
  const at::Tensor labels = images.flatten(1).matmul(checker).lt(0).to(at::kLong);  // class 0 when w·x > 0
  const Dataset data{"nyquist", images, labels, numbered_class_names(2)};
  const auto result = analyse_spectral_importance(
      *model, data, SpectralImportanceOptions().set_bands(4).set_fill("donor").set_output("real"));
  EXPECT_GT(result.overall.psi[3], 0.9) << nlohmann::json(result.overall.psi).dump();
  EXPECT_LT(result.overall.score, 0.1 + spectral_robustness_score({0, 0, 0, 1}, 0.75));
}

TEST(SpectralImportance, StackingCoalitionsIntoBatchesChangesNothingAndClassesAverageToTheWhole) {
  testing::TemporaryDirectory dir;
  torch::manual_seed(2);
  testing::save_linear_torchscript(dir.file("lin.pt"), at::randn({3, 64}), at::randn({3}));
  auto model = load_model(dir.file("lin.pt"), at::kCPU);
  const at::Tensor images = at::rand({10, 1, 8, 8});
  const Dataset data{"random", images, at::tensor({0, 1, 2, 0, 1, 2, 0, 0, 1, 2}, at::kLong), numbered_class_names(3)};
  const auto options = SpectralImportanceOptions().set_bands(4).set_per_class(true).set_examples({1, 15}, 2);
  const auto one_image =
      analyse_spectral_importance(*model, data, SpectralImportanceOptions(options).set_batch_size(3));
  const auto stacked = analyse_spectral_importance(*model, data, SpectralImportanceOptions(options).set_batch_size(64));
  for (std::size_t s = 0; s < 16; ++s) {
    EXPECT_NEAR(one_image.overall.coalition_values[s], stacked.overall.coalition_values[s], 1e-5) << "coalition " << s;
  }
  ASSERT_EQ(stacked.per_class.size(), 3u);
  for (std::size_t s = 0; s < 16; ++s) {
    double weighted = 0;
    for (const auto& c : stacked.per_class)
      weighted += c.importance.coalition_values[s] * static_cast<double>(c.images);
    EXPECT_NEAR(weighted / 10, stacked.overall.coalition_values[s], 1e-9);
  }
  // The examples are the images the model saw: all bands with the reference
  // output = min-max of |x| over the 10 images.
  ASSERT_EQ(stacked.examples.sizes(), (at::IntArrayRef{2, 2, 1, 8, 8}));
  const at::Tensor expected = (images - images.min()) / (images.max() - images.min());
  EXPECT_TRUE(at::allclose(stacked.examples.select(1, 1), expected.slice(0, 0, 2), 1e-4, 1e-5));
}

TEST(SpectralSnr, ScaledImageGivesTheScaleInEveryBandAndWhiteNoiseIsFlat) {
  torch::manual_seed(3);
  const at::Tensor images = at::rand({6, 2, 16, 16}, at::kDouble);
  const at::Tensor masks = fourier_band_masks(16, 16, 4);
  std::vector<std::int64_t> excluded;
  for (const double snr : spectral_snr_db(images, 0.1 * images, masks, &excluded)) EXPECT_NEAR(snr, 20.0, 1e-9);
  EXPECT_EQ(excluded, (std::vector<std::int64_t>{0, 0, 0, 0}));
  // Constant images live in band 0 only: the others are left out (no signal).
  const at::Tensor constant = at::full({5, 1, 16, 16}, 0.5, at::kDouble);
  const at::Tensor noise = 0.05 * at::randn({5, 1, 16, 16}, at::kDouble);
  const auto snr = spectral_snr_db(constant, noise, masks, &excluded);
  EXPECT_EQ(excluded, (std::vector<std::int64_t>{0, 5, 5, 5}));
  EXPECT_TRUE(std::isnan(snr[1]));
  // White noise: E|N_k|² = σ²·H·W in every bin, DC of the image is 0.5·H·W:
  // SNR_0 ≈ 20·log10(0.5·256 / (0.05·16·√16)) (band 0 of 16×16, M = 4, is 4×4 = 16 bins).
  EXPECT_NEAR(snr[0], 20 * std::log10(0.5 * 256 / (0.05 * 16 * 4)), 1.5);
  // band energies sum over bands to H·W·‖x‖² (Parseval)
  EXPECT_NEAR(band_energies(images, masks).sum().item<double>(), 256 * images.pow(2).sum().item<double>(), 1e-6);
}

}  // namespace
}  // namespace robustlens
