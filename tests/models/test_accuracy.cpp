#include "robustlens/models/accuracy.h"

#include "robustlens/models/load_model.h"
#include "robustlens/models/torchscript_model.h"
#include "test_support.h"

#include <gtest/gtest.h>

namespace robustlens {
namespace {

TEST(Accuracy, MatchesTheCountOfCorrectArgmaxOfAKnownLinearModel) {
  testing::TemporaryDirectory dir;
  const Dataset data = testing::linear_rule_dataset(101, {1, 3, 3}, 4, 21);
  const at::Tensor weight = at::randn({4, 9}), bias = at::randn({4});
  testing::save_linear_torchscript(dir.file("linear.pt"), weight, bias);
  auto model = load_model(dir.file("linear.pt"), at::kCPU);
  const at::Tensor expected_predictions = (data.images.flatten(1).matmul(weight.t()) + bias).argmax(1);
  const double expected = expected_predictions.eq(data.labels).sum().item<double>() / 101.0;
  for (const std::int64_t batch : {1, 7, 500}) {
    const AccuracyResult result = evaluate_accuracy(*model, data, AccuracyOptions().set_batch_size(batch));
    EXPECT_DOUBLE_EQ(result.accuracy, expected) << "batch " << batch;
    EXPECT_TRUE(at::equal(result.predictions, expected_predictions));
    double weighted = 0;
    for (std::int64_t k = 0; k < 4; ++k) {
      weighted += result.per_class_accuracy[k] * data.labels.eq(k).sum().item<double>();
    }
    EXPECT_NEAR(weighted / 101.0, expected, 1e-12);
  }
}

}  // namespace
}  // namespace robustlens
