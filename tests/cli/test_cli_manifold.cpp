// The manifold, alignment and sweep commands end to end on small distractor data.
#include "robustlens/core/files.h"
#include "test_support.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

namespace robustlens {
namespace {

using testing::run_cli;

using testing::contains;
/// Items 1×6×12, so that the distractor images are 1×12×12 (SSIM needs 11×11).
class CliOnDistractorData : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::write_idx_dataset(data_.path(), testing::linear_rule_dataset(300, {1, 6, 12}, 3, 21),
                               testing::linear_rule_dataset(60, {1, 6, 12}, 3, 22));
  }
  std::string data_arg() const { return " --threads 1 --data distractor:idx:" + data_.path(); }
  testing::TemporaryDirectory data_, out_;
};

void expect_finite_curve(const nlohmann::json& curve) {
  for (const auto& value : curve.at("mean")) EXPECT_TRUE(std::isfinite(value.get<double>())) << curve.dump();
}

TEST_F(CliOnDistractorData, ManifoldAlignAndSweepWriteTheirRecordsAndCharts) {
  const auto train = run_cli("train --arch mlp --epochs 2 --batch-size 32 --out " + out_.file("model") + data_arg());
  ASSERT_EQ(train.exit_code, 0) << train.output;
  const auto vae = run_cli("train-vae --epochs 2 --latent-dim 4 --hidden 32 --out " + out_.file("vae") + data_arg());
  ASSERT_EQ(vae.exit_code, 0) << vae.output;
  const auto denoiser = run_cli("train-denoiser --epochs 1 --out " + out_.file("denoiser") + data_arg());
  ASSERT_EQ(denoiser.exit_code, 0) << denoiser.output;
  const std::string model = " --model " + out_.file("model/model.pt");

  const auto manifold = run_cli("manifold" + model + " --vae " + out_.file("vae/vae.pt") +
                                " --pca-neighbours 12 --samples 20 --noise-levels 0,0.1,1 --eps 0.5,2 --out " +
                                out_.file("manifold") + data_arg());
  ASSERT_EQ(manifold.exit_code, 0) << manifold.output;
  EXPECT_TRUE(contains(manifold.output, "tangent fraction")) << manifold.output;
  const nlohmann::json record = read_json_file(out_.file("manifold/manifold.json"));
  const nlohmann::json& distractor = record.at("distractor");
  expect_finite_curve(distractor.at("item_half"));
  const double share = distractor.at("item_gradient_share");
  EXPECT_GE(share, 0.0);
  EXPECT_LE(share, 1.0);
  for (const std::string basis : {"vae", "local-pca"}) {
    const nlohmann::json& tangent = record.at("tangent").at(basis);
    EXPECT_EQ(tangent.at("tangent_dim"), 4) << basis;
    EXPECT_EQ(tangent.at("input_dim"), 144) << basis;
    expect_finite_curve(tangent.at("on_manifold"));
    expect_finite_curve(tangent.at("off_manifold"));
  }
  const double agreement = record.at("tangent").at("subspace_agreement").at("vae_vs_local_pca");
  EXPECT_GE(agreement, 0.0);
  EXPECT_LE(agreement, 1.0 + 1e-9);
  for (const char* file : {"distractor.svg", "relative_robustness.svg", "tangent.svg", "manifold_curves.csv"}) {
    EXPECT_TRUE(std::filesystem::exists(out_.file(std::string("manifold/") + file))) << file;
  }

  const auto align = run_cli("align" + model + " --denoiser " + out_.file("denoiser/denoiser.pt") +
                             " --samples 16 --out " + out_.file("align") + data_arg());
  ASSERT_EQ(align.exit_code, 0) << align.output;
  const nlohmann::json alignment = read_json_file(out_.file("align/alignment.json"));
  EXPECT_EQ(alignment.at("pairing"), "conditional");
  EXPECT_EQ(alignment.at("options").at("label"), "true");
  ASSERT_EQ(alignment.at("per_sigma").size(), 4u);
  for (const auto& level : alignment.at("per_sigma")) {
    EXPECT_EQ(level.at("cosine_per_image").size(), 16u);
    EXPECT_LE(std::abs(level.at("mean_cosine").get<double>()), 1.0);
    EXPECT_EQ(level.at("class_mean_cosine").size(), 3u);
  }
  EXPECT_EQ(alignment.at("summary_sigma"), 0.5);
  EXPECT_EQ(alignment.at("mean_cosine"), alignment.at("per_sigma").at(2).at("mean_cosine"));
  // The denoiser's error beside the identity's, on these images and from its training.
  const nlohmann::json& errors = alignment.at("denoising_errors");
  EXPECT_EQ(errors.at("identity").at(2).get<double>(), 0.25);
  EXPECT_TRUE(errors.at("denoiser_given_label").at(2).is_number());
  EXPECT_TRUE(errors.at("denoiser_without_label").at(2).is_number());
  EXPECT_TRUE(alignment.at("denoiser_training_errors").at("gaussian_per_class").at(0).is_number());
  EXPECT_TRUE(contains(align.output, "<- summary")) << align.output;
  EXPECT_TRUE(std::filesystem::exists(out_.file("align/gradients.png")));
  // One label-dropout denoiser gives the Bayes pairing too, at the noise levels asked for.
  const auto bayes =
      run_cli("align" + model + " --denoiser " + out_.file("denoiser/denoiser.pt") +
              " --pairing bayes --label predicted --sigmas 0.2,0.4 --summary-sigma 0.4 --samples 8 --out " +
              out_.file("align-bayes") + data_arg());
  ASSERT_EQ(bayes.exit_code, 0) << bayes.output;
  const nlohmann::json bayes_record = read_json_file(out_.file("align-bayes/alignment.json"));
  EXPECT_EQ(bayes_record.at("pairing"), "bayes");
  EXPECT_EQ(bayes_record.at("options").at("label"), "predicted");
  EXPECT_EQ(bayes_record.at("per_sigma").size(), 2u);

  const std::string sweep_args =
      "sweep --arch mlp --objective noise --strengths 0.05,0.5,5 --epochs 1 --batch-size 32"
      " --analysis-samples 12 --pca-neighbours 12 --pca-dim 4 --denoiser " +
      out_.file("denoiser/denoiser.pt") + " --out " + out_.file("sweep") + data_arg();
  const auto sweep = run_cli(sweep_args);
  ASSERT_EQ(sweep.exit_code, 0) << sweep.output;
  const nlohmann::json swept = read_json_file(out_.file("sweep/sweep.json"));
  // The sweep's manifest lists its own outputs and each model's folder, a run of its own.
  const nlohmann::json manifest = read_json_file(out_.file("sweep/robustlens-run.json"));
  EXPECT_EQ(manifest.at("outputs"), nlohmann::json({"gradients.png", "sweep.csv", "sweep.json", "sweep.svg"}));
  EXPECT_EQ(manifest.at("parts"), nlohmann::json({"strength-0", "strength-1", "strength-2"}));
  EXPECT_EQ(read_json_file(out_.file("sweep/strength-1/robustlens-run.json")).at("outputs"),
            nlohmann::json({"model.pt"}));
  ASSERT_EQ(swept.at("models").size(), 3u);
  ASSERT_EQ(swept.at("per_strength").size(), 3u);
  // Distractor data: the regimes come from the known manifold, the glyph half.
  EXPECT_TRUE(contains(swept.at("options").at("regime_measure").get<std::string>(), "distractor halves"));
  for (const auto& entry : swept.at("models")) {
    EXPECT_GT(entry.at("train_seconds").get<double>(), 0.0);
    EXPECT_TRUE(entry.at("distractor").contains("item_half"));
    EXPECT_GT(entry.at("distractor").at("first_order").at("off_manifold").get<double>(), 0.0);
    EXPECT_GT(entry.at("tangent").at("first_order").at("on_manifold").get<double>(), 0.0);
    EXPECT_TRUE(entry.at("alignment").contains("mean_cosine"));
    EXPECT_EQ(entry.at("alignment").at("per_sigma").size(), 4u);
  }
  // The claim as a number: Spearman's correlation of alignment with off-manifold robustness over the models.
  const nlohmann::json& correlation = swept.at("alignment_robustness_correlation");
  EXPECT_EQ(correlation.at("pairs"), 3);
  EXPECT_LE(std::abs(correlation.at("spearman").get<double>()), 1.0);
  EXPECT_EQ(correlation.at("interval").size(), 2u);
  EXPECT_TRUE(contains(sweep.output, "Spearman correlation of alignment with off-manifold robustness")) << sweep.output;
  EXPECT_TRUE(swept.at("per_strength").at(0).contains("off_to_on_ratio"));
  for (const auto& entry : swept.at("per_strength")) {
    const std::string regime = entry.at("regime");
    EXPECT_TRUE(regime == "weak" || regime == "bayes-aligned" || regime == "excessive" || regime == "on-manifold-first")
        << regime;
  }
  EXPECT_EQ(swept.at("models").at(2).at("recipe").at("objective").at("sigma"), 5.0);
  for (const char* file : {"sweep.svg", "sweep.csv", "gradients.png", "strength-2/model.pt"}) {
    EXPECT_TRUE(std::filesystem::exists(out_.file(std::string("sweep/") + file))) << file;
  }

  // A sweep model is exactly what `train` makes with the same recipe and seed.
  const auto alone = run_cli("train --arch mlp --objective noise --sigma 0.5 --epochs 1 --batch-size 32 --out " +
                             out_.file("alone") + data_arg());
  ASSERT_EQ(alone.exit_code, 0) << alone.output;
  for (const std::string& name : {std::string("sweep/strength-1"), std::string("alone")}) {
    const auto logits = run_cli("eval --save-logits --model " + out_.file(name + "/model.pt") + " --out " +
                                out_.file(name + "/eval") + data_arg());
    ASSERT_EQ(logits.exit_code, 0) << logits.output;
  }
  EXPECT_EQ(testing::read_bytes(out_.file("sweep/strength-1/eval/logits.csv")),
            testing::read_bytes(out_.file("alone/eval/logits.csv")));

  // A rerun resumes every model instead of retraining; a sweep stopped before
  // its last model ends, when run again, with the numbers of an uninterrupted one.
  const auto again = run_cli(sweep_args);
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_FALSE(contains(again.output, "epoch 1 ")) << again.output;
  std::filesystem::remove_all(out_.file("sweep/strength-2"));
  const auto resumed = run_cli(sweep_args);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_TRUE(contains(resumed.output, "epoch 1 ")) << resumed.output;
  EXPECT_EQ(read_json_file(out_.file("sweep/sweep.json")).at("per_strength"), swept.at("per_strength"));

  // Several seeds per strength: one model each, and their mean and standard error.
  const auto seeded = run_cli(
      "sweep --arch mlp --objective gradnorm --strengths 0.01,1 --seeds 2 --epochs 1 --batch-size 32"
      " --analysis-samples 12 --pca-neighbours 12 --pca-dim 4 --out " +
      out_.file("seeded") + data_arg());
  ASSERT_EQ(seeded.exit_code, 0) << seeded.output;
  const nlohmann::json per_seed = read_json_file(out_.file("seeded/sweep.json"));
  ASSERT_EQ(per_seed.at("models").size(), 4u);
  EXPECT_NE(per_seed.at("models").at(0).at("seed"), per_seed.at("models").at(1).at("seed"));
  const nlohmann::json& accuracy = per_seed.at("per_strength").at(0).at("test_accuracy");
  ASSERT_EQ(accuracy.at("per_seed").size(), 2u);
  EXPECT_NEAR(accuracy.at("mean").get<double>(),
              (accuracy.at("per_seed").at(0).get<double>() + accuracy.at("per_seed").at(1).get<double>()) / 2, 1e-12);
  EXPECT_TRUE(std::filesystem::exists(out_.file("seeded/strength-1/seed-1/model.pt")));

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"manifold" + model + " --pca-neighbours 1" + data_arg(), "--pca-neighbours"},
      {"manifold" + model + " --vae " + out_.file("model/model.pt") + data_arg(), "model/model.pt"},
      {"manifold" + model + " --eps -1" + data_arg(), "--eps"},
      {"align" + model + data_arg(), "--denoiser"},
      {"align" + model + " --denoiser " + out_.file("denoiser/denoiser.pt") + " --sigmas 0.1,0.2" + data_arg(),
       "summary noise level 0.5 is not one of the noise levels [0.1,0.2]"},
      {"align" + model + " --denoiser " + out_.file("denoiser/denoiser.pt") + " --pairing unconditional" + data_arg(),
       "--pairing"},
      {"sweep --arch mlp --min 0 --max 1" + data_arg(), "--min"},
      {"sweep --arch mlp --strengths 0.5,0.1" + data_arg(), "--strengths must increase"},
      {"manifold" + model + " --transform dct-flip" + data_arg(), "--transform"},
  };
  for (const auto& [arguments, fragment] : bad) {
    const auto result = run_cli(arguments);
    EXPECT_EQ(result.exit_code, 2) << arguments;
    EXPECT_TRUE(contains(result.output, fragment)) << arguments << "\n" << result.output;
  }
  // A measure that cannot run fails before any model is trained.
  const auto early = run_cli("sweep --arch mlp --strengths 0.1,1 --analysis-samples 12 --pca-neighbours 250 --out " +
                             out_.file("early") + data_arg());
  EXPECT_EQ(early.exit_code, 2);
  EXPECT_TRUE(contains(early.output, "neighbours")) << early.output;
  EXPECT_FALSE(contains(early.output, "epoch 1 ")) << early.output;
}

}  // namespace
}  // namespace robustlens
