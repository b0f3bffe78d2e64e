#include "robustlens/analyses/upi.h"

#include "robustlens/core/error.h"
#include "robustlens/core/random.h"
#include "robustlens/explain/map_metrics.h"
#include "robustlens/models/builtin_model.h"
#include "test_support.h"

#include <gtest/gtest.h>
#include <torch/autograd.h>
#include <torch/utils.h>

#include <algorithm>
#include <cmath>

namespace robustlens {
namespace {

/// Two classes, logit_0 = u·x + c·(v·x)², logit_1 = 0, in double precision. The
/// softmax saliency map is |σ'(z)·(u + 2c(v·x)v)| normalised: the scalar σ'
/// cancels in the normalisation, so the map moves only when v·x does. The one
/// direction that moves it is v.
class QuadraticModel : public testing::FixedFunctionModel {
 public:
  QuadraticModel(at::Tensor u, at::Tensor v, double c)
      : FixedFunctionModel(2), u_(std::move(u)), v_(std::move(v)), c_(c) {}
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
  const at::Tensor top = top_right_singular_vector(rows, make_generator(0), 2000, 1e-13);
  const at::Tensor reference = std::get<2>(at::linalg_svd(rows, false))[0];
  EXPECT_NEAR(std::abs(top.dot(reference).item<double>()), 1.0, 1e-9);
  EXPECT_NEAR(top.norm().item<double>(), 1.0, 1e-12);
  EXPECT_THROW(top_right_singular_vector(at::zeros({0, 3}), make_generator(0)), Error);
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
  const at::Generator generator = make_generator(1);
  EXPECT_LE(upi_grad(*model, data, 0.5, options, generator).norm().item<double>(), 0.5 + 1e-5);
  const at::Tensor pca = upi_pca(*model, data, upi_pca_direction(*model, data, options, generator), 0.5, options);
  EXPECT_NEAR(pca.norm().item<double>(), 0.5, 1e-5);
  const at::Tensor per_image = per_image_map_attack(*model, data, 0.5, options, generator);
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
    return relative_l2(clean,
                       interpretation_maps(*model, x + delta, y, AttributionOptions(saliency).set_create_graph(graph)))
        .mean();
  };
  const at::Tensor delta = (0.1 * at::randn({1, 1, 4, 4}, at::kDouble)).requires_grad_(true);
  const at::Tensor gradient = torch::autograd::grad({objective(delta, true)}, {delta})[0];
  for (int trial = 0; trial < 3; ++trial) {
    const at::Tensor direction = at::randn({1, 1, 4, 4}, at::kDouble);
    const double h = 1e-5;
    const double numeric = (objective(delta.detach() + h * direction, false).item<double>() -
                            objective(delta.detach() - h * direction, false).item<double>()) /
                           (2 * h);
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
  const AttributionOptions ig =
      AttributionOptions().set_method(AttributionMethod::integrated_gradients).set_steps(8).set_softmax(true);
  const at::Tensor clean = interpretation_maps(*model, x, y, ig).detach();
  const at::Tensor moved = x + 0.05 * at::randn_like(x);
  const at::Tensor batched = map_attack_gradients(*model, moved, clean, y, ig);
  for (std::int64_t i = 0; i < 6; ++i) {
    const at::Tensor single =
        map_attack_gradients(*model, moved.slice(0, i, i + 1), clean.slice(0, i, i + 1), y.slice(0, i, i + 1), ig);
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
  const at::Tensor direction = upi_pca_direction(model, attack, options, make_generator(4)).flatten();
  EXPECT_GT(std::abs(direction.to(at::kDouble).dot(v / v.norm()).item<double>()), 0.99);
  const UpiResult result = analyse_upi(model, attack, test, UpiOptions(options).set_summary_eps(0.3));
  const auto& m = result.metrics.at(0);
  const double random = m.at("universal-random").dissimilarity;
  SCOPED_TRACE(result.to_json().dump());
  EXPECT_GT(m.at("upi-pca").dissimilarity, 2 * random);
  EXPECT_GT(m.at("upi-grad").dissimilarity, 2 * random);
  EXPECT_GE(m.at("per-image-attack").dissimilarity,
            0.95 * std::max(m.at("upi-pca").dissimilarity, m.at("upi-grad").dissimilarity));
  EXPECT_EQ(result.test_images, 40);
  // The classification baseline: a universal perturbation in the same ball, built to change answers.
  EXPECT_LE(result.perturbations.at(0).at("classification-uap").norm().item<double>(), 0.3 + 1e-6);
  EXPECT_GE(m.at("classification-uap").fooling_rate, m.at("universal-random").fooling_rate);
}

TEST(Upi, MapChangeOverUnchangedPredictionsAndFoolingRate) {
  // logit_0 = u·x + c(v·x)², u ⟂ v: half the images sit 0.05 from the boundary u·x = 0, half 1.0 from it, so a
  // universal step of 0.3 along −u (on class 0 images) flips exactly the near half (the step of 0.2 along v
  // adds at most 0.075 to the logit). The map change over the
  // unchanged images is then the far half's own map change.
  torch::manual_seed(6);
  at::Tensor u = at::randn({16}, at::kDouble), v = at::randn({16}, at::kDouble);
  u = u / u.norm();
  v = v - v.dot(u) * u;
  v = v / v.norm();
  QuadraticModel model(u, v, 0.3);
  const at::Tensor along_v = at::randn({20, 1}, at::kDouble).mul(0.1) * v;
  const at::Tensor distance = at::cat({at::full({10, 1}, 0.05, at::kDouble), at::full({10, 1}, 1.0, at::kDouble)});
  const at::Tensor images = (distance * u + along_v).view({20, 1, 4, 4});
  const Dataset test = predicted_by(model, images);
  ASSERT_TRUE(test.labels.eq(0).all().item<bool>());
  const at::Tensor delta = (-0.3 * u + 0.2 * v).view({1, 4, 4});  // the v part moves the maps
  const UpiOptions options = UpiOptions().set_batch_size(7);
  const UpiMetrics all = evaluate_perturbation(model, test, delta, options);
  EXPECT_DOUBLE_EQ(all.fooling_rate, 0.5);
  std::vector<std::int64_t> far;
  for (std::int64_t i = 10; i < 20; ++i) far.push_back(i);
  const UpiMetrics far_only = evaluate_perturbation(model, test.subset(far), delta, options);
  EXPECT_EQ(far_only.fooling_rate, 0);
  EXPECT_NEAR(all.dissimilarity_unchanged, far_only.dissimilarity, 1e-12);
  EXPECT_NEAR(far_only.dissimilarity_unchanged, far_only.dissimilarity, 1e-12);
  EXPECT_GT(far_only.dissimilarity, 0);
  // Every prediction flips: no unchanged image to average over.
  std::vector<std::int64_t> near;
  for (std::int64_t i = 0; i < 10; ++i) near.push_back(i);
  const UpiMetrics near_only = evaluate_perturbation(model, test.subset(near), delta, options);
  EXPECT_EQ(near_only.fooling_rate, 1);
  EXPECT_TRUE(std::isnan(near_only.dissimilarity_unchanged));
  EXPECT_TRUE(
      nlohmann::json::parse(near_only.to_json().dump()).at("dissimilarity_unchanged").is_null());  // written as null
}

TEST(Upi, DrawsAreAveragedWithTheirStandardDeviation) {
  std::vector<UpiMetrics> draws(3);
  const double dissimilarity[] = {0.1, 0.2, 0.6}, unchanged[] = {0.1, std::nan(""), 0.5}, fooled[] = {0, 0, 0.3};
  for (int i = 0; i < 3; ++i) {
    draws[i].dissimilarity = dissimilarity[i];
    draws[i].dissimilarity_unchanged = unchanged[i];
    draws[i].fooling_rate = fooled[i];
  }
  const UpiMetrics mean = average_draws(draws);
  EXPECT_EQ(mean.draws, 3);
  EXPECT_NEAR(mean.dissimilarity, 0.3, 1e-15);
  EXPECT_NEAR(mean.dissimilarity_spread, std::sqrt((0.04 + 0.01 + 0.09) / 2), 1e-15);
  EXPECT_NEAR(mean.dissimilarity_unchanged, 0.3, 1e-15);  // over the draws where it is defined
  EXPECT_NEAR(mean.dissimilarity_unchanged_spread, std::sqrt(0.08 / 1), 1e-15);
  EXPECT_NEAR(mean.fooling_rate, 0.1, 1e-15);
  EXPECT_NEAR(mean.fooling_rate_spread, std::sqrt((0.01 + 0.01 + 0.04) / 2), 1e-15);
  EXPECT_EQ(mean.to_json().at("spread").at("dissimilarity"), mean.dissimilarity_spread);
  EXPECT_FALSE(draws[0].to_json().contains("spread"));  // one draw: no spread to report
  EXPECT_THROW(average_draws({}), Error);
}

TEST(Upi, SummaryRadiusIsTheMedianMinimalPerturbationAndJoinsTheList) {
  // Linear two-class model (c = 0): the minimal L2 perturbation of x is |u·x|/‖u‖, so the summary radius is
  // the median of those over the correctly classified test images.
  torch::manual_seed(7);
  const at::Tensor u = at::randn({16}, at::kDouble), v = at::randn({16}, at::kDouble);
  QuadraticModel model(u, v, 0.0);
  const Dataset test = predicted_by(model, at::rand({41, 1, 4, 4}, at::kDouble) - 0.5);
  const at::Tensor closed_form = test.images.flatten(1).matmul(u).abs() / u.norm();
  const double median = std::get<0>(closed_form.sort())[20].item<double>();
  std::string source;
  const UpiOptions options =
      UpiOptions().set_eps({0.01, 10.0}).set_passes(1).set_power_iterations(5).set_random_draws(3);
  EXPECT_NEAR(resolve_summary_eps(model, test, options, source), median, 1e-3 * median);
  EXPECT_NE(source.find("median minimal perturbation"), std::string::npos) << source;

  const UpiResult result = analyse_upi(model, test, test, options);
  ASSERT_EQ(result.eps.size(), 3u);
  EXPECT_TRUE(std::is_sorted(result.eps.begin(), result.eps.end()));
  EXPECT_EQ(result.summary_index, 1u);
  EXPECT_NEAR(result.eps[1], median, 1e-3 * median);
  EXPECT_EQ(result.metrics.size(), 3u);
  EXPECT_EQ(result.metrics[1].at("per-image-random").draws, 3);
  EXPECT_EQ(result.floor.at("universal-random").draws, 3);
  EXPECT_DOUBLE_EQ(result.floor_eps, 1e-3);
  // A perturbation of the median minimal length along −u·sign flips about half; a universal one cannot flip more
  // than the images within its length of the boundary.
  const nlohmann::json json = result.to_json();
  EXPECT_EQ(json.at("summary").at("metrics"), json.at("per_eps").at(1).at("metrics"));
  EXPECT_LE(result.metrics[1].at("upi-grad").fooling_rate, 0.5 + 1.0 / 41);

  // A given radius already on the list is not added twice.
  const UpiResult given = analyse_upi(model, test, test, UpiOptions(options).set_summary_eps(10.0).set_method("pca"));
  EXPECT_EQ(given.eps, (std::vector<double>{0.01, 10.0}));
  EXPECT_EQ(given.summary_index, 1u);
  EXPECT_EQ(given.summary_eps_source, "given");
}

TEST(SoftplusSurrogate, SameParametersAndOutputsCloseToTheReluModelForLargeBeta) {
  torch::manual_seed(5);
  BuiltinModel relu(ArchitectureSpec().set_name("lenet").set_input_shape({1, 28, 28}).set_num_classes(10),
                    numbered_class_names(10));
  relu.set_training(false);
  const auto smooth = relu.softplus_surrogate(1000);
  EXPECT_EQ(smooth->info().architecture.at("activation"), "softplus");
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
    upi_grad(model, data, 0.1, UpiOptions().set_surrogate_beta(10).set_passes(1), make_generator(0));
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
  EXPECT_THROW(UpiOptions().set_summary_eps(-0.1).check(), Error);
  EXPECT_THROW(UpiOptions().set_floor_eps(0).check(), Error);
  EXPECT_THROW(UpiOptions().set_random_draws(0).check(), Error);
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
