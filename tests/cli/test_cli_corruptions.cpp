// The corruptions command end to end: accuracies that eval confirms, mCE by its definition from the record's own
// accuracies, the spectral validation, and its errors.
#include "robustlens/core/files.h"
#include "test_support.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace robustlens {
namespace {

using testing::contains;
using testing::run_cli;
using CliCorruptions = testing::CliOnIdxData;

TEST_F(CliCorruptions, AccuraciesMatchEvalOnTheCorruptedDataAndErrorsFollowTheirDefinition) {
  testing::TemporaryDirectory models;
  for (int m = 0; m < 3; ++m) {
    testing::save_linear_torchscript(models.file("m" + std::to_string(m) + ".pt"),
                                     at::randn({3, 36}, at::TensorOptions().dtype(at::kFloat)) * (m + 1),
                                     at::zeros({3}));
  }
  const std::string model_arguments = " --model " + models.file("m0.pt") + " --model " + models.file("m1.pt") +
                                      " --model " + models.file("m2.pt") + " --name a --name b --name c";
  const auto run = run_cli(
      "corruptions" + model_arguments +
      " --baseline b --corruptions contrast,gaussian-noise --severities 1,3 --spectral-samples 20 --spectral-bands 3 "
      "--threads 1" +
      data_arg() + " --out " + out_.file("c"));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_TRUE(contains(run.output, "Spearman of the signed_score")) << run.output;
  const auto record = read_json_file(out_.file("c/corruptions.json"));
  EXPECT_EQ(record.at("baseline"), "b");
  ASSERT_EQ(record.at("models").size(), 3u);

  // Contrast at severity 3 is deterministic: the accuracy equals eval's on the data spec that corrupts the split.
  // (The spec draws from its own seed; contrast draws nothing.)
  const auto eval = run_cli("eval --model " + models.file("m0.pt") + " --threads 1" + data_arg() +
                            "+corrupt:contrast:3 --out " + out_.file("e"));
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  const auto& a = record.at("models").at(0);
  EXPECT_DOUBLE_EQ(a.at("accuracy").at("contrast").at(1).get<double>(),
                   read_json_file(out_.file("e/eval.json")).at("accuracy").get<double>());

  // CE_c = Σ_s (1 − acc) / Σ_s (1 − acc of the baseline), mCE their mean: recomputed from the record's accuracies.
  const auto& b = record.at("models").at(1);
  double mce = 0;
  for (const std::string corruption : {"contrast", "gaussian-noise"}) {
    double errors = 0, baseline_errors = 0;
    for (int s = 0; s < 2; ++s) {
      errors += 1 - a.at("accuracy").at(corruption).at(s).get<double>();
      baseline_errors += 1 - b.at("accuracy").at(corruption).at(s).get<double>();
    }
    const auto& ce = a.at("errors").at("per_corruption").at(corruption).at("corruption_error");
    ASSERT_TRUE(ce.is_number()) << a;
    EXPECT_NEAR(ce.get<double>(), errors / baseline_errors, 1e-12);
    mce += errors / baseline_errors / 2;
  }
  EXPECT_NEAR(a.at("errors").at("mean_corruption_error").get<double>(), mce, 1e-12);
  EXPECT_NEAR(b.at("errors").at("mean_corruption_error").get<double>(), 1.0, 1e-12);
  // The spectral scores and their correlation with the mean corrupted accuracy (3 models: a full interval).
  EXPECT_TRUE(a.at("spectral").at("score").is_number());
  const auto& correlation = record.at("spectral_validation").at("correlation").at("drop").at("signed_score");
  EXPECT_EQ(correlation.at("pairs"), 3);
  // One CSV row per model and (corruption, severity), plus the clean row.
  std::ifstream csv(out_.file("c/corruptions.csv"));
  std::int64_t lines = 0;
  for (std::string line; std::getline(csv, line);) ++lines;
  EXPECT_EQ(lines, 1 + 3 * (1 + 2 * 2));
  for (const std::string file : {"accuracy.svg", "errors.svg", "spectral.svg"}) {
    EXPECT_TRUE(std::filesystem::exists(out_.file("c/" + file))) << file;
  }
  // The same options and seed give the same record (times and paths aside): deterministic on the CPU.
  const auto again = run_cli("corruptions" + model_arguments +
                             " --baseline b --corruptions contrast,gaussian-noise --severities 1,3 --threads 1" +
                             data_arg() + " --out " + out_.file("again"));
  ASSERT_EQ(again.exit_code, 0) << again.output;
  const auto second = read_json_file(out_.file("again/corruptions.json"));
  for (std::size_t m = 0; m < 3; ++m) {
    EXPECT_EQ(second.at("models").at(m).at("accuracy"), record.at("models").at(m).at("accuracy"));
  }
  EXPECT_TRUE(contains(again.output, "mCE")) << again.output;
  EXPECT_FALSE(second.contains("spectral_validation"));
}

TEST_F(CliCorruptions, BadInputGetsOneClearMessage) {
  testing::TemporaryDirectory models;
  testing::save_linear_torchscript(models.file("linear.pt"), at::randn({3, 36}), at::zeros({3}));
  const std::string model = " --model " + models.file("linear.pt");
  for (const auto& [arguments, fragment] : std::vector<std::pair<std::string, std::string>>{
           {"corruptions" + model + " --baseline other", "--baseline: 'other' names no model"},
           {"corruptions" + model + " --severities 6", "--severities: 1 to 5, got 6"},
           {"corruptions" + model + " --corruptions fog", "corruption 'fog' is unknown"},
           {"corruptions" + model + " --transform dct", "--transform must be none"},
           {"corruptions" + model + " --spectral-samples -1", "--spectral-samples"},
           {"eval" + model + " --data fashion-mnist+corrupt:contrast:9", "--data 'fashion-mnist+corrupt:contrast:9'"},
           {"corruptions", "--model"}}) {
    const auto bad =
        run_cli(arguments + (contains(arguments, "--data") ? "" : data_arg()) + " --out " + out_.file("bad"));
    EXPECT_EQ(bad.exit_code, 2) << arguments;
    EXPECT_TRUE(contains(bad.output, fragment)) << arguments << "\n" << bad.output;
  }
}

}  // namespace
}  // namespace robustlens
