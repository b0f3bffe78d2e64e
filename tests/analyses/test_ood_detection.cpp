#include "robustlens/analyses/ood_detection.h"

#include "robustlens/core/random.h"
#include "test_support.h"

#include <gtest/gtest.h>

namespace robustlens {
namespace {

using testing::expect_error;

TEST(OodDetection, FalsePositiveRateAtTheTruePositiveRateFollowsItsDefinition) {
  const at::Tensor in = at::arange(100, at::kDouble), out = at::arange(50, 150, at::kDouble);
  // 95% of the in-distribution scores are ≤ 94; the OOD scores 50..94 pass that threshold too.
  EXPECT_DOUBLE_EQ(false_positive_rate_at(in, out), 0.45);
  EXPECT_DOUBLE_EQ(false_positive_rate_at(in, out + 100), 0.0);
  EXPECT_DOUBLE_EQ(false_positive_rate_at(in, in), 0.95);
  EXPECT_DOUBLE_EQ(false_positive_rate_at(in, out, 1.0), 0.5);  // everything up to 99 is kept
  expect_error([&] { false_positive_rate_at(in, out, 0); }, "true-positive rate must be in (0, 1], got 0");
}

/// Two classes told apart by the sign of the first of two coordinates: logits (x₀, −x₀), latent x itself.
class SignModel : public testing::FixedFunctionModel {
 public:
  SignModel() : FixedFunctionModel(2) {}
  at::Tensor forward(const at::Tensor& images) override {
    const at::Tensor x0 = images.flatten(1).select(1, 0);
    return at::stack({x0, -x0}, 1);
  }
  bool has_latent() const override { return true; }
};

Dataset points(const at::Tensor& x0, const at::Tensor& x1, const std::string& name) {
  const std::int64_t n = x0.size(0);
  return {name, at::stack({x0, x1}, 1).to(at::kFloat).view({n, 1, 1, 2}), (x0 < 0).to(at::kLong), {"0", "1"}, {}};
}

TEST(OodDetection, MahalanobisSeesPointsOffTheDataThatSoftmaxConfidenceMisses) {
  const at::Generator generator = make_generator(3);
  const auto cloud = [&](std::int64_t n, double spread_x1, double offset_x1, double scale_x0) {
    const at::Tensor sign = (random_uniform({n}, generator, at::kDouble) < 0.5).to(at::kDouble) * 2 - 1;
    return std::pair{sign * scale_x0 + 0.1 * random_normal({n}, generator, at::kDouble),
                     offset_x1 + spread_x1 * random_normal({n}, generator, at::kDouble)};
  };
  const auto [train_x0, train_x1] = cloud(400, 0.1, 0, 1);
  const auto [test_x0, test_x1] = cloud(200, 0.1, 0, 1);
  // Far off the data along x₁, and more confident along x₀ than any training point.
  const auto [far_x0, far_x1] = cloud(100, 0.1, 5, 10);
  // On the boundary x₀ = 0 between the classes, within the data's spread along x₁.
  const auto [between_x0, between_x1] = cloud(100, 0.1, 0, 0);
  SignModel model;
  const std::vector<OodDetection> detections = detect_out_of_distribution(
      model, points(train_x0, train_x1, "train"), points(test_x0, test_x1, "test"),
      {{"far", points(far_x0, far_x1, "far")}, {"between", points(between_x0, between_x1, "between")}},
      LatentOptions());
  ASSERT_EQ(detections.size(), 2u);
  const OodDetection& far = detections[0];
  EXPECT_EQ(far.set, "far");
  EXPECT_EQ(far.in_images, 200);
  EXPECT_EQ(far.out_images, 100);
  EXPECT_EQ(far.mahalanobis_left_out, 0);
  EXPECT_DOUBLE_EQ(far.mahalanobis.auroc, 1.0);
  EXPECT_DOUBLE_EQ(far.mahalanobis.fpr_at_95_tpr, 0.0);
  EXPECT_LT(far.max_softmax.auroc, 0.05);  // more confident than the data: ranked as the most normal
  EXPECT_GT(far.max_softmax.fpr_at_95_tpr, 0.95);
  // Between the classes every softmax score detects them; so does the Mahalanobis distance (x₀ = 0 is 10
  // standard deviations from either class mean).
  const OodDetection& between = detections[1];
  EXPECT_GT(between.max_softmax.auroc, 0.99);
  EXPECT_GT(between.odin.auroc, 0.99);
  EXPECT_GT(between.mahalanobis.auroc, 0.99);
  const nlohmann::json record = between.to_json();
  EXPECT_EQ(record["set"], "between");
  EXPECT_TRUE(record["odin"]["fpr_at_95_tpr"].is_number());

  testing::LinearModel without_latent(at::eye(2, at::kDouble), at::zeros({2}));
  expect_error(
      [&] {
        detect_out_of_distribution(without_latent, points(train_x0, train_x1, "train"),
                                   points(test_x0, test_x1, "test"), {}, LatentOptions());
      },
      "exposes no latent code");
}

}  // namespace
}  // namespace robustlens
