#include "robustlens/analyses/spectral_importance.h"

#include "robustlens/core/error.h"
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
  const at::Tensor full = coalition_images(bands, fourier_band_masks(12, 10, 4), 15, CoalitionFill::zero, CoalitionOutput::real_clip);
  EXPECT_TRUE(at::allclose(full, x.to(at::kFloat), 1e-5, 1e-6));
  EXPECT_EQ(coalition_images(bands, fourier_band_masks(12, 10, 4), 0, CoalitionFill::donor, CoalitionOutput::reference)
                .abs().max().item<double>(), 0.0);
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
    const auto result = analyse_spectral_importance(*model, data, SpectralImportanceOptions().set_bands(4).set_fill(fill).set_output("real"));
    EXPECT_GT(result.psi[0], 0.9) << fill << ": " << nlohmann::json(result.psi).dump();
    double sum = 0;
    for (const double p : result.phi) sum += p;
    EXPECT_NEAR(sum, result.coalition_values.back() - result.coalition_values.front(), 1e-9);
  }
}

}  // namespace
}  // namespace robustlens
