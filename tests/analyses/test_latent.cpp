#include "robustlens/analyses/latent.h"

#include "robustlens/core/error.h"
#include "robustlens/models/builtin_model.h"
#include "robustlens/train/trainer.h"
#include "test_support.h"

#include <gtest/gtest.h>

#include <cmath>

namespace robustlens {
namespace {

TEST(TwoGaussianFit, RecoversTwoKnownModesAndFitsColumnsIndependently) {
  at::Generator rule = at::detail::createCPUGenerator(3);
  const std::int64_t n = 20000;
  const at::Tensor pick = at::rand({n}, rule) < 0.3;
  const at::Tensor first = at::where(pick, -2 + 0.5 * at::randn({n}, rule), 3 + 1.0 * at::randn({n}, rule));
  const at::Tensor second =
      at::where(at::rand({n}, rule) < 0.5, -1 + 0.2 * at::randn({n}, rule), 1 + 0.2 * at::randn({n}, rule));
  const std::vector<TwoGaussians> both = fit_two_gaussians(at::stack({first, second}, 1), 500, 1e-10, 1e-6);
  ASSERT_EQ(both.size(), 2u);
  const TwoGaussians& a = both[0];
  EXPECT_NEAR(a.weight[0], 0.3, 0.01);
  EXPECT_NEAR(a.mean[0], -2, 0.03);
  EXPECT_NEAR(a.std[0], 0.5, 0.02);
  EXPECT_NEAR(a.mean[1], 3, 0.03);
  EXPECT_NEAR(a.std[1], 1.0, 0.02);
  EXPECT_NEAR(both[1].separation(), 2 / 0.2, 0.2);
  // Fitted together = fitted alone.
  const TwoGaussians alone = fit_two_gaussians(second.unsqueeze(1), 500, 1e-10, 1e-6)[0];
  EXPECT_NEAR(alone.mean[0], both[1].mean[0], 1e-9);
  EXPECT_NEAR(alone.std[1], both[1].std[1], 1e-9);
  EXPECT_NEAR(alone.mean_log_likelihood, both[1].mean_log_likelihood, 1e-9);

  // One Gaussian mode: little separation.
  const TwoGaussians unimodal = fit_two_gaussians(at::randn({n, 1}, rule), 500, 1e-10, 1e-6)[0];
  EXPECT_LT(unimodal.separation(), 2.0);
}

TEST(LatentBinarity, ConstantUnitsAreCountedNotFitted) {
  at::Generator rule = at::detail::createCPUGenerator(4);
  const at::Tensor signs = at::where(at::rand({500, 1}, rule) < 0.5, -1.0, 1.0);
  const at::Tensor latent = at::cat({signs + 0.01 * at::randn({500, 1}, rule), at::full({500, 1}, 2.0)}, 1);
  const BinarityResult result = latent_binarity(latent, LatentOptions());
  EXPECT_EQ(result.constant_units, 1);
  EXPECT_TRUE(result.constant[1]);
  // Standardised ±1 with std 0.01 becomes ±1 with std 0.01: separation 200.
  EXPECT_NEAR(result.separation, 200, 10);
  EXPECT_DOUBLE_EQ(result.separation_median, result.separation);  // one fitted unit
}

TEST(RankAuroc, RandomScoresGiveAHalfPerfectOnesOneAndTiesCountHalf) {
  at::Generator rule = at::detail::createCPUGenerator(5);
  const at::Tensor positives = at::rand({20000}, rule) < 0.2;
  EXPECT_NEAR(rank_auroc(at::rand({20000}, rule), positives), 0.5, 0.015);
  EXPECT_DOUBLE_EQ(rank_auroc(positives.to(at::kDouble) + 0.1 * at::rand({20000}, rule), positives), 1.0);
  EXPECT_DOUBLE_EQ(rank_auroc(-positives.to(at::kDouble), positives), 0.0);
  EXPECT_DOUBLE_EQ(rank_auroc(at::zeros({20000}), positives), 0.5);
  // Positive 2 beats 1 and ties 2; positive 3 beats both: (1.5 + 2) / 4.
  EXPECT_DOUBLE_EQ(rank_auroc(at::tensor({1.0, 2.0, 2.0, 3.0}), at::tensor({0, 1, 0, 1}).to(at::kBool)), 0.875);
  EXPECT_TRUE(std::isnan(rank_auroc(at::tensor({1.0, 2.0}), at::zeros({2}, at::kBool))));
}

TEST(SameEncoding, CountsTheMostFrequentSignPatternOfEachPredictedClass) {
  const at::Tensor latent = at::tensor({1.0, 2.0, 0.5, 0.1, 3.0, 1.0, 2.0, -1.0, -1.0, -2.0, -0.5, -0.5}).view({6, 2});
  const at::Tensor predicted = at::tensor({0, 0, 0, 0, 1, 1}, at::kLong);
  const EncodingResult result = same_encoding(latent, predicted);
  EXPECT_DOUBLE_EQ(result.same_encoding_fraction, (3.0 + 2.0) / 6.0);
  EXPECT_EQ(result.distinct_codes, 3);
}

TEST(NeuralCollapse, MatchesTheClosedFormOfTwoClassesOnALine) {
  // Classes at -1 and +1, each with points at ±a around its mean: Σ_W = 2a² (unbiased, n = 2), Σ_B = 1.
  const double a = 0.1;
  const at::Tensor latent = at::tensor({-1 - a, -1 + a, 1 - a, 1 + a}, at::kDouble).view({4, 1});
  const CollapseResult result = neural_collapse(latent, at::tensor({0, 0, 1, 1}, at::kLong));
  EXPECT_NEAR(result.within_class_variance, 2 * a * a, 1e-12);
  EXPECT_NEAR(result.nc1, 2 * a * a / 1.0 / 2, 1e-12);
  EXPECT_NEAR(result.equinorm, 0, 1e-12);

  // Class means on a regular simplex (the vertices of an equilateral triangle), collapsed.
  const at::Tensor vertices =
      at::tensor({1.0, 0.0, -0.5, std::sqrt(3.0) / 2, -0.5, -std::sqrt(3.0) / 2}, at::kDouble).view({3, 2});
  const CollapseResult simplex = neural_collapse(vertices.repeat_interleave(5, 0), at::arange(3).repeat_interleave(5));
  EXPECT_NEAR(simplex.nc1, 0, 1e-12);
  EXPECT_NEAR(simplex.equiangularity, 0, 1e-12);
  EXPECT_NEAR(simplex.equinorm, 0, 1e-12);
  EXPECT_EQ(simplex.classes, 3);
}

TEST(MahalanobisScores, MatchTheDistanceComputedByHand) {
  at::Generator rule = at::detail::createCPUGenerator(6);
  const at::Tensor train = at::randn({400, 2}, rule, at::kDouble) * at::tensor({1.0, 3.0}, at::kDouble) +
                           at::tensor({0.5, -1.0}, at::kDouble);
  const at::Tensor labels = (train.select(1, 0) > 0.5).to(at::kLong);
  at::Tensor predicted = labels.clone();
  predicted.slice(0, 0, 40).fill_(0);  // some training mistakes: left out of the class fits
  const at::Tensor test = at::randn({10, 2}, rule, at::kDouble);
  const at::Tensor test_predicted = at::tensor({0, 1, 0, 1, 0, 1, 0, 1, 0, 1}, at::kLong);
  const at::Tensor scores = mahalanobis_scores(train, labels, predicted, test, test_predicted, 1e-6);

  const at::Tensor mean = train.mean(0), deviation = train.std(0, false);
  for (std::int64_t i = 0; i < 10; ++i) {
    const std::int64_t c = test_predicted[i].item<std::int64_t>();
    const at::Tensor members =
        ((train - mean) / deviation).index_select(0, (predicted.eq(c) & labels.eq(c)).nonzero().flatten());
    const at::Tensor centred = members - members.mean(0);
    const at::Tensor covariance =
        centred.t().mm(centred) / static_cast<double>(members.size(0)) + 1e-6 * at::eye(2, at::kDouble);
    const at::Tensor d = (test[i] - mean) / deviation - members.mean(0);
    const double expected = std::sqrt(d.dot(at::linalg_inv(covariance).mv(d)).item<double>());
    EXPECT_NEAR(scores[i].item<double>(), expected, 1e-9) << i;
  }
  // A predicted class without training fits gets no score.
  const at::Tensor none =
      mahalanobis_scores(train, labels, predicted, test.slice(0, 0, 1), at::tensor({2}, at::kLong), 1e-6);
  EXPECT_TRUE(std::isnan(none[0].item<double>()));
}

TEST(OdinScores, AreMinusTheLargestTemperedSoftmax) {
  const at::Tensor logits = at::tensor({0.0, 0.0, 2.0, 0.0}).view({2, 2});
  const at::Tensor scores = odin_scores(logits, 2.0);
  EXPECT_NEAR(scores[0].item<double>(), -0.5, 1e-12);
  EXPECT_NEAR(scores[1].item<double>(), -std::exp(1.0) / (1 + std::exp(1.0)), 1e-12);
}

/// Four well separated clusters in 8 dimensions, pixels in [0,1].
Dataset four_clusters(std::int64_t size, std::uint64_t seed) {
  at::Generator centres_rule = at::detail::createCPUGenerator(99), rule = at::detail::createCPUGenerator(seed);
  const at::Tensor centres = 0.2 + 0.6 * at::rand({4, 8}, centres_rule);
  const at::Tensor labels = at::randint(4, {size}, rule);
  const at::Tensor images = (centres.index_select(0, labels) + 0.08 * at::randn({size, 8}, rule)).clamp(0, 1);
  return {"four-clusters", images.view({size, 1, 1, 8}), labels, {"a", "b", "c", "d"}, {}};
}

TEST(LatentBinaryEncoding, OnAToyFourClassProblemZConvergesToTheVerticesOfTheSquare) {
  const Dataset train = four_clusters(800, 1), test = four_clusters(200, 2);
  const auto trained = [&](const std::string& head) {
    torch::manual_seed(7);
    auto model = std::make_unique<BuiltinModel>(ArchitectureSpec()
                                                    .set_name("mlp")
                                                    .set_input_shape({1, 1, 8})
                                                    .set_num_classes(4)
                                                    .set_width(32)
                                                    .set_head(head)
                                                    .set_bottleneck(2),
                                                train.class_names);
    train_model(*model, train, test,
                TrainOptions()
                    .set_optimizer("adamw")
                    .set_lr(0.01)
                    .set_epochs(60)
                    .set_batch_size(32)
                    .set_hold_output_lr(true)
                    .set_latent_penalty(LatentPenaltyOptions().set_gamma0(0.1).set_factor(1.2).set_gamma_max(100)));
    return model;
  };
  auto binenc = trained("binenc");
  const LatentResult result = analyse_latent(*binenc, train, test, LatentOptions().set_deepfool_samples(50));
  std::printf(
      "binenc: accuracy %.3f, same encoding %.4f, within-class variance %.3g, NC1 %.3g, separation %.1f, "
      "DeepFool ratio %.3f\n",
      result.test_accuracy, result.test_encoding.same_encoding_fraction, result.test_collapse.within_class_variance,
      result.test_collapse.nc1, result.binarity.separation, result.robustness_ratio);
  EXPECT_GT(result.test_accuracy, 0.99);
  EXPECT_EQ(result.latent_dim, 2);
  EXPECT_GE(result.test_encoding.same_encoding_fraction, 0.99);
  EXPECT_EQ(result.test_encoding.distinct_codes, 4);  // one vertex of the square per class
  EXPECT_GT(result.binarity.separation, 10);

  // Without the penalty the same bottleneck separates the classes but does not collapse them.
  auto linpen = trained("linpen");
  const LatentResult free = analyse_latent(*linpen, train, test, LatentOptions().set_deepfool_samples(0));
  const auto relative_within = [](const LatentResult& r) {
    return r.test_collapse.within_class_variance / r.test_latent.pow(2).mean().item<double>();
  };
  std::printf("within-class variance / mean z^2: binenc %.3g, linpen %.3g; NC1: binenc %.3g, linpen %.3g\n",
              relative_within(result), relative_within(free), result.test_collapse.nc1, free.test_collapse.nc1);
  EXPECT_GT(free.test_accuracy, 0.99);
  EXPECT_LT(relative_within(result), 2e-3);
  EXPECT_LT(relative_within(result), relative_within(free) / 10);
  EXPECT_LT(result.test_collapse.nc1, free.test_collapse.nc1 / 10);
  EXPECT_TRUE(std::isnan(free.robustness_ratio));
}

TEST(LatentAnalysis, RefusesModelsWithoutALatentAndBadOptions) {
  testing::LinearModel linear(at::randn({2, 8}, at::kDouble), at::zeros({2}, at::kDouble));
  const Dataset data = four_clusters(20, 3);
  testing::expect_error([&] { analyse_latent(linear, data, data, LatentOptions()); }, "exposes no latent code");
  testing::expect_error([&] { LatentOptions().set_odin_temperature(0).check(); },
                        "LatentOptions.odin_temperature must be > 0");
  testing::expect_error([&] { LatentOptions().set_deepfool_samples(-1).check(); },
                        "LatentOptions.deepfool_samples must be >= 0");
}

}  // namespace
}  // namespace robustlens
