#include "robustlens/core/random.h"

#include "robustlens/core/error.h"

#include "robustlens/analyses/robustness.h"
#include "robustlens/analyses/spectral_importance.h"
#include "robustlens/analyses/upi.h"
#include "robustlens/models/builtin_model.h"
#include "test_support.h"

#include <gtest/gtest.h>
#include <torch/nn/modules/linear.h>
#include <torch/utils.h>

namespace robustlens {
namespace {

TEST(Random, DerivedSeedsAreSplitmix64AndDistinct) {
  // Seed 0, stream 0 is splitmix64's first output from state 0, 0xE220A8397B1DCDAF, with the sign bit cleared.
  EXPECT_EQ(derive_seed(0, 0), 0x6220A8397B1DCDAFULL);
  EXPECT_EQ(derive_seed(7, 1), derive_seed(7, 1));
  EXPECT_NE(derive_seed(7, 1), derive_seed(7, 2));
  EXPECT_NE(derive_seed(7, 1), derive_seed(8, 1));
}

TEST(Random, AGeneratorGivesTheNumbersOfTheGlobalOneSeededAlike) {
  // What keeps results of before the generators had owners: the same engine, the same numbers.
  torch::manual_seed(11);
  const at::Tensor global_normal = at::randn({5, 7}), global_uniform = at::rand({3}, at::kDouble);
  const at::Tensor global_order = at::randperm(9, at::kLong);
  at::Generator generator = make_generator(11);
  EXPECT_TRUE(at::equal(random_normal({5, 7}, generator), global_normal));
  EXPECT_TRUE(at::equal(random_uniform({3}, generator, at::kDouble), global_uniform));
  EXPECT_TRUE(at::equal(random_permutation(9, generator), global_order));
}

TEST(Random, AShareOfABatchDrawsItsRowsOfTheWholeBatchsDraw) {
  // What makes data-parallel training draw what one process draws (core/distributed.h): rows 3..6 of 10.
  at::Generator whole = make_generator(5), split = make_generator(5);
  const at::Tensor normal = random_normal({10, 2, 3}, whole), uniform = random_uniform({10}, whole, at::kDouble);
  // Three draws per row, each row's consecutive (SmoothGrad's noise of repeat_interleave's copies).
  const at::Tensor copies = random_normal({30, 2}, whole);
  const at::Tensor grid = random_normal({2, 10}, whole, {}, 1);
  {
    const RowShareScope share(3, 4, 10);
    EXPECT_TRUE(at::equal(random_normal({4, 2, 3}, split), normal.narrow(0, 3, 4)));
    EXPECT_TRUE(at::equal(random_uniform({4}, split, at::kDouble), uniform.narrow(0, 3, 4)));
    EXPECT_TRUE(at::equal(random_normal({12, 2}, split), copies.narrow(0, 9, 12)));
    // Rows along another dimension (region × draw × image, as the distractor noise).
    EXPECT_TRUE(at::equal(random_normal({2, 4}, split, {}, 1), grid.narrow(1, 3, 4)));
    EXPECT_THROW(random_normal({2, 5}, split, {}, 1), Error);
    // A draw that is not per row cannot be split: refused, not silently different from one process.
    EXPECT_THROW(random_normal({5}, split), Error);
  }
  // The generators stand at the same place after the share: the next draws agree.
  EXPECT_TRUE(at::equal(random_normal({3}, split), random_normal({3}, whole)));
}

TEST(Random, DrawsDoNotDependOnWhatElseDrewBefore) {
  at::Generator first = make_generator(3);
  const at::Tensor alone = random_normal({100}, first);
  torch::manual_seed(99);
  (void)at::randn({1000});  // the global generator moves on; an owned one does not
  at::Generator other = make_generator(4);
  (void)random_normal({1000}, other);
  at::Generator second = make_generator(3);
  EXPECT_TRUE(at::equal(random_normal({100}, second), alone));
  // A copy shares the state: the stream continues.
  at::Generator copy = second;
  EXPECT_FALSE(at::equal(random_normal({100}, copy), alone));
}

TEST(Random, WithGlobalSeedFixesTheWeightsAndRestoresTheGlobalStream) {
  torch::manual_seed(5);
  const at::Tensor expected_next = at::randn({4});
  torch::manual_seed(5);
  at::Tensor weights_a, weights_b, weights_c;
  with_global_seed(21, [&] { weights_a = torch::nn::Linear(6, 3)->weight.detach().clone(); });
  EXPECT_TRUE(at::equal(at::randn({4}), expected_next)) << "the global stream was not restored";
  with_global_seed(21, [&] { weights_b = torch::nn::Linear(6, 3)->weight.detach().clone(); });
  with_global_seed(22, [&] { weights_c = torch::nn::Linear(6, 3)->weight.detach().clone(); });
  EXPECT_TRUE(at::equal(weights_a, weights_b));
  EXPECT_FALSE(at::equal(weights_a, weights_c));
  // Restored also when the builder throws.
  torch::manual_seed(5);
  EXPECT_THROW(with_global_seed(21, [] { throw std::runtime_error("fails"); }), std::runtime_error);
  EXPECT_TRUE(at::equal(at::randn({4}), expected_next));
}

/// The random numbers of three analyses, as JSON: PGD's random starts, the spectral noise fill and SNR noise,
/// UPI's starts, shuffles, power iteration and random baselines.
nlohmann::json random_analyses(Model& model, const Dataset& data, bool upi_first) {
  nlohmann::json results;
  const auto robustness = [&] {
    results["robustness"] =
        analyse_robustness(
            model, data,
            RobustnessOptions().set_eps({0.5}).set_steps(3).set_deepfool(false).set_ensemble(false).set_seed(3))
            .to_json();
  };
  const auto spectral = [&] {
    results["spectral"] =
        analyse_spectral_importance(model, data, SpectralImportanceOptions().set_bands(3).set_fill("noise").set_seed(4))
            .to_json();
    results["snr"] =
        analyse_spectral_snr(
            model, data,
            SpectralSnrOptions()
                .set_bands(3)
                .set_perturbations({SnrPerturbation::parse("gaussian:0.1"), SnrPerturbation::parse("pgd-l2:0.5")})
                .set_seed(4))[0]
            .to_json();
  };
  const auto upi = [&] {
    results["upi"] = analyse_upi(model, data, data,
                                 UpiOptions()
                                     .set_eps({0.5})
                                     .set_summary_eps(0.5)
                                     .set_passes(2)
                                     .set_random_draws(2)
                                     .set_batch_size(8)
                                     .set_seed(5))
                         .to_json();
  };
  if (upi_first) upi();
  robustness();
  spectral();
  if (!upi_first) upi();
  return results;
}

TEST(Random, AnalysesGiveTheSameNumbersWhicheverRanBefore) {
  BuiltinModel model(
      ArchitectureSpec().set_name("mlp").set_input_shape({1, 6, 6}).set_num_classes(3).set_width(16).set_activation(
          "softplus"),
      numbered_class_names(3));
  model.set_training(false);
  const Dataset data = testing::linear_rule_dataset(16, {1, 6, 6}, 3, 1);
  torch::manual_seed(1);
  const nlohmann::json upi_last = random_analyses(model, data, false);
  torch::manual_seed(2);  // the global stream elsewhere: an analysis that drew from it would now differ
  const nlohmann::json upi_first = random_analyses(model, data, true);
  for (const std::string name : {"robustness", "spectral", "snr", "upi"}) {
    // As text: a NaN (UPI's change over the unchanged predictions when a perturbation flips them all) is not equal
    // to itself as a number.
    EXPECT_EQ(upi_last.at(name).dump(), upi_first.at(name).dump()) << name;
  }
  // The seed is what the numbers depend on.
  const nlohmann::json other =
      analyse_spectral_importance(model, data, SpectralImportanceOptions().set_bands(3).set_fill("noise").set_seed(9))
          .to_json();
  EXPECT_NE(other, upi_last.at("spectral"));
}

}  // namespace
}  // namespace robustlens
