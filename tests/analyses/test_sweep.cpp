#include "robustlens/analyses/sweep.h"

#include "robustlens/core/error.h"
#include "robustlens/core/random.h"
#include "robustlens/models/builtin_model.h"
#include "test_support.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <optional>

namespace robustlens {
namespace {

const Dataset& train_data() {
  static const Dataset data = testing::linear_rule_dataset(120, {1, 6, 6}, 3, 11);
  return data;
}
const Dataset& test_data() {
  static const Dataset data = testing::linear_rule_dataset(60, {1, 6, 6}, 3, 12);
  return data;
}

SweepOptions small_sweep(const std::string& out_dir) {
  return SweepOptions()
      .set_objective("noise")
      .set_strengths({0.05, 0.5})
      .set_seeds(2)
      .set_architecture(ArchitectureSpec().set_name("mlp").set_width(16))
      .set_training(TrainOptions().set_epochs(1).set_batch_size(32).set_lr(0.05))
      .set_measures(SweepMeasureOptions().set_draws(2).set_batch_size(8))
      .set_seed(7)
      .set_out_dir(out_dir);
}

TangentBasis local_pca() {
  return [](const at::Tensor& images, const at::Tensor& labels) {
    return local_pca_basis(images, labels, train_data(), 8, 3);
  };
}

std::vector<at::Tensor> cloned_parameters(Model& model) {
  std::vector<at::Tensor> clones;
  for (const at::Tensor& p : dynamic_cast<BuiltinModel&>(model).parameters()) clones.push_back(p.detach().clone());
  return clones;
}

TEST(Sweep, EachModelIsTheOneTrainedAloneWithItsSeedAndTheSummaryHoldsTheirMeans) {
  testing::TemporaryDirectory out;
  const Dataset analysed = test_data().subset({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  std::vector<at::Tensor> first_weights;
  SweepCallbacks callbacks;
  callbacks.on_model_done = [&](const SweepModel& model, Model& trained) {
    if (model.strength_index == 0 && model.seed_index == 0) first_weights = cloned_parameters(trained);
  };
  const SweepOptions options = small_sweep(out.path());
  const SweepResult result = run_sweep(train_data(), test_data(), analysed, local_pca(), {}, options, callbacks);
  ASSERT_EQ(result.models.size(), 4u);
  ASSERT_EQ(result.strengths.size(), 2u);
  for (const SweepModel& model : result.models) {
    EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(model.folder) / "model.pt")) << model.folder;
  }
  EXPECT_EQ(result.models[0].seed, 7u);  // the first seed is the sweep's, as `train --seed 7`
  EXPECT_NE(result.models[1].seed, 7u);
  EXPECT_EQ(result.models[2].recipe.objective.sigma, 0.5);

  // The first model is the one `train` makes with the same seed and recipe.
  std::optional<BuiltinModel> alone;
  ArchitectureSpec spec = options.architecture;
  spec.set_input_shape({1, 6, 6}).set_num_classes(3);
  with_global_seed(7, [&] { alone.emplace(spec, train_data().class_names); });
  train_model(*alone, train_data(), test_data(), TrainOptions(result.models[0].recipe).set_out_dir(""));
  const std::vector<at::Tensor> expected = cloned_parameters(*alone);
  ASSERT_EQ(first_weights.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_TRUE(at::equal(first_weights[i], expected[i])) << i;

  // Per strength: the mean of its two models and the standard error |a − b|/2.
  for (std::size_t i = 0; i < 2; ++i) {
    const double a = result.models[2 * i].test_accuracy(), b = result.models[2 * i + 1].test_accuracy();
    EXPECT_DOUBLE_EQ(result.strengths[i].mean("test_accuracy"), (a + b) / 2);
    EXPECT_NEAR(result.strengths[i].standard_error("test_accuracy"), std::abs(a - b) / 2, 1e-15);
    EXPECT_FALSE(result.strengths[i].regime.empty());
  }
  EXPECT_TRUE(result.column("alignment_cosine").empty());  // no score, no alignment and no correlation
  EXPECT_FALSE(result.correlation.has_value());

  // A rerun resumes every model from its checkpoint and measures it with the same draws.
  const SweepResult again = run_sweep(train_data(), test_data(), analysed, local_pca(), {}, options);
  for (std::size_t m = 0; m < 4; ++m) {
    EXPECT_EQ(again.models[m].training.resumed_after_epoch, 1);
    EXPECT_EQ(again.models[m].measures.tangent.to_json(), result.models[m].measures.tangent.to_json()) << m;
  }
}

TEST(RobustnessRegimes, OffManifoldRobustnessFirstThenOnManifold) {
  const std::vector<std::string> regimes = robustness_regimes({1.0, 0.9, 0.8, 0.6, 0.3}, {2.0, 1.5, 0.8, 0.4, 0.1});
  EXPECT_EQ(regimes, (std::vector<std::string>{"weak", "weak", "bayes-aligned", "bayes-aligned", "excessive"}));
  // On-manifold robustness first is the opposite of the paper's order and says so.
  EXPECT_EQ(robustness_regimes({1.0, 0.5, 0.4}, {1.0, 1.0, 0.5}),
            (std::vector<std::string>{"weak", "on-manifold-first", "excessive"}));
  EXPECT_THROW(robustness_regimes({0.0, 1.0}, {1.0, 1.0}), Error);
  EXPECT_THROW(robustness_regimes({1.0}, {1.0, 1.0}), Error);
}

TEST(Sweep, OptionsAreCheckedBeforeAnyTraining) {
  testing::expect_error([] { small_sweep("").set_strengths({0.5}).check(); }, "at least two strengths");
  testing::expect_error(
      [] {
        small_sweep("").set_strengths({0.5, 0.05}).check();
      },
      "SweepOptions.strengths must increase, got 0.5 then 0.05");
  testing::expect_error([] { small_sweep("").set_strengths({0, 1}).check(); }, "SweepOptions.strengths must be > 0");
  testing::expect_error([] { small_sweep("").set_seeds(0).check(); }, "SweepOptions.seeds must be >= 1, got 0");
  EXPECT_THROW(small_sweep("").set_objective("dropout").check(), Error);
}

}  // namespace
}  // namespace robustlens
