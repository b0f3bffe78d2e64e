#include "robustlens/analyses/alignment.h"

#include "robustlens/core/error.h"
#include "test_support.h"

#include <gtest/gtest.h>
#include <torch/utils.h>

namespace robustlens {
namespace {

using testing::LinearModel;

/// The gradient of logit_y of a linear model is row y of W, and that of the summed logits is the column sum.
TEST(Alignment, GradientsOfALinearModelAreItsWeights) {
  torch::manual_seed(0);
  const at::Tensor w = at::randn({3, 144}, at::kDouble);
  LinearModel model(w, at::zeros({3}));
  const Dataset data = testing::linear_rule_dataset(6, {1, 12, 12}, 3, 0);
  const at::Tensor conditional = alignment_gradient(model, data.images, data.labels, true).flatten(1).to(at::kDouble);
  EXPECT_TRUE(at::allclose(conditional, w.index_select(0, data.labels), 1e-6, 1e-6));
  const at::Tensor unconditional = alignment_gradient(model, data.images, data.labels, false).flatten(1).to(at::kDouble);
  EXPECT_TRUE(at::allclose(unconditional, w.sum(0).expand({6, 144}), 1e-6, 1e-6));
}

TEST(Alignment, AScoreAlongTheGradientScoresOneAndAgainstItMinusOne) {
  torch::manual_seed(1);
  const at::Tensor w = at::randn({3, 144}, at::kDouble);
  LinearModel model(w, at::zeros({3}));
  const Dataset data = testing::linear_rule_dataset(10, {1, 12, 12}, 3, 1);
  const auto class_rows = [&](double scale) -> ScoreFunction {
    return [w, scale](const at::Tensor& images, const at::Tensor& labels) {
      EXPECT_TRUE(labels.defined());
      return (scale * w.index_select(0, labels)).view(images.sizes()).to(at::kFloat);
    };
  };
  const AlignmentOptions options = AlignmentOptions().set_batch_size(4);
  const AlignmentResult along = analyse_alignment(model, data, class_rows(2.5), options);
  EXPECT_NEAR(along.mean_cosine, 1.0, 1e-6);
  EXPECT_NEAR(along.mean_ssim, 1.0, 1e-6);
  EXPECT_EQ(along.cosine.numel(), 10);
  const AlignmentResult against = analyse_alignment(model, data, class_rows(-1), options);
  EXPECT_NEAR(against.mean_cosine, -1.0, 1e-6);
  // SSIM is not odd: where a window's mean and its structure both flip sign the
  // two factors stay positive, so a negated map keeps part of its SSIM.
  EXPECT_LT(against.mean_ssim, 0.9);

  // The unconditional pairing passes no labels; a score orthogonal to the summed rows scores 0.
  const at::Tensor total = w.sum(0);
  at::Tensor orthogonal = at::randn({144}, at::kDouble);
  orthogonal -= orthogonal.dot(total) / total.dot(total) * total;
  const AlignmentResult unconditional = analyse_alignment(
      model, data,
      [&](const at::Tensor& images, const at::Tensor& labels) {
        EXPECT_FALSE(labels.defined());
        return orthogonal.expand({images.size(0), 144}).reshape(images.sizes());
      },
      AlignmentOptions().set_conditional(false));
  EXPECT_NEAR(unconditional.mean_cosine, 0.0, 1e-6);
}

TEST(Alignment, AScoreOfTheWrongShapeIsRefused) {
  LinearModel model(at::randn({2, 144}), at::zeros({2}));
  const Dataset data = testing::linear_rule_dataset(3, {1, 12, 12}, 2, 2);
  EXPECT_THROW(analyse_alignment(model, data, [](const at::Tensor& images, const at::Tensor&) { return images.flatten(1); },
                                 AlignmentOptions()),
               Error);
  EXPECT_THROW(AlignmentOptions().set_batch_size(0).check(), Error);
}

}  // namespace
}  // namespace robustlens
