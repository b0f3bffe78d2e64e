#include "robustlens/core/model.h"

#include "robustlens/core/error.h"
#include "robustlens/core/json_fields.h"
#include "robustlens/models/builtin_model.h"
#include "test_support.h"

#include <gtest/gtest.h>
#include <torch/utils.h>

#include <limits>

namespace robustlens {
namespace {

using testing::expect_error;

TEST(BatchedLogits, EqualsOneBigForwardPass) {
  torch::manual_seed(0);
  BuiltinModel model(ArchitectureSpec().set_name("mlp").set_input_shape({1, 6, 6}).set_num_classes(4), {});
  model.set_training(false);
  const at::Tensor x = at::rand({37, 1, 6, 6});
  EXPECT_TRUE(at::allclose(batched_logits(model, x, 8), model.forward(x), 1e-5, 1e-6));
}

TEST(JsonFields, IntegerFieldsTakeIntegersInRangeOnly) {
  // A float or an out-of-range number in an integer field converted with undefined behaviour (fuzz/regressions).
  const nlohmann::json record = {{"float", 2.2e32},    {"half", 1.5},    {"big", 3000000000LL},
                                 {"huge", UINT64_MAX}, {"negative", -1}, {"list", {1, 2, 1e300}},
                                 {"fine", {1, 28, 28}}};
  for (const std::string key : {"float", "half", "huge"}) {
    expect_error([&] { required_field<std::int64_t>(record, key, "r"); },
                 "r: key '" + key + "' holds a value of the wrong type");
  }
  expect_error([&] { required_field<int>(record, "big", "r"); }, "key 'big' holds a value of the wrong type");
  EXPECT_EQ(required_field<std::int64_t>(record, "big", "r"), 3000000000LL);
  EXPECT_EQ(required_field<int>(record, "negative", "r"), -1);
  expect_error([&] { required_field<std::uint64_t>(record, "negative", "r"); },
               "key 'negative' holds a value of the wrong type");
  expect_error([&] { required_field<std::vector<std::int64_t>>(record, "list", "r"); },
               "key 'list' holds a value of the wrong type");
  EXPECT_EQ(required_field<std::vector<std::int64_t>>(record, "fine", "r"), (std::vector<std::int64_t>{1, 28, 28}));
  EXPECT_EQ(required_field<double>(record, "half", "r"), 1.5);
}

}  // namespace
}  // namespace robustlens
