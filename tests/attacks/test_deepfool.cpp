#include "robustlens/attacks/deepfool.h"

#include "robustlens/attacks/fgsm.h"
#include "robustlens/models/builtin_model.h"
#include "robustlens/models/load_model.h"
#include "test_support.h"

#include <gtest/gtest.h>
#include <torch/utils.h>

namespace robustlens {
namespace {

struct LinearCase {
  at::Tensor weight, bias, images;
  std::unique_ptr<Model> model;
};

LinearCase linear_case(testing::TemporaryDirectory& dir, std::int64_t classes = 10) {
  torch::manual_seed(3);
  LinearCase c{at::randn({classes, 36}), at::randn({classes}), at::rand({20, 1, 6, 6}), nullptr};
  testing::save_linear_torchscript(dir.file("linear.pt"), c.weight, c.bias);
  c.model = load_model(dir.file("linear.pt"), at::kCPU);
  return c;
}

/// 1.02 · min_k |f_k − f_c| / ‖P(w_k − w_c)‖ per sample, P = Q Qᵀ (or identity).
at::Tensor closed_form_margins(const LinearCase& c, const at::Tensor& basis) {
  const at::Tensor logits = c.images.flatten(1).matmul(c.weight.t()) + c.bias;
  const at::Tensor predicted = logits.argmax(1);
  std::vector<double> margins;
  for (std::int64_t i = 0; i < logits.size(0); ++i) {
    const std::int64_t k0 = predicted[i].item<std::int64_t>();
    double best = std::numeric_limits<double>::infinity();
    for (std::int64_t k = 0; k < logits.size(1); ++k) {
      if (k == k0) continue;
      at::Tensor w = c.weight[k] - c.weight[k0];
      if (basis.defined()) w = basis.matmul(basis.t().matmul(w));
      best = std::min(best, std::abs((logits[i][k] - logits[i][k0]).item<double>()) / w.norm().item<double>());
    }
    margins.push_back(1.02 * best);
  }
  return at::tensor(margins, at::kDouble);
}

TEST(DeepFool, LinearModelMarginEqualsClosedFormInFullSpaceAndSubspace) {
  testing::TemporaryDirectory dir;
  LinearCase c = linear_case(dir);
  const at::Tensor basis = std::get<0>(at::linalg_qr(at::randn({36, 8})));  // orthonormal 36×8
  const Projector project = [&](const at::Tensor& w, const at::Tensor&) {
    return w.flatten(1).matmul(basis).matmul(basis.t()).view_as(w);
  };
  for (const bool subspace : {false, true}) {
    DeepFoolOptions options;
    if (subspace) options.set_projector(project);
    const DeepFoolResult result = deepfool(*c.model, c.images, options);
    const at::Tensor expected = closed_form_margins(c, subspace ? basis : at::Tensor());
    EXPECT_TRUE(at::allclose(result.norms.to(at::kDouble), expected, 1e-4, 0)) << "subspace " << subspace << "\n"
                                                                               << result.norms << expected;
    EXPECT_TRUE(result.flipped.all().item<bool>());
    EXPECT_EQ(result.iterations.max().item<std::int64_t>(), 1);
    if (subspace) {  // the perturbation lies in the subspace
      const at::Tensor delta = result.perturbations.flatten(1);
      EXPECT_TRUE(at::allclose(delta.matmul(basis).matmul(basis.t()), delta, 1e-4, 1e-6));
    }
  }
}

TEST(DeepFool, BatchedEqualsOneSampleAtATime) {
  torch::manual_seed(4);
  BuiltinModel model(ArchitectureSpec().set_name("mlp").set_input_shape({1, 6, 6}).set_num_classes(10).set_width(64),
                     {});
  model.set_training(false);
  const at::Tensor images = at::rand({12, 1, 6, 6});
  const DeepFoolResult batched = deepfool(model, images, DeepFoolOptions().set_batch_size(5));
  for (std::int64_t i = 0; i < images.size(0); ++i) {
    const DeepFoolResult single = deepfool(model, images.slice(0, i, i + 1), DeepFoolOptions());
    EXPECT_NEAR(single.norms[0].item<double>(), batched.norms[i].item<double>(), 1e-4 * single.norms[0].item<double>());
    EXPECT_EQ(single.iterations[0].item<std::int64_t>(), batched.iterations[i].item<std::int64_t>());
    EXPECT_EQ(single.adversarial_labels[0].item<std::int64_t>(), batched.adversarial_labels[i].item<std::int64_t>());
  }
  EXPECT_TRUE(batched.flipped.all().item<bool>());
  EXPECT_TRUE(batched.adversarial_labels.ne(batched.original_labels).all().item<bool>());
}

TEST(DeepFool, ClipKeepsTheResultInTheImageDomainAndReportsNonFlipped) {
  testing::TemporaryDirectory dir;
  LinearCase c = linear_case(dir);
  const DeepFoolResult clipped = deepfool(*c.model, c.images, DeepFoolOptions().set_clip(true));
  const at::Tensor adversarial = c.images + clipped.perturbations;
  EXPECT_GE(adversarial.min().item<float>(), 0.0f);
  EXPECT_LE(adversarial.max().item<float>(), 1.0f);
  // A subspace orthogonal to every class difference: no sample can move; each
  // stops after one iteration, reported as not flipped, with a zero perturbation.
  const DeepFoolResult stuck =
      deepfool(*c.model, c.images,
               DeepFoolOptions().set_projector([](const at::Tensor& w, const at::Tensor&) { return w * 0; }));
  EXPECT_FALSE(stuck.flipped.any().item<bool>());
  EXPECT_EQ(stuck.iterations.max().item<std::int64_t>(), 1);
  EXPECT_EQ(stuck.norms.abs().max().item<float>(), 0.0f);
}

TEST(Fgsm, LinearTwoClassModelMovesAlongTheSignOfTheWeightDifference) {
  testing::TemporaryDirectory dir;
  LinearCase c = linear_case(dir, 2);
  const at::Tensor labels = at::zeros({20}, at::kLong);
  const at::Tensor adversarial = fgsm_attack(*c.model, c.images, labels, Norm::linf, 0.05, /*clip=*/false);
  const at::Tensor expected = c.images + 0.05 * (c.weight[1] - c.weight[0]).sign().view({1, 1, 6, 6});
  EXPECT_TRUE(at::allclose(adversarial, expected, 1e-6, 1e-6));
  const at::Tensor l2 = fgsm_attack(*c.model, c.images, labels, Norm::l2, 0.5, false);
  const at::Tensor direction = (c.weight[1] - c.weight[0]) / (c.weight[1] - c.weight[0]).norm();
  EXPECT_TRUE(at::allclose(l2, c.images + 0.5 * direction.view({1, 1, 6, 6}), 1e-5, 1e-6));
}

}  // namespace
}  // namespace robustlens
