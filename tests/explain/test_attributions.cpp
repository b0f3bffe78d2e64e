#include "robustlens/explain/attributions.h"

#include "robustlens/core/error.h"
#include "robustlens/core/random.h"
#include "robustlens/models/builtin_model.h"
#include "robustlens/models/load_model.h"
#include "test_support.h"

#include <gtest/gtest.h>
#include <torch/autograd.h>
#include <torch/utils.h>

namespace robustlens {
namespace {

/// A smooth (softplus) MLP in float64, for finite differences.
std::unique_ptr<BuiltinModel> smooth_model() {
  torch::manual_seed(8);
  auto model = std::make_unique<BuiltinModel>(ArchitectureSpec()
                                                  .set_name("mlp")
                                                  .set_activation("softplus")
                                                  .set_input_shape({1, 4, 4})
                                                  .set_num_classes(5)
                                                  .set_width(24),
                                              std::vector<std::string>{});
  model->net().to(at::kDouble);
  model->set_training(false);
  return model;
}

double score(Model& model, const at::Tensor& x, std::int64_t target, bool softmax) {
  at::NoGradGuard no_grad;
  at::Tensor s = model.forward(x);
  if (softmax) s = s.softmax(1);
  return s[0][target].item<double>();
}

/// Central differences of the target score with respect to every pixel of x (1×C×H×W).
at::Tensor finite_difference_gradient(Model& model, const at::Tensor& x, std::int64_t target, bool softmax) {
  const double h = 1e-6;
  at::Tensor gradient = at::zeros_like(x);
  for (std::int64_t j = 0; j < x.numel(); ++j) {
    at::Tensor plus = x.clone(), minus = x.clone();
    plus.view(-1)[j] += h;
    minus.view(-1)[j] -= h;
    gradient.view(-1)[j] = (score(model, plus, target, softmax) - score(model, minus, target, softmax)) / (2 * h);
  }
  return gradient;
}

TEST(Attributions, SaliencyAndInputTimesGradientMatchFiniteDifferences) {
  auto model = smooth_model();
  const at::Tensor x = at::rand({1, 1, 4, 4}, at::kDouble);
  const at::Tensor target = at::tensor({3}, at::kLong);
  for (const bool softmax : {false, true}) {
    const at::Tensor expected = finite_difference_gradient(*model, x, 3, softmax);
    const at::Tensor saliency = attribute(*model, x, target, AttributionOptions().set_softmax(softmax));
    EXPECT_TRUE(at::allclose(saliency, expected, 1e-5, 1e-8)) << "softmax " << softmax;
    const at::Tensor ixg = attribute(
        *model, x, target, AttributionOptions().set_method(AttributionMethod::input_x_gradient).set_softmax(softmax));
    EXPECT_TRUE(at::allclose(ixg, x * expected, 1e-5, 1e-8));
  }
}

TEST(Attributions, IntegratedGradientsAreCompleteAndConverge) {
  auto model = smooth_model();
  const at::Tensor x = at::rand({3, 1, 4, 4}, at::kDouble);
  const at::Tensor targets = at::tensor({0, 2, 4}, at::kLong);
  std::vector<double> errors;
  for (const std::int64_t steps : {4, 32, 256}) {
    const at::Tensor ig = attribute(
        *model, x, targets,
        AttributionOptions().set_method(AttributionMethod::integrated_gradients).set_steps(steps).set_baseline(0.1));
    double error = 0;
    for (std::int64_t i = 0; i < 3; ++i) {
      const std::int64_t t = targets[i].item<std::int64_t>();
      const double gap = score(*model, x.slice(0, i, i + 1), t, false) -
                         score(*model, at::full_like(x.slice(0, i, i + 1), 0.1), t, false);
      error = std::max(error, std::abs(ig[i].sum().item<double>() - gap));
    }
    errors.push_back(error);
  }
  // Right-endpoint Riemann sums: the completeness error shrinks like 1/steps.
  EXPECT_LT(errors[1], errors[0] / 4);
  EXPECT_LT(errors[2], errors[1] / 4);
  EXPECT_LT(errors[2], 1e-3);
}

TEST(Attributions, ChunkingDoesNotChangeTheMaps) {
  auto model = smooth_model();
  const at::Tensor x = at::rand({4, 1, 4, 4}, at::kDouble);
  const at::Tensor targets = at::tensor({0, 1, 2, 3}, at::kLong);
  const auto ig = AttributionOptions().set_method(AttributionMethod::integrated_gradients).set_steps(16);
  EXPECT_TRUE(at::allclose(attribute(*model, x, targets, AttributionOptions(ig).set_batch_size(5)),
                           attribute(*model, x, targets, AttributionOptions(ig).set_batch_size(1000)), 1e-10, 1e-12));
}

TEST(Attributions, SmoothGradWithoutNoiseIsSaliencyAndIsSeeded) {
  auto model = smooth_model();
  const at::Tensor x = at::rand({2, 1, 4, 4}, at::kDouble);
  const at::Tensor targets = at::tensor({1, 4}, at::kLong);
  const auto smooth = AttributionOptions().set_method(AttributionMethod::smoothgrad).set_noise_samples(7);
  EXPECT_TRUE(at::allclose(attribute(*model, x, targets, AttributionOptions(smooth).set_noise(0.0), make_generator(1)),
                           attribute(*model, x, targets, AttributionOptions()), 1e-10, 1e-12));
  const at::Tensor first = attribute(*model, x, targets, smooth, make_generator(1));
  EXPECT_TRUE(at::equal(first, attribute(*model, x, targets, smooth, make_generator(1))));
  EXPECT_FALSE(at::equal(first, attribute(*model, x, targets, smooth, make_generator(2))));
  // Without a generator SmoothGrad refuses rather than drawing from the process-wide one.
  try {
    attribute(*model, x, targets, smooth);
    FAIL() << "SmoothGrad ran without a generator";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("draws its noise from a generator"), std::string::npos) << error.what();
  }
}

/// logit_k = (k + 1) ‖x‖² / 2: the input gradient of class k is (k + 1) x, so SmoothGrad's expectation is (k + 1) x.
class QuadraticModel : public testing::FixedFunctionModel {
 public:
  QuadraticModel() : FixedFunctionModel(3) { info_.input_shape = {1, 4, 4}; }
  at::Tensor forward(const at::Tensor& images) override {
    const at::Tensor half_square = images.flatten(1).square().sum(1, true) / 2;
    return half_square * at::arange(1, 4, images.options()).unsqueeze(0);
  }
};

TEST(Attributions, SmoothGradAveragesTheGradientsOfEachImagesOwnNoisyCopies) {
  QuadraticModel model;
  // Two images far apart: averaging another image's copies, summing instead of averaging, or one copy alone
  // would each miss the expectation by far more than the tolerance (6 standard errors: 6 σ / √S).
  const at::Tensor x = at::cat({at::zeros({1, 1, 4, 4}, at::kDouble), at::ones({1, 1, 4, 4}, at::kDouble)});
  const at::Tensor targets = at::tensor({0, 2}, at::kLong);
  const at::Tensor expected = x * at::tensor({1.0, 3.0}, at::kDouble).view({2, 1, 1, 1});
  const double sigma = 0.5;
  const std::int64_t samples = 4096;
  const auto smooth =
      AttributionOptions().set_method(AttributionMethod::smoothgrad).set_noise(sigma).set_batch_size(1000);
  const at::Tensor averaged =
      attribute(model, x, targets, AttributionOptions(smooth).set_noise_samples(samples), make_generator(3));
  const at::Tensor error = (averaged - expected).abs().amax({1, 2, 3});
  EXPECT_LT(error[0].item<double>(), 6 * 1 * sigma / std::sqrt(samples)) << averaged[0];
  EXPECT_LT(error[1].item<double>(), 6 * 3 * sigma / std::sqrt(samples)) << averaged[1];
  // One noisy copy is the gradient at x + σε: off by σ|ε| per pixel, over σ somewhere among 16 pixels.
  const at::Tensor single =
      attribute(model, x, targets, AttributionOptions(smooth).set_noise_samples(1), make_generator(3));
  EXPECT_GT((single - expected)[0].abs().max().item<double>(), sigma);
}

TEST(Attributions, MapsAreDifferentiableWithCreateGraph) {
  // g(x) = <saliency(x), v>; its gradient needs the second derivative of the model.
  auto model = smooth_model();
  const at::Tensor x = at::rand({1, 1, 4, 4}, at::kDouble);
  const at::Tensor v = at::randn({1, 1, 4, 4}, at::kDouble);
  const at::Tensor target = at::tensor({2}, at::kLong);
  const auto options = AttributionOptions().set_softmax(true).set_create_graph(true);
  const auto g = [&](const at::Tensor& input) { return (attribute(*model, input, target, options) * v).sum(); };
  const at::Tensor leaf = x.clone().requires_grad_(true);
  const at::Tensor analytic = torch::autograd::grad({g(leaf)}, {leaf})[0];
  const double h = 1e-5;
  for (std::int64_t j = 0; j < x.numel(); ++j) {
    at::Tensor plus = x.clone(), minus = x.clone();
    plus.view(-1)[j] += h;
    minus.view(-1)[j] -= h;
    const double numeric =
        (g(plus.requires_grad_(true)).item<double>() - g(minus.requires_grad_(true)).item<double>()) / (2 * h);
    EXPECT_NEAR(analytic.view(-1)[j].item<double>(), numeric, 1e-6 + 1e-4 * std::abs(numeric)) << "pixel " << j;
  }
}

TEST(Attributions, SoftmaxSaliencyOfAConfidentModelIsItsClosedForm) {
  // Two classes, logits (w·x, −w·x) with a gap of about 60 at float32: 1 − p
  // rounds to 0, so differentiating softmax itself gives a zero or noise map.
  // The closed form: ∇p_0 = p_0·p_1·2w, a map proportional to |w|.
  testing::TemporaryDirectory dir;
  torch::manual_seed(9);
  const at::Tensor w = at::randn({16});
  testing::save_linear_torchscript(dir.file("confident.pt"), at::stack({w, -w}), at::zeros({2}));
  auto model = load_model(dir.file("confident.pt"), at::kCPU);
  at::Tensor x = at::rand({3, 1, 4, 4});
  x = x * (30.0 / x.flatten(1).matmul(w).abs().view({-1, 1, 1, 1}));     // w·x = ±30
  const at::Tensor target = x.flatten(1).matmul(w).lt(0).to(at::kLong);  // the predicted class
  const at::Tensor maps = normalise_maps(attribute(*model, x, target, AttributionOptions().set_softmax(true)));
  const at::Tensor expected = (w.abs() / w.abs().sum()).view({1, 4, 4}).expand({3, 4, 4});
  EXPECT_TRUE(at::allclose(maps, expected, 1e-4, 1e-6)) << maps[0] << expected[0];
  // and the raw values: p_0·p_1·2|w| with p_1 = 1/(1 + e^60)
  const double p_other = 1.0 / (1.0 + std::exp(60.0));
  const at::Tensor raw = attribute(*model, x, target, AttributionOptions().set_softmax(true)).abs().flatten(1)[0];
  EXPECT_TRUE(at::allclose(raw.to(at::kDouble), (2 * p_other * w.abs()).to(at::kDouble), 1e-3, 0)) << raw;
}

TEST(Attributions, NormalisedMapsAreNonNegativeAndSumToOne) {
  const at::Tensor raw = at::randn({3, 3, 5, 5});
  const at::Tensor maps = normalise_maps(raw);
  EXPECT_EQ(maps.sizes(), (at::IntArrayRef{3, 5, 5}));
  EXPECT_GE(maps.min().item<float>(), 0.0f);
  EXPECT_TRUE(at::allclose(maps.flatten(1).sum(1), at::ones({3})));
  EXPECT_THROW(
      attribute(*smooth_model(), at::rand({2, 1, 4, 4}, at::kDouble), at::tensor({0}, at::kLong), AttributionOptions()),
      Error);
}

}  // namespace
}  // namespace robustlens
