#include "robustlens/analyses/manifold.h"

#include "robustlens/core/error.h"
#include "robustlens/core/random.h"
#include "robustlens/data/distractor.h"
#include "robustlens/generative/vae.h"
#include "robustlens/models/builtin_model.h"
#include "robustlens/train/trainer.h"
#include "test_support.h"

#include <ATen/CPUGeneratorImpl.h>

#include <gtest/gtest.h>
#include <torch/utils.h>

#include <cmath>

namespace robustlens {
namespace {

using testing::LinearModel;

/// Two classes with logits (w·x, −w·x): the change of the softmax under a logit
/// shift is 2|σ(2a') − σ(2a)|, and the predicted class's logit gradient is ±w.
LinearModel opposed_logits(const at::Tensor& w) { return LinearModel(at::stack({w, -w}), at::zeros({2})); }

double sigmoid(double z) { return 1 / (1 + std::exp(-z)); }

/// E over Z ~ N(0,1) of 2|σ(2(a + τZ)) − σ(2a)|, by quadrature.
double expected_change(double a, double tau) {
  double sum = 0, weights = 0;
  for (int i = -4000; i <= 4000; ++i) {
    const double z = i * 0.002, weight = std::exp(-0.5 * z * z);
    sum += weight * 2 * std::abs(sigmoid(2 * (a + tau * z)) - sigmoid(2 * a));
    weights += weight;
  }
  return sum / weights;
}

Dataset small_distractor_data(std::int64_t size) {
  return make_distractor_dataset(testing::linear_rule_dataset(size, {1, 4, 4}, 2, 3), 11);
}

TEST(SoftmaxL1Change, IsZeroForEqualLogitsAndMatchesTheTwoClassClosedForm) {
  const at::Tensor logits = at::tensor({1.5, 0.0}, at::kDouble).view({1, 2});
  EXPECT_DOUBLE_EQ(softmax_l1_change(logits, logits).item<double>(), 0.0);
  const double expected = 2 * std::abs(sigmoid(1.5) - 0.5);
  EXPECT_NEAR(softmax_l1_change(logits, at::zeros({1, 2}, at::kDouble)).item<double>(), expected, 1e-12);
}

TEST(LogSpaced, MatchesNumpysLogspace) {
  const std::vector<double> values = log_spaced(-2, 1, 4);
  ASSERT_EQ(values.size(), 4u);
  EXPECT_NEAR(values[0], 0.01, 1e-15);
  EXPECT_NEAR(values[1], 0.1, 1e-15);
  EXPECT_NEAR(values[3], 10.0, 1e-12);
  EXPECT_EQ(DistractorOptions::default_noise_levels().size(), 31u);
  EXPECT_EQ(DistractorOptions::default_noise_levels().front(), 0.0);
}

TEST(DistractorRobustness, AModelThatReadsOnlyTheItemHalfIgnoresGlyphNoise) {
  torch::manual_seed(0);
  const Dataset data = small_distractor_data(6);
  // Weights on the item half of image 0 only; keep the images whose item sits there.
  const at::Tensor item_region = data.signal_mask[0].flatten();
  std::vector<std::int64_t> same_half;
  for (std::int64_t i = 0; i < data.size(); ++i) {
    if (data.signal_mask[i].flatten().equal(item_region)) same_half.push_back(i);
  }
  ASSERT_GE(same_half.size(), 2u);
  const Dataset chosen = data.subset(same_half);
  LinearModel reads_item(opposed_logits(at::randn({32}) * item_region));
  const DistractorResult item = analyse_distractor_robustness(
      reads_item, chosen, DistractorOptions().set_noise_levels({0.0, 0.5}).set_draws(8), make_generator(0));
  EXPECT_EQ(item.item_half.mean[0], 0.0);
  EXPECT_TRUE(std::isnan(item.relative_robustness[0]));
  EXPECT_GT(item.item_half.mean[1], 0.0);
  EXPECT_EQ(item.distractor_half.mean[1], 0.0);
  EXPECT_TRUE(std::isnan(item.relative_robustness[1]));
  EXPECT_DOUBLE_EQ(item.item_gradient_share, 1.0);

  LinearModel reads_glyph(opposed_logits(at::randn({32}) * (1 - item_region)));
  const DistractorResult glyph = analyse_distractor_robustness(
      reads_glyph, chosen, DistractorOptions().set_noise_levels({0.5}).set_draws(8), make_generator(1));
  EXPECT_EQ(glyph.item_half.mean[0], 0.0);
  EXPECT_GT(glyph.distractor_half.mean[0], 0.0);
  EXPECT_EQ(glyph.relative_robustness[0], 0.0);
  EXPECT_DOUBLE_EQ(glyph.item_gradient_share, 0.0);
}

TEST(DistractorRobustness, MeanChangeMatchesTheClosedFormOfALinearModel) {
  torch::manual_seed(1);
  const Dataset data = small_distractor_data(4);
  const at::Tensor w = at::randn({32}, at::kDouble) * 0.7;
  LinearModel model(opposed_logits(w));
  const double s = 0.3;
  const DistractorResult result = analyse_distractor_robustness(
      model, data, DistractorOptions().set_noise_levels({s}).set_draws(4000), make_generator(1));
  double item = 0, glyph = 0, whole = 0;
  for (std::int64_t i = 0; i < data.size(); ++i) {
    const at::Tensor x = data.images[i].flatten().to(at::kDouble), mask = data.signal_mask[i].flatten().to(at::kDouble);
    const double a = w.dot(x).item<double>();
    item += expected_change(a, s * (w * mask).norm().item<double>()) / 4;
    glyph += expected_change(a, s * (w * (1 - mask)).norm().item<double>()) / 4;
    whole += expected_change(a, s * w.norm().item<double>()) / 4;
  }
  EXPECT_NEAR(result.item_half.mean[0], item, 0.02);
  EXPECT_NEAR(result.distractor_half.mean[0], glyph, 0.02);
  EXPECT_NEAR(result.whole_image.mean[0], whole, 0.02);
}

TEST(DistractorRobustness, RefusesDataWithoutASignalMaskAndBadOptions) {
  LinearModel model(opposed_logits(at::randn({16})));
  const Dataset plain = testing::linear_rule_dataset(4, {1, 4, 4}, 2, 0);
  EXPECT_THROW(analyse_distractor_robustness(model, plain, DistractorOptions(), make_generator(0)), Error);
  EXPECT_THROW(DistractorOptions().set_noise_levels({-1.0}).check(), Error);
  EXPECT_THROW(DistractorOptions().set_draws(0).check(), Error);
}

/// A fixed orthonormal basis D×k for every image.
TangentBasis constant_basis(const at::Tensor& basis) {
  return [basis](const at::Tensor& images, const at::Tensor&) {
    return basis.to(images.dtype()).unsqueeze(0).expand({images.size(0), basis.size(0), basis.size(1)});
  };
}

TEST(TangentSensitivity, FollowsWhereTheWeightsLie) {
  torch::manual_seed(2);
  const std::int64_t d = 16, k = 4;
  const at::Tensor basis = std::get<0>(at::linalg_qr(at::randn({d, k}, at::kDouble)));
  const Dataset data = testing::linear_rule_dataset(5, {1, 4, 4}, 2, 1);
  const TangentOptions options = TangentOptions().set_eps({0.5, 2.0}).set_draws(3);

  LinearModel along(opposed_logits(basis.matmul(at::randn({k}, at::kDouble))));
  const TangentResult on = analyse_tangent_sensitivity(along, data, constant_basis(basis), options, make_generator(0));
  EXPECT_NEAR(on.tangent_fraction, 1.0, 1e-6);
  EXPECT_LT(on.off_manifold.mean[1], 1e-6);
  EXPECT_GT(on.on_manifold.mean[1], 1e-3);
  EXPECT_EQ(on.tangent_dim, k);
  EXPECT_EQ(on.input_dim, d);
  EXPECT_DOUBLE_EQ(on.random_baseline(), std::sqrt(4.0 / 16.0));

  const at::Tensor w = at::randn({d}, at::kDouble);
  LinearModel across(opposed_logits(w - basis.matmul(basis.t().matmul(w))));
  const TangentResult off =
      analyse_tangent_sensitivity(across, data, constant_basis(basis), options, make_generator(0));
  EXPECT_NEAR(off.tangent_fraction, 0.0, 1e-6);
  EXPECT_LT(off.on_manifold.mean[1], 1e-6);
  EXPECT_GT(off.off_manifold.mean[1], 1e-3);

  LinearModel general(opposed_logits(w));
  const double closed_form = (basis.t().matmul(w)).norm().item<double>() / w.norm().item<double>();
  const TangentResult mixed =
      analyse_tangent_sensitivity(general, data, constant_basis(basis), options, make_generator(0));
  EXPECT_NEAR(mixed.tangent_fraction, closed_form, 1e-6);

  // First order: ∇ log softmax_ŷ = ±2(1 − p_ŷ)·w, so per direction the sensitivities are c·‖Pw‖²/k and
  // c·‖(I − P)w‖²/(D − k) with the same c = mean of 4(1 − p_ŷ)², and a direction in one space gives 0 in the other.
  const double along_w = basis.t().matmul(w).square().sum().item<double>();
  const double across_w = w.square().sum().item<double>() - along_w;
  EXPECT_NEAR(mixed.first_order.off_to_on_ratio(), (across_w / (d - k)) / (along_w / k), 1e-5);
  const at::Tensor logit = data.images.flatten(1).to(at::kDouble).matmul(w);
  const at::Tensor p = at::sigmoid(2 * logit.abs());
  const double c = (4 * (1 - p).square()).mean().item<double>();
  EXPECT_NEAR(mixed.first_order.on_manifold, c * along_w / k, 1e-4 * c * along_w / k);  // float32 gradients
  EXPECT_LT(on.first_order.off_manifold, 1e-5 * on.first_order.on_manifold);            // float32 rounding only
  EXPECT_LT(off.first_order.on_manifold, 1e-5 * off.first_order.off_manifold);
}

TEST(TangentSpaces, OnePassMatchesEachBasisAloneAndMeasuresTheirAgreement) {
  torch::manual_seed(4);
  const std::int64_t d = 16, k = 4;
  const at::Tensor first = std::get<0>(at::linalg_qr(at::randn({d, k}, at::kDouble)));
  // The second basis shares two of the first's directions: agreement 2/k exactly.
  const at::Tensor other = std::get<0>(at::linalg_qr(at::cat({first, at::randn({d, 2}, at::kDouble)}, 1)));
  const at::Tensor second = at::cat({first.slice(1, 0, 2), other.slice(1, k, k + 2)}, 1);
  const Dataset data = testing::linear_rule_dataset(7, {1, 4, 4}, 2, 1);
  LinearModel model(opposed_logits(at::randn({d}, at::kDouble)));
  const TangentOptions options = TangentOptions().set_eps({0.5}).set_draws(2).set_batch_size(3);

  const TangentComparison both = analyse_tangent_spaces(
      model, data, {{"a", constant_basis(first)}, {"b", constant_basis(second)}}, options, make_generator(0));
  ASSERT_TRUE(both.agreement.has_value());
  EXPECT_NEAR(*both.agreement, 2.0 / k, 1e-6);
  for (const auto& [name, basis] : {std::pair{"a", first}, std::pair{"b", second}}) {
    // The gradient measures are deterministic: one pass gives what each basis gives alone.
    const TangentResult alone =
        analyse_tangent_sensitivity(model, data, constant_basis(basis), options, make_generator(0));
    const TangentResult& shared = both.results.at(name);
    EXPECT_NEAR(shared.tangent_fraction, alone.tangent_fraction, 1e-9) << name;
    EXPECT_NEAR(shared.first_order.on_manifold, alone.first_order.on_manifold, 1e-9) << name;
    EXPECT_NEAR(shared.first_order.off_manifold, alone.first_order.off_manifold, 1e-9) << name;
    EXPECT_EQ(shared.images, data.size());
  }
  const at::Tensor narrower = first.slice(1, 0, 3);
  EXPECT_FALSE(analyse_tangent_spaces(model, data, {{"a", constant_basis(first)}, {"b", constant_basis(narrower)}},
                                      options, make_generator(0))
                   .agreement.has_value());
  EXPECT_THROW(analyse_tangent_spaces(model, data, {}, options, make_generator(0)), Error);
}

TEST(LocalPca, RecoversTheAffineSubspaceTheNeighboursLieIn) {
  torch::manual_seed(3);
  const std::int64_t d = 36, k = 3, n = 200;
  const at::Tensor span = std::get<0>(at::linalg_qr(at::randn({d, k})));
  // Class 0 lies on an affine k-plane, class 1 is unstructured.
  const at::Tensor plane = 0.5 + 0.05 * at::randn({n, k}).matmul(span.t());
  const at::Tensor noise = 0.5 + 0.1 * at::randn({n, d});
  Dataset reference{"planes", at::cat({plane, noise}).view({2 * n, 1, 6, 6}),
                    at::cat({at::zeros({n}, at::kLong), at::ones({n}, at::kLong)}), numbered_class_names(2)};
  const at::Tensor queries = reference.images.slice(0, 0, 4);
  const at::Tensor basis = local_pca_basis(queries, at::zeros({4}, at::kLong), reference, 20, k);
  ASSERT_EQ(basis.sizes(), (at::IntArrayRef{4, d, k}));
  EXPECT_TRUE(at::allclose(at::bmm(basis.transpose(1, 2), basis), at::eye(k).expand({4, k, k}), 1e-4, 1e-5));
  EXPECT_NEAR(subspace_agreement(basis, span.unsqueeze(0).expand({4, d, k})), 1.0, 1e-4);
  const at::Tensor random = std::get<0>(at::linalg_qr(at::randn({4, d, k})));
  EXPECT_LT(subspace_agreement(basis, random), 0.5);
  EXPECT_THROW(local_pca_basis(queries, at::zeros({4}, at::kLong), reference, 3, k), Error);
  EXPECT_THROW(local_pca_basis(queries, at::zeros({4}, at::kLong), reference, 500, k), Error);
}

/// Points 0.5 + 0.6·U z on a random k-plane U (D×k, orthonormal; the same for
/// every seed), z ~ N(0, I) drawn with `seed`, labelled by the sign of z_0.
/// Clipping to [0,1] moves about one pixel value in 10,000 off the plane.
Dataset linear_manifold_dataset(std::int64_t size, const at::Tensor& span, std::uint64_t seed) {
  at::Generator draws = at::detail::createCPUGenerator(seed);
  const at::Tensor codes = at::randn({size, span.size(1)}, draws);
  const at::Tensor images = (0.5 + 0.6 * codes.matmul(span.t())).clamp(0, 1).view({size, 1, 8, 8});
  return {"linear manifold", images, (codes.select(1, 0) > 0).to(at::kLong), numbered_class_names(2)};
}

TEST(KnownLinearManifold, TangentSpacesRecoverItAndAGradientPenaltyRemovesTheSensitivityAcrossIt) {
  const std::int64_t d = 64, k = 3;
  at::Generator rule = at::detail::createCPUGenerator(17);
  const at::Tensor span = std::get<0>(at::linalg_qr(at::randn({d, k}, rule)));
  const Dataset train = linear_manifold_dataset(2000, span, 1), test = linear_manifold_dataset(200, span, 2);
  const at::Tensor truth = span.unsqueeze(0).expand({test.size(), d, k});

  // Local PCA of the nearest training images, and a VAE with k latent dimensions.
  const double pca_agreement = subspace_agreement(local_pca_basis(test.images, test.labels, train, 30, k), truth);
  torch::manual_seed(4);
  Vae vae(VaeSpec().set_input_shape({1, 8, 8}).set_latent_dim(k).set_hidden(128));
  train_vae(vae, train, test, VaeTrainOptions().set_epochs(30).set_batch_size(64).set_seed(4));
  const double vae_agreement = subspace_agreement(vae_tangent_basis(vae, test.images), truth);
  std::printf("agreement with the true plane: local PCA %.4f, VAE %.4f (random %.4f)\n", pca_agreement, vae_agreement,
              static_cast<double>(k) / d);
  EXPECT_GT(pca_agreement, 0.95);
  EXPECT_GT(vae_agreement, 0.9);

  // Classifiers trained with and without a gradient-norm penalty, probed along and across the true plane.
  const auto trained = [&](const ObjectiveOptions& objective) {
    torch::manual_seed(5);
    auto model = std::make_unique<BuiltinModel>(
        ArchitectureSpec().set_name("mlp").set_width(64).set_input_shape({1, 8, 8}).set_num_classes(2),
        train.class_names);
    {
      // Training never moves the first layer's weights off the plane (the data
      // have no component there), so they keep their initial values: five
      // times the default makes the standard model clearly sensitive off the
      // plane, as real networks are off their data manifold.
      at::NoGradGuard no_grad;
      model->parameters().front().mul_(5);
    }
    const TrainResult result = train_model(
        *model, train, test, TrainOptions().set_epochs(20).set_batch_size(64).set_lr(0.05).set_objective(objective));
    EXPECT_GT(result.epochs.back().test_accuracy, 0.9) << objective.to_json().dump();
    model->set_training(false);
    return model;
  };
  const TangentOptions options = TangentOptions().set_eps({0.5}).set_draws(8);
  auto standard = trained(ObjectiveOptions());
  auto robust = trained(ObjectiveOptions().set_kind("gradnorm").set_lambda(0.1));
  const TangentResult plain =
      analyse_tangent_sensitivity(*standard, test, constant_basis(span), options, make_generator(0));
  const TangentResult smooth =
      analyse_tangent_sensitivity(*robust, test, constant_basis(span), options, make_generator(0));
  std::printf(
      "standard: on %.4f off %.4f tangent fraction %.3f; gradnorm: on %.4f off %.4f tangent fraction %.3f "
      "(random %.3f)\n",
      plain.on_manifold.mean[0], plain.off_manifold.mean[0], plain.tangent_fraction, smooth.on_manifold.mean[0],
      smooth.off_manifold.mean[0], smooth.tangent_fraction, smooth.random_baseline());
  // The penalty removes most of the sensitivity off the plane and little along it.
  EXPECT_LT(smooth.off_manifold.mean[0], plain.off_manifold.mean[0] / 3);
  EXPECT_GT(smooth.on_manifold.mean[0], 0.7 * plain.on_manifold.mean[0]);
  EXPECT_GT(smooth.on_manifold.mean[0], 10 * smooth.off_manifold.mean[0]);
  EXPECT_GT(smooth.tangent_fraction, plain.tangent_fraction);
  EXPECT_GT(smooth.tangent_fraction, 2 * smooth.random_baseline());
  // First order, per direction: the penalty lowers the sensitivity across the plane far more than along it
  // (the off-manifold sensitivity falls first; measured ×0.003 against ×0.10).
  const double off_fall = smooth.first_order.off_manifold / plain.first_order.off_manifold;
  const double on_fall = smooth.first_order.on_manifold / plain.first_order.on_manifold;
  std::printf("first order: off-manifold x%.4f, on-manifold x%.4f; off/on ratio %.4g -> %.4g\n", off_fall, on_fall,
              plain.first_order.off_to_on_ratio(), smooth.first_order.off_to_on_ratio());
  EXPECT_LT(off_fall, on_fall / 3);
  EXPECT_LT(smooth.first_order.off_to_on_ratio(), plain.first_order.off_to_on_ratio() / 3);
}

}  // namespace
}  // namespace robustlens
