#include "robustlens/attacks/minimal_perturbation.h"

#include "robustlens/core/error.h"
#include "robustlens/models/builtin_model.h"
#include "test_support.h"

#include <gtest/gtest.h>
#include <torch/utils.h>

#include <limits>

namespace robustlens {
namespace {

using testing::MaskedLinearModel;

struct LinearCase {
  at::Tensor weight, bias, images, labels;
};

/// 20 images of 1×6×6; labels = the model's predictions except for the last two images.
LinearCase linear_case(std::int64_t classes) {
  torch::manual_seed(11);
  LinearCase c{at::randn({classes, 36}), at::randn({classes}), at::rand({20, 1, 6, 6}), {}};
  c.labels =
      (c.images.flatten(1).to(at::kDouble).matmul(c.weight.t().to(at::kDouble)) + c.bias.to(at::kDouble)).argmax(1);
  c.labels.slice(0, 18).add_(1).remainder_(classes);
  return c;
}

/// min over k ≠ y of (f_y − f_k) / ‖w_y − w_k‖_dual: the distance to the nearest boundary of the true class
/// (L2: dual L2; Linf: dual L1); 0 when misclassified.
at::Tensor closed_form(const LinearCase& c, Norm norm) {
  const at::Tensor w = c.weight.to(at::kDouble), b = c.bias.to(at::kDouble);
  const at::Tensor logits = c.images.flatten(1).to(at::kDouble).matmul(w.t()) + b;
  std::vector<double> distances;
  for (std::int64_t i = 0; i < logits.size(0); ++i) {
    const std::int64_t y = c.labels[i].item<std::int64_t>();
    if (logits[i].argmax().item<std::int64_t>() != y) {
      distances.push_back(0);
      continue;
    }
    double best = std::numeric_limits<double>::infinity();
    for (std::int64_t k = 0; k < logits.size(1); ++k) {
      if (k == y) continue;
      const at::Tensor difference = w[y] - w[k];
      const double dual = norm == Norm::l2 ? difference.norm().item<double>() : difference.abs().sum().item<double>();
      best = std::min(best, (logits[i][y] - logits[i][k]).item<double>() / dual);
    }
    distances.push_back(best);
  }
  return at::tensor(distances, at::kDouble);
}

MinimalPerturbationOptions only(Norm norm) {
  return MinimalPerturbationOptions()
      .set_norm(norm)
      .set_clip(false)
      .set_deepfool(false)
      .set_fmn(false)
      .set_bisection_rounds(0)
      .set_long_fmn_steps(0)
      .set_ray_search_steps(0);
}

void expect_close(const at::Tensor& actual, const at::Tensor& expected, double relative, const std::string& what) {
  for (std::int64_t i = 0; i < expected.size(0); ++i) {
    EXPECT_NEAR(actual[i].item<double>(), expected[i].item<double>(), relative * expected[i].item<double>() + 1e-9)
        << what << ", sample " << i;
  }
}

TEST(Fmn, FindsTheClosedFormMinimumOfATwoClassLinearModelInL2AndLinf) {
  const LinearCase c = linear_case(2);
  testing::LinearModel model(c.weight, c.bias);
  for (const Norm norm : {Norm::l2, Norm::linf}) {
    const FmnResult result = fmn_attack(model, c.images, c.labels,
                                        FmnOptions().set_norm(norm).set_clip(false).set_steps(300).set_batch_size(7));
    EXPECT_TRUE(result.found.all().item<bool>()) << to_string(norm);
    expect_close(result.norms.to(at::kDouble), closed_form(c, norm), 1e-3, "fmn " + to_string(norm));
    // What it reports is what it found: the perturbation has that norm and fools the model.
    expect_close(perturbation_norms(result.perturbations, norm).to(at::kDouble), result.norms.to(at::kDouble), 1e-6,
                 "fmn norm of the perturbation");
    EXPECT_TRUE(model.forward(c.images + result.perturbations).argmax(1).ne(c.labels).all().item<bool>());
  }
}

/// The minimal L2 perturbation of a two-class linear model inside [0,1]: minimise ‖δ‖ subject to
/// a·δ >= c (a = w_other − w_y, c = f_y − f_other) and 0 <= x + δ <= 1. By the KKT conditions
/// δ = clamp(λa, −x, 1 − x) for the λ >= 0 at which a·δ = c, found by bisection (a·δ grows with λ).
double box_minimum(const LinearCase& c, std::int64_t i) {
  const at::Tensor w = c.weight.to(at::kDouble), x = c.images[i].flatten().to(at::kDouble);
  const std::int64_t y = c.labels[i].item<std::int64_t>();
  const at::Tensor a = w[1 - y] - w[y];
  const double needed =
      ((w[y] - w[1 - y]).dot(x) + c.bias[y].item<double>() - c.bias[1 - y].item<double>()).item<double>();
  const auto delta = [&](double lambda) { return at::max(at::min(lambda * a, 1 - x), -x); };
  double low = 0, high = 1;
  while (a.dot(delta(high)).item<double>() < needed) high *= 2;
  for (int step = 0; step < 200; ++step) {
    const double middle = (low + high) / 2;
    (a.dot(delta(middle)).item<double>() < needed ? low : high) = middle;
  }
  return delta(high).norm().item<double>();
}

TEST(Fmn, FindsTheMinimumInsideTheImageDomainWhenManyPixelsAreSaturated) {
  LinearCase c = linear_case(2);
  // Half the pixels black, as on Fashion-MNIST: the unconstrained direction is mostly infeasible there.
  c.images.flatten(1).slice(1, 0, 18).zero_();
  testing::LinearModel model(c.weight, c.bias);
  c.labels = model.forward(c.images).argmax(1);
  const FmnResult result = fmn_attack(model, c.images, c.labels, FmnOptions().set_steps(300));
  const at::Tensor adversarial = c.images + result.perturbations;
  EXPECT_TRUE(adversarial.ge(0).logical_and(adversarial.le(1)).all().item<bool>());
  EXPECT_TRUE(result.found.all().item<bool>());
  for (std::int64_t i = 0; i < c.images.size(0); ++i) {
    EXPECT_NEAR(result.norms[i].item<double>(), box_minimum(c, i), 1e-3 * box_minimum(c, i)) << "sample " << i;
  }
}

TEST(Fmn, BatchedEqualsOneSampleAtATime) {
  torch::manual_seed(4);
  BuiltinModel model(ArchitectureSpec().set_name("mlp").set_input_shape({1, 6, 6}).set_num_classes(10).set_width(64),
                     {});
  model.set_training(false);
  const at::Tensor images = at::rand({9, 1, 6, 6});
  const at::Tensor labels = batched_logits(model, images, 9).argmax(1);
  const FmnOptions options = FmnOptions().set_steps(40).set_batch_size(4);
  const FmnResult batched = fmn_attack(model, images, labels, options);
  for (std::int64_t i = 0; i < images.size(0); ++i) {
    const FmnResult single = fmn_attack(model, images.slice(0, i, i + 1), labels.slice(0, i, i + 1), options);
    EXPECT_NEAR(single.norms[0].item<double>(), batched.norms[i].item<double>(), 1e-4 * single.norms[0].item<double>());
  }
}

TEST(MinimalPerturbation, PgdBisectionConvergesToTheClosedFormFromAnyAdversarialStart) {
  const LinearCase c = linear_case(2);
  testing::LinearModel model(c.weight, c.bias);
  for (const Norm norm : {Norm::l2, Norm::linf}) {
    const at::Tensor expected = closed_form(c, norm);
    // Start from a perturbation far beyond the boundary: four times FMN's.
    const FmnResult start =
        fmn_attack(model, c.images, c.labels, FmnOptions().set_norm(norm).set_clip(false).set_steps(30));
    const MinimalPerturbationResult result =
        minimal_perturbations(model, c.images, c.labels, only(norm).set_bisection_rounds(14).set_bisection_steps(20),
                              {{"far", start.perturbations * 4}});
    ASSERT_EQ(result.attacks, (std::vector<std::string>{"clean", "far", "pgd-bisection"}));
    expect_close(result.norms, expected, 1e-3, "bisection " + to_string(norm));
    const at::Tensor correct = expected > 0;
    EXPECT_TRUE(result.found_by.masked_select(correct).eq(2).all().item<bool>()) << result.found_by;
    EXPECT_TRUE(result.found_by.masked_select(correct.logical_not()).eq(0).all().item<bool>()) << result.found_by;
  }
}

TEST(MinimalPerturbation, LongFmnRunsOnlyOnTheImagesNoOtherMemberFooled) {
  const LinearCase c = linear_case(2);
  testing::LinearModel model(c.weight, c.bias);
  const std::int64_t n = c.images.size(0);
  for (const Norm norm : {Norm::l2, Norm::linf}) {
    const at::Tensor expected = closed_form(c, norm);
    // A given attack that fools the first half at twice the minimum and leaves the rest alone.
    const FmnResult fmn =
        fmn_attack(model, c.images, c.labels, FmnOptions().set_norm(norm).set_clip(false).set_steps(30));
    const at::Tensor first_half = at::arange(n).lt(n / 2);
    const at::Tensor given = fmn.perturbations * 2 * first_half.view({n, 1, 1, 1}).to(at::kFloat);
    const MinimalPerturbationResult result =
        minimal_perturbations(model, c.images, c.labels, only(norm).set_long_fmn_steps(300), {{"half", given}});
    ASSERT_EQ(result.attacks, (std::vector<std::string>{"clean", "half", "fmn-long"}));
    const at::Tensor correct = expected > 0;
    const at::Tensor rest = correct.logical_and(first_half.logical_not());
    expect_close(result.norms.masked_select(rest), expected.masked_select(rest), 1e-3, "long fmn " + to_string(norm));
    EXPECT_TRUE(result.found_by.masked_select(rest).eq(2).all().item<bool>()) << result.found_by;
    // Where the given attack had fooled the image, the long run did not run (its column is +inf).
    const at::Tensor fooled_before = correct.logical_and(first_half);
    EXPECT_TRUE(at::isinf(result.per_attack_norms.select(1, 2).masked_select(fooled_before)).all().item<bool>());
    EXPECT_TRUE(result.found_by.masked_select(fooled_before).eq(1).all().item<bool>()) << result.found_by;
    const MinimalPerturbationResult without =
        minimal_perturbations(model, c.images, c.labels, only(norm), {{"half", given}});
    EXPECT_EQ(without.found_by_counts().at("none"), rest.sum().item<std::int64_t>());
  }
}

TEST(MinimalPerturbation, IsTheSmallestCheckedMemberAndCountsMisclassifiedImagesAtZero) {
  // Ten classes: the nearest boundary is often not that of the runner-up class, which FMN and PGD
  // head for; DeepFool checks every class, so the ensemble still reaches the closed form, and no
  // member ever reports less than it (every candidate is a checked adversarial).
  const LinearCase c = linear_case(10);
  testing::LinearModel model(c.weight, c.bias);
  const MinimalPerturbationOptions options =
      MinimalPerturbationOptions().set_clip(false).set_deepfool_options(DeepFoolOptions().set_overshoot(1e-4));
  const MinimalPerturbationResult result = minimal_perturbations(model, c.images, c.labels, options);
  ASSERT_EQ(result.attacks, (std::vector<std::string>{"clean", "deepfool", "fmn", "pgd-bisection", "fmn-long"}));
  const at::Tensor expected = closed_form(c, Norm::l2);
  expect_close(result.norms, expected, 1e-3, "ensemble");
  EXPECT_TRUE(result.per_attack_norms.ge(expected.unsqueeze(1) * (1 - 1e-6)).all().item<bool>())
      << result.per_attack_norms;
  EXPECT_TRUE(at::equal(std::get<0>(result.per_attack_norms.min(1)), result.norms));
  EXPECT_EQ(result.norms[18].item<double>(), 0);
  EXPECT_EQ(result.found_by[19].item<std::int64_t>(), 0);
  EXPECT_FALSE(result.gradient_masking_warning);
  EXPECT_EQ(result.deepfool_compared, 18);
  EXPECT_DOUBLE_EQ(result.share_within(0), 0.1);
  EXPECT_DOUBLE_EQ(result.share_within(1e9), 1.0);
  const nlohmann::json counts = result.found_by_counts();
  EXPECT_EQ(counts.at("clean"), 2);
  EXPECT_EQ(counts.at("none"), 0);
  // Batches of 7 mix fooled and unfooled rows in the ray search and put the misclassified images
  // (left out of FMN and the bisection) in the last batch: every member's norm is the one-batch run's.
  const MinimalPerturbationResult batched =
      minimal_perturbations(model, c.images, c.labels, MinimalPerturbationOptions(options).set_batch_size(7));
  EXPECT_TRUE(at::allclose(batched.per_attack_norms, result.per_attack_norms, 1e-5, 1e-7))
      << batched.per_attack_norms - result.per_attack_norms;
}

TEST(MinimalPerturbation, WarnsWhenMaskedGradientsMakeDeepFoolOverestimate) {
  const LinearCase c = linear_case(2);
  MaskedLinearModel masked(c.weight, c.bias);
  const at::Tensor expected = closed_form(c, Norm::l2);
  const at::Tensor correct = expected > 0;
  for (const std::int64_t ray_search_steps : {0, 10}) {
    const MinimalPerturbationResult result = minimal_perturbations(
        masked, c.images, c.labels,
        MinimalPerturbationOptions().set_clip(false).set_bisection_rounds(8).set_ray_search_steps(ray_search_steps));
    // DeepFool's own estimate is about three times too large; the ensemble's minimum is right.
    const at::Tensor deepfool_ratio =
        result.deepfool.norms.to(at::kDouble).masked_select(correct) / expected.masked_select(correct);
    EXPECT_GT(deepfool_ratio.min().item<double>(), 2.5) << deepfool_ratio;
    expect_close(result.norms, expected, 0.02, "ensemble under masking");
    EXPECT_TRUE(result.gradient_masking_warning);
    EXPECT_DOUBLE_EQ(result.deepfool_overestimate_share, 1.0);
    EXPECT_NE(result.warning(MinimalPerturbationOptions()).find("DeepFool"), std::string::npos);
    if (ray_search_steps == 0) {  // DeepFool's step as it is: the minimum comes from the other attacks
      EXPECT_TRUE(result.found_by.masked_select(correct).ne(1).all().item<bool>()) << result.found_by;
    } else {  // scaled back along its ray, DeepFool's (right) direction reaches the boundary
      expect_close(result.per_attack_norms.select(1, 1).masked_select(correct), expected.masked_select(correct), 1e-2,
                   "deepfool along its ray");
    }
  }
}

TEST(MinimalPerturbation, RefusesBadOptionsAndInputs) {
  const LinearCase c = linear_case(10);
  testing::LinearModel model(c.weight, c.bias);
  testing::expect_error(
      [&] { minimal_perturbations(model, c.images, c.labels, MinimalPerturbationOptions().set_norm(Norm::linf)); },
      "DeepFool measures L2 only");
  testing::expect_error([&] { minimal_perturbations(model, c.images, c.labels.slice(0, 3), only(Norm::l2)); },
                        "one label per image");
  testing::expect_error(
      [&] { minimal_perturbations(model, c.images, c.labels, only(Norm::l2).set_overestimate_factor(0.5)); },
      "overestimate factor");
  testing::expect_error(
      [&] {
        minimal_perturbations(model, c.images, c.labels, only(Norm::l2), {{"short", c.images.slice(0, 2)}});
      },
      "attack 'short' gave perturbations of shape");
  testing::expect_error([&] { fmn_attack(model, c.images, c.labels, FmnOptions().set_gamma_init(1.5)); }, "FMN gamma");
}

}  // namespace
}  // namespace robustlens
