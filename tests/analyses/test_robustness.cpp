#include "robustlens/analyses/robustness.h"

#include "robustlens/models/accuracy.h"

#include "robustlens/core/error.h"
#include "robustlens/train/trainer.h"
#include "test_support.h"

#include <gtest/gtest.h>
#include <torch/utils.h>
#include <limits>

namespace robustlens {
namespace {

TEST(Statistics, QuartilesInterpolateLikeNumpy) {
  const Quartiles q = quartiles(at::tensor({4.0, 1.0, 3.0, 2.0}));
  EXPECT_DOUBLE_EQ(q.q1, 1.75);
  EXPECT_DOUBLE_EQ(q.median, 2.5);
  EXPECT_DOUBLE_EQ(q.q3, 3.25);
  EXPECT_TRUE(std::isnan(quartiles(at::empty({0})).median));
  // Infinite values ("no adversarial found") are order statistics too: no 0·inf.
  const double inf = std::numeric_limits<double>::infinity();
  const Quartiles with_inf = quartiles(at::tensor({1.0, 2.0, inf, inf, inf}));
  EXPECT_DOUBLE_EQ(with_inf.q1, 2.0);
  EXPECT_EQ(with_inf.median, inf);
  EXPECT_DOUBLE_EQ(quartiles(at::tensor({1.0, 2.0, 3.0, inf})).q1, 1.75);
  EXPECT_EQ(quartiles(at::tensor({1.0, 2.0, 3.0, inf})).q3, inf);
}

TEST(Robustness, RobustAccuracyStartsAtCleanAccuracyAndFallsWithEps) {
  const Dataset train = testing::linear_rule_dataset(400, {1, 6, 6}, 3, 1);
  const Dataset test = testing::linear_rule_dataset(100, {1, 6, 6}, 3, 2);
  torch::manual_seed(0);
  BuiltinModel model(ArchitectureSpec().set_name("mlp").set_input_shape({1, 6, 6}).set_num_classes(3).set_width(32),
                     {});
  train_model(model, train, test, TrainOptions().set_epochs(20).set_batch_size(32).set_lr(0.05));
  ASSERT_GT(evaluate_accuracy(model, test, AccuracyOptions()).accuracy, 0.7);

  const RobustnessOptions options =
      RobustnessOptions().set_eps({0.0, 0.1, 0.3, 1.0}).set_steps(20).set_restarts(2).set_batch_size(64);
  const RobustnessResult result = analyse_robustness(model, test, options);
  EXPECT_DOUBLE_EQ(result.robust_accuracy[0], result.clean_accuracy);
  for (std::size_t i = 1; i < result.eps.size(); ++i) {
    EXPECT_LE(result.robust_accuracy[i], result.robust_accuracy[i - 1]) << "eps " << result.eps[i];
  }
  EXPECT_LT(result.robust_accuracy.back(), result.clean_accuracy);
  // DeepFool: every sample flips; an L2 attack of radius above a sample's DeepFool
  // norm is not guaranteed to find it, but the median must be finite and positive.
  EXPECT_EQ(result.deepfool_not_flipped, 0);
  EXPECT_GT(result.deepfool_quartiles.median, 0.0);
  EXPECT_LE(result.deepfool_quartiles.q1, result.deepfool_quartiles.median);
  EXPECT_LE(result.deepfool_quartiles.median, result.deepfool_quartiles.q3);

  const RobustnessResult fgsm =
      analyse_robustness(model, test, RobustnessOptions(options).set_attack("fgsm").set_deepfool(false));
  EXPECT_DOUBLE_EQ(fgsm.robust_accuracy[0], fgsm.clean_accuracy);
  EXPECT_THROW(analyse_robustness(model, test, RobustnessOptions().set_eps({-0.5})), Error);
}

/// Two classes, a linear model: the loss gradient points along ±(w₀ − w₁) everywhere, so PGD and FGSM find
/// the optimal perturbation and robust accuracy has a closed form: the share of correctly classified images
/// whose distance to the boundary, |f₀ − f₁| / ‖w₀ − w₁‖_dual, exceeds eps (L2: dual L2; L∞: dual L1).
/// The images lie in [0.3, 0.7], far enough inside the box that clipping never binds; those whose
/// distance lies within 4% below an eps of the list are left out (PGD's L2 iterates approach the ball's
/// edge along the gradient geometrically, not in one step).
TEST(Robustness, RobustAccuracyOfATwoClassLinearModelEqualsTheClosedForm) {
  torch::manual_seed(5);
  const std::int64_t d = 36;
  const at::Tensor weight = at::randn({2, d}, at::kDouble);
  const at::Tensor difference = weight[0] - weight[1];
  // Shift 2: images that are not pixels in [0,1] (as after a --transform), attacked without clipping; clipping
  // them to [0,1] would move them much farther than eps and fool every image.
  for (const double shift : {0.0, 2.0}) {
    // The boundary through the middle of the images: distances spread on both sides of each eps.
    const at::Tensor bias = at::stack({-(shift + 0.5) * difference.sum(), at::zeros({}, at::kDouble)});
    testing::LinearModel model(weight, bias);
    for (const Norm norm : {Norm::l2, Norm::linf}) {
      const double dual = norm == Norm::l2 ? difference.norm().item<double>() : difference.abs().sum().item<double>();
      const std::vector<double> eps = norm == Norm::l2
                                          ? std::vector<double>{0.02, 0.05, 0.1, 0.2}
                                          : std::vector<double>{1 / 255.0, 2 / 255.0, 4 / 255.0, 8 / 255.0};
      std::vector<at::Tensor> kept;
      std::vector<double> distances;
      while (kept.size() < 60) {
        const at::Tensor image = shift + 0.3 + 0.4 * at::rand({1, 6, 6});
        const double margin = (difference.dot(image.flatten().to(at::kDouble)) + bias[0] - bias[1]).item<double>();
        const double distance = std::abs(margin) / dual;
        bool near_an_eps = false;
        for (const double e : eps) near_an_eps = near_an_eps || (distance > 0.96 * e && distance < e * (1 + 1e-6));
        if (near_an_eps) continue;
        kept.push_back(image);
        // Every fifth image mislabelled: it counts as not robust at any eps.
        distances.push_back(kept.size() % 5 == 0 ? -1.0 : distance);
      }
      const at::Tensor images = at::stack(kept);
      const at::Tensor predicted = batched_logits(model, images, 64).argmax(1);
      const at::Tensor mislabelled = at::tensor(distances, at::kDouble).lt(0);
      const Dataset data{"two-class linear", images, at::where(mislabelled, 1 - predicted, predicted),
                         numbered_class_names(2)};
      for (const std::string attack : {"pgd", "fgsm"}) {
        if (attack == "fgsm" && norm == Norm::l2) continue;  // FGSM is an L∞ attack
        const std::string what = attack + " " + to_string(norm) + " shift " + std::to_string(shift);
        const RobustnessResult result = analyse_robustness(model, data,
                                                           RobustnessOptions()
                                                               .set_attack(attack)
                                                               .set_norm(norm)
                                                               .set_eps(eps)
                                                               .set_steps(20)
                                                               .set_batch_size(16)
                                                               .set_clip(shift == 0)
                                                               .set_keep_examples(true));
        for (std::size_t i = 0; i < eps.size(); ++i) {
          double robust = 0;
          for (const double distance : distances) robust += distance > eps[i] ? 1 : 0;
          robust /= static_cast<double>(distances.size());
          EXPECT_DOUBLE_EQ(result.robust_accuracy[i], robust) << what << " eps " << eps[i];
          EXPECT_DOUBLE_EQ(result.ensemble_robust_accuracy[i], robust) << what << " eps " << eps[i];
          const double moved = perturbation_norms(result.adversarial_examples[i] - images, norm).max().item<double>();
          EXPECT_LE(moved, eps[i] + 1e-6) << what << " eps " << eps[i];  // float32 rounding near 2.5: 2.4e-7
        }
      }
    }
  }
}

/// The minimal perturbation is counted against the true label, as robust accuracy is: at every eps of
/// the list, the share of samples within eps is at least 1 − robust accuracy (the list's adversarials
/// are members of the ensemble), and each member reports only checked adversarials.
TEST(Robustness, EnsembleMinimumIsConsistentWithRobustAccuracyOnTrainedModels) {
  const Dataset train = testing::linear_rule_dataset(400, {1, 6, 6}, 3, 1);
  const Dataset test = testing::linear_rule_dataset(100, {1, 6, 6}, 3, 2);
  for (const std::string head : {"nopen", "binenc"}) {
    torch::manual_seed(0);
    BuiltinModel model(
        ArchitectureSpec().set_name("mlp").set_input_shape({1, 6, 6}).set_num_classes(3).set_width(32).set_head(head),
        {});
    train_model(model, train, test, TrainOptions().set_epochs(20).set_batch_size(32).set_lr(0.05));
    model.set_training(false);
    const RobustnessOptions options = RobustnessOptions().set_eps({0.05, 0.1, 0.3, 1.0}).set_batch_size(64);
    const RobustnessResult result = analyse_robustness(model, test, options);
    ASSERT_TRUE(result.minimal.has_value());
    const MinimalPerturbationResult& minimal = *result.minimal;
    for (std::size_t i = 0; i < options.eps.size(); ++i) {
      EXPECT_GE(result.minimal_share_within_eps[i], 1 - result.robust_accuracy[i] - 0.02)
          << head << " eps " << options.eps[i];
      EXPECT_LE(result.ensemble_robust_accuracy[i],
                std::min(result.robust_accuracy[i], 1 - result.minimal_share_within_eps[i]))
          << head << " eps " << options.eps[i];
    }
    // Each minimum is a perturbation that fools the model, in the image domain, of the reported norm.
    const at::Tensor adversarial = test.images + minimal.perturbations;
    const at::Tensor found = at::isfinite(minimal.norms);
    EXPECT_TRUE(adversarial.ge(0).logical_and(adversarial.le(1)).all().item<bool>()) << head;
    EXPECT_TRUE(
        batched_logits(model, adversarial, 64).argmax(1).ne(test.labels).masked_select(found).all().item<bool>())
        << head;
    EXPECT_TRUE(at::allclose(perturbation_norms(minimal.perturbations, Norm::l2).to(at::kDouble).masked_select(found),
                             minimal.norms.masked_select(found), 1e-5, 1e-7))
        << head;
    // Never above what DeepFool alone found, once DeepFool's perturbation is in the domain and fools the model.
    EXPECT_TRUE(minimal.norms.le(minimal.per_attack_norms.select(1, 1)).all().item<bool>()) << head;
    EXPECT_EQ(result.to_json().at("minimal_perturbation").at("norms").size(), 100u);
  }
}

}  // namespace
}  // namespace robustlens
