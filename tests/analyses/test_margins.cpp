#include "robustlens/analyses/margins.h"

#include "robustlens/models/builtin_model.h"
#include "robustlens/models/load_model.h"
#include "test_support.h"

#include <gtest/gtest.h>
#include <torch/utils.h>

#include <limits>

namespace robustlens {
namespace {

TEST(Margins, LinearModelMatchesClosedFormInEverySubspace) {
  testing::TemporaryDirectory dir;
  torch::manual_seed(6);
  const at::Tensor weight = at::randn({10, 2 * 12 * 12}), bias = at::randn({10});
  testing::save_linear_torchscript(dir.file("linear.pt"), weight, bias);
  auto model = load_model(dir.file("linear.pt"), at::kCPU);
  const Dataset data{"random", at::rand({7, 2, 12, 12}), at::zeros({7}, at::kLong), numbered_class_names(10)};
  const MarginOptions options = MarginOptions().set_block(4).set_step(2).set_batch_size(9);
  const MarginResult result = analyse_margins(*model, data, options);
  ASSERT_EQ(result.per_subspace.size(), 5u);  // blocks at 0, 2, 4, 6, 8 of 12

  const at::Tensor logits = data.images.flatten(1).matmul(weight.t()) + bias;
  const at::Tensor masks = result.subspaces.masks(at::TensorOptions().dtype(at::kFloat));
  for (std::int64_t t = 0; t < 5; ++t) {
    for (std::int64_t i = 0; i < 7; ++i) {
      const std::int64_t c = logits[i].argmax().item<std::int64_t>();
      double expected = std::numeric_limits<double>::infinity();
      for (std::int64_t k = 0; k < 10; ++k) {
        if (k == c) continue;
        const at::Tensor w = (weight[k] - weight[c]).view({1, 2, 12, 12});
        const double projected = project_onto_dct_subspaces(w, masks, at::tensor({t}, at::kLong)).norm().item<double>();
        expected = std::min(expected, std::abs((logits[i][k] - logits[i][c]).item<double>()) / projected);
      }
      EXPECT_NEAR(result.per_subspace[t].margins[i].item<double>(), 1.02 * expected, 1e-4 * 1.02 * expected)
          << "subspace " << t << " sample " << i;
    }
    EXPECT_EQ(result.per_subspace[t].not_flipped, 0);
  }
  EXPECT_TRUE(result.full_space.margins.defined());
  EXPECT_EQ(result.to_json().at("per_subspace").size(), 5u);

  // The whole space: DeepFool overshoots by its 2%; the ensemble's minimum is the closed form.
  for (std::int64_t i = 0; i < 7; ++i) {
    const std::int64_t c = logits[i].argmax().item<std::int64_t>();
    double expected = std::numeric_limits<double>::infinity();
    for (std::int64_t k = 0; k < 10; ++k) {
      if (k != c)
        expected = std::min(expected, std::abs((logits[i][k] - logits[i][c]).item<double>()) /
                                          (weight[k] - weight[c]).norm().item<double>());
    }
    EXPECT_NEAR(result.full_space.margins[i].item<double>(), 1.02 * expected, 1e-4 * 1.02 * expected) << "sample " << i;
    EXPECT_NEAR(result.full_space_minimum.minimal.norms[i].item<double>(), expected, 1e-3 * expected) << "sample " << i;
  }
  EXPECT_TRUE(result.full_space_minimum.warning.empty());
  EXPECT_EQ(result.to_json().at("full_space").at("minimal_perturbation").at("norms").size(), 7u);
}

TEST(Margins, FullSpaceEnsembleWarnsWhereMaskedGradientsMakeDeepFoolOverestimate) {
  // A two-class linear model whose gradient is a third of its slope: DeepFool lands 3× too far, the ensemble at the
  // closed form |f_1 − f_0| / ‖w_1 − w_0‖; labels do not matter (margins follow the prediction).
  torch::manual_seed(8);
  const at::Tensor weight = at::randn({2, 36}), bias = at::randn({2});
  testing::MaskedLinearModel model(weight, bias);
  const Dataset data{"random", at::rand({12, 1, 6, 6}), at::zeros({12}, at::kLong), numbered_class_names(2)};
  const MarginResult result = analyse_margins(model, data, MarginOptions().set_block(3).set_step(3));
  const at::Tensor w = weight.to(at::kDouble), b = bias.to(at::kDouble);
  const at::Tensor logits = data.images.flatten(1).to(at::kDouble).matmul(w.t()) + b;
  const at::Tensor expected = (logits.select(1, 1) - logits.select(1, 0)).abs() / (w[1] - w[0]).norm();
  for (std::int64_t i = 0; i < 12; ++i) {
    EXPECT_NEAR(result.full_space_minimum.minimal.norms[i].item<double>(), expected[i].item<double>(),
                0.02 * expected[i].item<double>())
        << "sample " << i;
    EXPECT_GT(result.full_space.margins[i].item<double>(), 2.5 * expected[i].item<double>()) << "sample " << i;
  }
  EXPECT_NE(result.full_space_minimum.warning.find("DeepFool overestimates"), std::string::npos);
  EXPECT_DOUBLE_EQ(result.full_space_minimum.minimal.deepfool_overestimate_share, 1.0);
  // Without the ensemble: DeepFool alone, no minimum.
  const MarginResult alone = analyse_margins(model, data, MarginOptions().set_block(3).set_step(3).set_ensemble(false));
  EXPECT_FALSE(alone.full_space_minimum.minimal.norms.defined());
  EXPECT_TRUE(at::allclose(alone.full_space.margins, result.full_space.margins));
  EXPECT_FALSE(alone.to_json().at("full_space").contains("minimal_perturbation"));
}

TEST(Margins, BatchingPairsDoesNotChangeMargins) {
  torch::manual_seed(2);
  BuiltinModel model(ArchitectureSpec().set_name("mlp").set_input_shape({1, 10, 10}).set_num_classes(4).set_width(32),
                     {});
  model.set_training(false);
  const Dataset data{"random", at::rand({5, 1, 10, 10}), at::zeros({5}, at::kLong), numbered_class_names(4)};
  const MarginResult small = analyse_margins(model, data, MarginOptions().set_block(4).set_step(3).set_batch_size(3));
  const MarginResult large =
      analyse_margins(model, data, MarginOptions().set_block(4).set_step(3).set_batch_size(1000));
  for (std::size_t t = 0; t < small.per_subspace.size(); ++t) {
    EXPECT_TRUE(at::allclose(small.per_subspace[t].margins, large.per_subspace[t].margins, 1e-4, 1e-6)) << t;
  }
}

TEST(Margins, PairsThatDidNotFlipCountAsLowerBoundsAndMarkTheMedian) {
  const at::Tensor margins = at::tensor({1.0, 2.0, 3.0, 4.0, 5.0}, at::kDouble);
  const MarginsWithLowerBounds all = margins_with_lower_bounds(margins, at::ones({5}, at::kBool));
  EXPECT_DOUBLE_EQ(all.quartiles.median, 3.0);
  EXPECT_FALSE(all.median_is_lower_bound);
  EXPECT_DOUBLE_EQ(all.not_flipped_share, 0.0);
  // One that did not flip above the median: its margin only grows, the median stands.
  const MarginsWithLowerBounds above = margins_with_lower_bounds(margins, at::tensor({1, 1, 1, 1, 0}).to(at::kBool));
  EXPECT_DOUBLE_EQ(above.quartiles.median, 3.0);
  EXPECT_FALSE(above.median_is_lower_bound);
  EXPECT_DOUBLE_EQ(above.not_flipped_share, 0.2);
  // One at or below the median: its true margin could lift the median, which is then a lower bound.
  const MarginsWithLowerBounds below = margins_with_lower_bounds(margins, at::tensor({1, 0, 1, 1, 1}).to(at::kBool));
  EXPECT_TRUE(below.median_is_lower_bound);
  EXPECT_TRUE(below.to_json().at("median_is_lower_bound").get<bool>());
}

}  // namespace
}  // namespace robustlens
