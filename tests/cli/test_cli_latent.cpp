// The latent command end to end: bottleneck variants trained by `train`, measured
// alone and side by side, and its errors.
#include "robustlens/core/files.h"
#include "test_support.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace robustlens {
namespace {

using testing::run_cli;

using testing::contains;
using CliLatent = testing::CliOnIdxData;

TEST_F(CliLatent, MeasuresEachModelAloneAndSideBySideWithTheSameNumbers) {
  for (const std::string head : {"binenc", "nopen"}) {
    const auto trained = run_cli("train --arch mlp --width 32 --head " + head +
                                 " --epochs 3 --batch-size 32 --gamma0 0.1 "
                                 "--gamma-factor 2 --hold-output-lr --threads 1 --out " +
                                 out_.file(head) + data_arg());
    ASSERT_EQ(trained.exit_code, 0) << trained.output;
    if (head == "binenc") EXPECT_TRUE(contains(trained.output, "gamma 0.4")) << trained.output;  // epoch 3: 0.1·2²
  }
  const std::string common = " --deepfool-samples 20 --threads 1" + data_arg();
  const auto both = run_cli("latent --model " + out_.file("binenc/model.pt") + " --model " +
                            out_.file("nopen/model.pt") + common + " --out " + out_.file("both"));
  ASSERT_EQ(both.exit_code, 0) << both.output;
  EXPECT_TRUE(contains(both.output, "| binenc |")) << both.output;
  EXPECT_TRUE(contains(both.output, "| nopen |")) << both.output;
  const auto alone = run_cli("latent --model " + out_.file("binenc/model.pt") + " --name solo --save-latents" + common +
                             " --out " + out_.file("alone"));
  ASSERT_EQ(alone.exit_code, 0) << alone.output;

  const auto record = read_json_file(out_.file("both/latent.json"));
  ASSERT_EQ(record.at("models").size(), 2u);
  const auto& binenc = record.at("models").at(0);
  EXPECT_EQ(binenc.at("name"), "binenc");
  EXPECT_EQ(binenc.at("result"), read_json_file(out_.file("alone/latent.json")).at("models").at(0).at("result"));
  EXPECT_EQ(binenc.at("result").at("latent_dim"), 4);                      // 2² >= 3 classes, + 2
  EXPECT_EQ(record.at("models").at(1).at("result").at("latent_dim"), 32);  // nopen: the last hidden layer of the MLP
  EXPECT_EQ(binenc.at("model").at("training").at("latent_penalty").at("factor"), 2.0);
  EXPECT_EQ(binenc.at("result").at("robustness").at("images"), 20);
  // The ensemble's ratio beside DeepFool's: numbers where it found adversarials.
  const auto& robustness = binenc.at("result").at("robustness");
  EXPECT_TRUE(robustness.at("ensemble_ratio").is_number()) << robustness;
  EXPECT_LT(robustness.at("ensemble_not_found").get<std::int64_t>(), 20) << robustness;
  EXPECT_TRUE(contains(both.output, "ensemble r/x")) << both.output;
  EXPECT_TRUE(std::filesystem::exists(out_.file("alone/solo/latents.pt")));
  EXPECT_FALSE(std::filesystem::exists(out_.file("both/binenc/latents.pt")));
  for (const std::string file : {"latent.json", "comparison.md", "comparison.csv", "binenc/units.svg",
                                 "binenc/projection.svg", "nopen/units.svg", "nopen/projection.svg"}) {
    EXPECT_TRUE(std::filesystem::exists(out_.file("both/" + file))) << file;
  }
}

TEST_F(CliLatent, MeasuresATorchScriptModelThroughItsLatentMethod) {
  testing::TemporaryDirectory models;
  testing::save_linear_torchscript(models.file("linear.pt"), at::randn({3, 36}), at::zeros({3}), /*with_latent=*/true);
  const auto measured = run_cli("latent --deepfool-samples 10 --threads 1 --model " + models.file("linear.pt") +
                                data_arg() + " --out " + out_.file("ts"));
  ASSERT_EQ(measured.exit_code, 0) << measured.output;
  const auto result = read_json_file(out_.file("ts/latent.json")).at("models").at(0).at("result");
  EXPECT_EQ(result.at("latent_dim"), 36);  // latent(x) = flatten(x)
  EXPECT_EQ(result.at("robustness").at("images"), 10);
}

TEST_F(CliLatent, BadInputGetsOneClearMessage) {
  testing::TemporaryDirectory models;
  testing::save_linear_torchscript(models.file("linear.pt"), at::randn({3, 36}), at::zeros({3}));
  for (const auto& [arguments, fragment] : std::vector<std::pair<std::string, std::string>>{
           {"latent --model " + models.file("linear.pt"), "exposes no latent code"},
           {"latent --model " + models.file("missing.pt"), "missing.pt"},
           {"latent --model " + models.file("linear.pt") + " --name a --name b", "one name per --model"},
           {"latent --model " + models.file("linear.pt") + " --odin-temperature 0", "--odin-temperature"},
           {"latent", "--model"}}) {
    const auto bad = run_cli(arguments + data_arg() + " --out " + out_.file("bad"));
    EXPECT_EQ(bad.exit_code, 2) << arguments;
    EXPECT_TRUE(contains(bad.output, fragment)) << arguments << "\n" << bad.output;
    EXPECT_FALSE(std::filesystem::exists(out_.file("bad/latent.json"))) << arguments;
  }
}

TEST_F(CliLatent, LogsTheLatentCodeDuringTrainingWithTheNumbersTheLatentCommandGives) {
  const auto trained = run_cli(
      "train --arch mlp --width 32 --head binenc --epochs 4 --batch-size 32 --optimizer adamw "
      "--lr 0.01 --log-latent-every 3 --threads 1 --out " +
      out_.file("m") + data_arg());
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  EXPECT_TRUE(contains(trained.output, "latent code after epoch 3")) << trained.output;
  const auto log = read_json_file(out_.file("m/latent_log.json"));
  const auto& snapshots = log.at("snapshots");
  ASSERT_EQ(snapshots.size(), 2u);  // epoch 3, and the last
  EXPECT_EQ(snapshots.at(0).at("epoch"), 3);
  EXPECT_EQ(snapshots.at(1).at("epoch"), 4);
  const auto epochs = read_json_file(out_.file("m/train_log.json")).at("result").at("epochs");
  EXPECT_EQ(snapshots.at(1).at("train_accuracy"), epochs.at(3).at("train_accuracy"));
  EXPECT_EQ(snapshots.at(1).at("test_accuracy"), epochs.at(3).at("test_accuracy"));
  EXPECT_TRUE(std::filesystem::exists(out_.file("m/emergence.svg")));
  // The probe is every training image here (240 < 2000), so the last snapshot is what `latent` measures on the
  // training latents of the final model.
  const auto measured = run_cli("latent --model " + out_.file("m/model.pt") + " --deepfool-samples 0 --threads 1" +
                                data_arg() + " --out " + out_.file("l"));
  ASSERT_EQ(measured.exit_code, 0) << measured.output;
  const auto result = read_json_file(out_.file("l/latent.json")).at("models").at(0).at("result");
  EXPECT_EQ(snapshots.at(1).at("same_encoding_fraction"),
            result.at("encoding").at("train").at("same_encoding_fraction"));
  EXPECT_EQ(snapshots.at(1).at("distinct_codes"), result.at("encoding").at("train").at("distinct_codes"));
  EXPECT_NEAR(snapshots.at(1).at("nc1").get<double>(), result.at("collapse").at("train").at("nc1").get<double>(), 1e-9);
  EXPECT_NEAR(snapshots.at(1).at("separation_median").get<double>(),
              result.at("binarity").at("separation_median").get<double>(), 1e-9);
}

TEST_F(CliLatent, DetectsHeldOutClassesAndCorruptedImagesAsOutOfDistribution) {
  // Trained without class 2: the model knows classes 0 and 1 only, under their names.
  const auto trained = run_cli(
      "train --arch mlp --width 32 --head binenc --epochs 3 --batch-size 32 --exclude-classes 2 "
      "--threads 1 --out " +
      out_.file("m") + data_arg());
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  const auto log = read_json_file(out_.file("m/train_log.json"));
  EXPECT_EQ(log.at("common").at("exclude_classes"), "2");
  const auto run = run_cli(
      "latent --model " + out_.file("m/model.pt") + " --exclude-classes 2 --ood held-out --ood idx:" + data_.path() +
      "+corrupt:impulse-noise:5 --deepfool-samples 0 --threads 1" + data_arg() + " --out " + out_.file("l"));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_TRUE(contains(run.output, "out-of-distribution detection")) << run.output;
  const auto record = read_json_file(out_.file("l/latent.json"));
  const auto& ood = record.at("models").at(0).at("ood");
  ASSERT_EQ(ood.size(), 2u);
  // The in-distribution images are the test images of classes 0 and 1; the held-out set those of class 2.
  const Dataset test = testing::linear_rule_dataset(60, {1, 6, 6}, 3, 12);
  const auto of_class_2 = (test.labels == 2).sum().item<std::int64_t>();
  EXPECT_EQ(ood.at(0).at("set"), "held-out classes 2");
  EXPECT_EQ(ood.at(0).at("in_images"), 60 - of_class_2);
  EXPECT_EQ(ood.at(0).at("out_images"), of_class_2);
  EXPECT_EQ(ood.at(1).at("out_images"), 60);
  for (const auto& set : ood) {
    for (const std::string score : {"mahalanobis", "odin", "max_softmax"}) {
      const double auroc = set.at(score).at("auroc");
      EXPECT_TRUE(auroc >= 0 && auroc <= 1) << set;
      const double fpr = set.at(score).at("fpr_at_95_tpr");
      EXPECT_TRUE(fpr >= 0 && fpr <= 1) << set;
    }
  }
  // Without the option the class names disagree; a class the data do not have is named.
  const auto mismatch =
      run_cli("latent --model " + out_.file("m/model.pt") + " --threads 1" + data_arg() + " --out " + out_.file("bad"));
  EXPECT_EQ(mismatch.exit_code, 2) << mismatch.output;
  const auto none = run_cli("latent --model " + out_.file("m/model.pt") + " --ood held-out --exclude-classes 2,7" +
                            data_arg() + " --out " + out_.file("bad"));
  EXPECT_EQ(none.exit_code, 2) << none.output;
  EXPECT_TRUE(contains(none.output, "class 7 is out of range")) << none.output;
}

// The binary-encoding claims on Fashion-MNIST with the 40-epoch recipe of
// scripts/latent_experiments.sh (LeNet, seed 0; about 9 minutes on 2 cores):
// against the same network without a bottleneck, binenc's latent code is
// nearly one code per class, its units far more bimodal, DeepFool needs at
// least 3× larger perturbations, the Mahalanobis score detects misclassified
// images better, and accuracy is not lower by more than one point. These are
// the bounds except same encoding, which is 0.94 rather than 0.95: the
// documented runs give 0.947-0.964 (seed 0: 0.958) and DeepFool 11-15× nopen's
// (seed 0 with these options: 15×); docs/latent-binary-encoding.md.
TEST(CliFashionMnist, BinaryEncodingCollapsesTheCodeAndRaisesRobustnessAndReliability) {
  testing::TemporaryDirectory out;
  const std::string recipe =
      "train --arch lenet --epochs 40 --optimizer adamw --lr 0.001 --hold-output-lr --gamma0 0.01 "
      "--gamma-factor 2 --gamma-max 300 --head ";
  for (const std::string head : {"nopen", "binenc"}) {
    const auto trained = run_cli(recipe + head + " --out " + out.file(head));
    ASSERT_EQ(trained.exit_code, 0) << trained.output;
  }
  const auto measured = run_cli("latent --deepfool-samples 500 --model " + out.file("nopen/model.pt") + " --model " +
                                out.file("binenc/model.pt") + " --out " + out.file("latent"));
  ASSERT_EQ(measured.exit_code, 0) << measured.output;
  const auto models = read_json_file(out.file("latent/latent.json")).at("models");
  const auto& nopen = models.at(0).at("result");
  const auto& binenc = models.at(1).at("result");
  const auto value = [](const nlohmann::json& r, const std::string& group, const std::string& key) {
    return r.at(group).at(key).get<double>();
  };
  EXPECT_GE(binenc.at("encoding").at("test").at("same_encoding_fraction").get<double>(), 0.94) << measured.output;
  // The median over units: one ReLU unit of nopen that is nearly always zero can make its mean separation huge.
  EXPECT_GT(value(binenc, "binarity", "separation_median"), 2 * value(nopen, "binarity", "separation_median"))
      << measured.output;
  EXPECT_GE(value(binenc, "robustness", "deepfool_ratio"), 3 * value(nopen, "robustness", "deepfool_ratio"))
      << measured.output;
  EXPECT_GT(value(binenc, "reliability", "mahalanobis_auroc"), value(nopen, "reliability", "mahalanobis_auroc"))
      << measured.output;
  EXPECT_GE(binenc.at("test_accuracy").get<double>(), nopen.at("test_accuracy").get<double>() - 0.01)
      << measured.output;
  // The attack ensemble's minimum agrees with robust accuracy on the BinEnc LeNet, whose DeepFool distance it
  // undercuts.
  const auto attack =
      run_cli("attack --samples 300 --model " + out.file("binenc/model.pt") + " --out " + out.file("attack"));
  ASSERT_EQ(attack.exit_code, 0) << attack.output;
  testing::expect_minimum_consistent_with_robust_accuracy(read_json_file(out.file("attack/attack.json")));
}

}  // namespace
}  // namespace robustlens
