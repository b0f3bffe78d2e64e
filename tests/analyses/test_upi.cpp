#include "robustlens/analyses/upi.h"

#include "robustlens/core/error.h"
#include "robustlens/explain/map_metrics.h"
#include "robustlens/models/builtin_model.h"
#include "test_support.h"

#include <gtest/gtest.h>
#include <torch/autograd.h>
#include <torch/utils.h>

namespace robustlens {
namespace {

/// Two classes, logit_0 = u·x + c·(v·x)², logit_1 = 0, in double precision. The
/// softmax saliency map is |σ'(z)·(u + 2c(v·x)v)| normalised: the scalar σ'
/// cancels in the normalisation, so the map moves only when v·x does. The one
/// direction that moves it is v.
class QuadraticModel : public testing::FixedFunctionModel {
 public:
  QuadraticModel(at::Tensor u, at::Tensor v, double c) : FixedFunctionModel(2), u_(std::move(u)), v_(std::move(v)), c_(c) {}
  at::Tensor forward(const at::Tensor& images) override {
    const at::Tensor x = images.flatten(1).to(at::kDouble);
    const at::Tensor z = x.matmul(u_) + c_ * x.matmul(v_).pow(2);
    return at::stack({z, at::zeros_like(z)}, 1);
  }

 private:
  at::Tensor u_, v_;
  double c_;
};

Dataset predicted_by(Model& model, const at::Tensor& images) {
  return Dataset{"random", images, model.forward(images).argmax(1), numbered_class_names(2)};
}

TEST(PowerIteration, AgreesWithADenseSvd) {
  torch::manual_seed(0);
  const at::Tensor rows = at::randn({30, 12}, at::kDouble);
  const at::Tensor top = top_right_singular_vector(rows, 2000, 1e-13);
  const at::Tensor reference = std::get<2>(at::linalg_svd(rows, false))[0];
  EXPECT_NEAR(std::abs(top.dot(reference).item<double>()), 1.0, 1e-9);
  EXPECT_NEAR(top.norm().item<double>(), 1.0, 1e-12);
  EXPECT_THROW(top_right_singular_vector(at::zeros({0, 3})), Error);
}

TEST(Upi, MapsSumToOneAndPerturbationsRespectTheBall) {
  torch::manual_seed(1);
  auto model = std::make_unique<BuiltinModel>(
      ArchitectureSpec().set_name("mlp").set_input_shape({1, 6, 6}).set_num_classes(3).set_activation("softplus"),
      numbered_class_names(3));
  model->set_training(false);
  const Dataset data = predicted_by(*model, at::rand({24, 1, 6, 6}));
  const UpiOptions options = UpiOptions().set_passes(3).set_batch_size(8);
  const at::Tensor maps = interpretation_maps(*model, data.images, data.labels, options.attribution);
  EXPECT_TRUE(at::allclose(maps.sum({1, 2}), at::ones({24}), 1e-5, 1e-5));
  EXPECT_LE(upi_grad(*model, data, 0.5, options).norm().item<double>(), 0.5 + 1e-5);
  const at::Tensor pca = upi_pca(*model, data, upi_pca_direction(*model, data, options), 0.5, options);
  EXPECT_NEAR(pca.norm().item<double>(), 0.5, 1e-5);
  const at::Tensor per_image = per_image_map_attack(*model, data, 0.5, options);
  EXPECT_LE(per_image.flatten(1).norm(2, 1).max().item<double>(), 0.5 + 1e-5);
}

TEST(Upi, ObjectiveGradientAgreesWithFiniteDifferences) {
  // The double-backprop gradient UPI-Grad follows, against central differences
  // of J(δ) = mean relative L2 of the maps, in double precision.
  torch::manual_seed(2);
  auto model = std::make_unique<BuiltinModel>(
      ArchitectureSpec().set_name("mlp").set_input_shape({1, 4, 4}).set_num_classes(3).set_activation("softplus"),
      numbered_class_names(3));
  model->net().to(at::kDouble);
  model->set_training(false);
  const at::Tensor x = at::rand({5, 1, 4, 4}, at::kDouble);
  const at::Tensor y = model->forward(x).argmax(1);
  const AttributionOptions saliency = AttributionOptions().set_softmax(true);
  const at::Tensor clean = interpretation_maps(*model, x, y, saliency).detach();
  const auto objective = [&](const at::Tensor& delta, bool graph) {
    return relative_l2(clean, interpretation_maps(*model, x + delta, y, AttributionOptions(saliency).set_create_graph(graph))).mean();
  };
  const at::Tensor delta = (0.1 * at::randn({1, 1, 4, 4}, at::kDouble)).requires_grad_(true);
  const at::Tensor gradient = torch::autograd::grad({objective(delta, true)}, {delta})[0];
  for (int trial = 0; trial < 3; ++trial) {
    const at::Tensor direction = at::randn({1, 1, 4, 4}, at::kDouble);
    const double h = 1e-5;
    const double numeric = (objective(delta.detach() + h * direction, false).item<double>() -
                            objective(delta.detach() - h * direction, false).item<double>()) / (2 * h);
    EXPECT_NEAR(gradient.mul(direction).sum().item<double>(), numeric, 1e-6 * std::max(1.0, std::abs(numeric)));
  }
}

TEST(Upi, BatchedMapAttackGradientsEqualPerSample) {
  torch::manual_seed(3);
  auto model = std::make_unique<BuiltinModel>(
      ArchitectureSpec().set_name("mlp").set_input_shape({1, 5, 5}).set_num_classes(4).set_activation("softplus"),
      numbered_class_names(4));
  model->set_training(false);
  const at::Tensor x = at::rand({6, 1, 5, 5});
  const at::Tensor y = model->forward(x).argmax(1);
  const AttributionOptions ig = AttributionOptions().set_method(AttributionMethod::integrated_gradients).set_steps(8).set_softmax(true);
  const at::Tensor clean = interpretation_maps(*model, x, y, ig).detach();
  const at::Tensor moved = x + 0.05 * at::randn_like(x);
  const at::Tensor batched = map_attack_gradients(*model, moved, clean, y, ig);
  for (std::int64_t i = 0; i < 6; ++i) {
    const at::Tensor single = map_attack_gradients(*model, moved.slice(0, i, i + 1), clean.slice(0, i, i + 1), y.slice(0, i, i + 1), ig);
    EXPECT_TRUE(at::allclose(batched.slice(0, i, i + 1), single, 1e-4, 1e-7)) << "sample " << i;
  }
}

TEST(Upi, FindsTheOneDirectionThatMovesTheMapAndBeatsRandomNoise) {
  torch::manual_seed(4);
  const at::Tensor u = at::randn({36}, at::kDouble), v = at::randn({36}, at::kDouble);
  QuadraticModel model(u, v / v.norm(), 2.0);
  const Dataset attack = predicted_by(model, at::rand({40, 1, 6, 6}));
  const Dataset test = predicted_by(model, at::rand({40, 1, 6, 6}));
  const UpiOptions options = UpiOptions().set_eps({0.3}).set_passes(5).set_batch_size(16);
  const at::Tensor direction = upi_pca_direction(model, attack, options).flatten();
  EXPECT_GT(std::abs(direction.to(at::kDouble).dot(v / v.norm()).item<double>()), 0.99);
  const UpiResult result = analyse_upi(model, attack, test, options);
  const auto& m = result.metrics.at(0);
  const double random = m.at("universal-random").dissimilarity;
  SCOPED_TRACE(result.to_json({0.3}).dump());
  EXPECT_GT(m.at("upi-pca").dissimilarity, 2 * random);
  EXPECT_GT(m.at("upi-grad").dissimilarity, 2 * random);
  EXPECT_GE(m.at("per-image-attack").dissimilarity, 0.95 * std::max(m.at("upi-pca").dissimilarity, m.at("upi-grad").dissimilarity));
  EXPECT_EQ(result.test_images, 40);
}

TEST(SoftplusSurrogate, SameParametersAndOutputsCloseToTheReluModelForLargeBeta) {
  torch::manual_seed(5);
  BuiltinModel relu(ArchitectureSpec().set_name("lenet").set_input_shape({1, 28, 28}).set_num_classes(10), numbered_class_names(10));
  relu.set_training(false);
  const auto smooth = relu.softplus_surrogate(1000);
  EXPECT_EQ(smooth->spec().activation, "softplus");
  const auto a = relu.parameters(), b = smooth->parameters();
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(at::equal(a[i], b[i]));
  const at::Tensor x = at::rand({4, 1, 28, 28});
  const at::Tensor gap = (smooth->forward(x) - relu.forward(x)).abs().max();
  EXPECT_LT(gap.item<double>(), 0.05 * relu.forward(x).abs().max().item<double>());
  EXPECT_GT(gap.item<double>(), 0.0);  // a different function, not the same one
}

TEST(Upi, SurrogateNeedsABuiltinModel) {
  QuadraticModel model(at::randn({4}, at::kDouble), at::randn({4}, at::kDouble), 1.0);
  const Dataset data = predicted_by(model, at::rand({3, 1, 2, 2}));
  try {
    upi_grad(model, data, 0.1, UpiOptions().set_surrogate_beta(10).set_passes(1));
    FAIL() << "surrogate accepted for a non-built-in model";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("built-in"), std::string::npos) << error.what();
  }
}

TEST(Upi, BadOptionsAreRefusedWithTheirValues) {
  EXPECT_THROW(UpiOptions().set_eps({-1.0}).check(), Error);
  EXPECT_THROW(UpiOptions().set_passes(0).check(), Error);
  EXPECT_THROW(UpiOptions().set_method("svd").check(), Error);
  EXPECT_THROW(UpiOptions().set_top_k(-2).check(), Error);
  EXPECT_EQ(UpiOptions().resolved_top_k(28, 28), 16);
  EXPECT_EQ(UpiOptions().resolved_top_k(224, 224), 1000);
  EXPECT_THROW(UpiOptions().set_top_k(50).resolved_top_k(6, 6), Error);
  try {
    UpiOptions().set_eps({0.5, -2.0}).check();
    FAIL() << "negative eps accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("-2"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace robustlens
