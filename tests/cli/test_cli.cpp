// Drives the robustlens command line as a user would: exit codes, messages, files.
#include "robustlens/report/files.h"
#include "test_support.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/cuda.h>

#include <filesystem>

namespace robustlens {
namespace {

using testing::run_cli;

bool contains(const std::string& text, const std::string& fragment) { return text.find(fragment) != std::string::npos; }

class CliOnSyntheticData : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::write_idx_dataset(data_.path(), testing::linear_rule_dataset(240, {1, 6, 6}, 3, 11),
                               testing::linear_rule_dataset(60, {1, 6, 6}, 3, 12));
  }
  std::string data_arg() const { return " --data idx:" + data_.path(); }
  testing::TemporaryDirectory data_, out_;
};

TEST_F(CliOnSyntheticData, TrainResumeEvalAndInfoAgree) {
  const std::string train = "train --arch mlp --epochs 2 --batch-size 32 --threads 1 --out " + out_.path() + data_arg();
  const auto first = run_cli(train);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_TRUE(contains(first.output, "epoch 2")) << first.output;
  ASSERT_TRUE(std::filesystem::exists(out_.file("model.pt")));
  const auto log = read_json_file(out_.file("train_log.json"));
  EXPECT_EQ(log.at("seed"), 0);
  EXPECT_TRUE(log.at("versions").contains("libtorch"));
  const double trained_accuracy = log.at("result").at("epochs").back().at("test_accuracy");

  const auto again = run_cli(train);
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_TRUE(contains(again.output, "already trained")) << again.output;

  const auto eval = run_cli("eval --threads 1 --model " + out_.file("model.pt") + " --out " + out_.file("eval") + data_arg());
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  EXPECT_DOUBLE_EQ(read_json_file(out_.file("eval/eval.json")).at("accuracy").get<double>(), trained_accuracy);

  const auto info = run_cli("info --model " + out_.file("model.pt"));
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_TRUE(contains(info.output, "\"kind\": \"builtin\"")) << info.output;
  EXPECT_TRUE(contains(info.output, "\"objective\"")) << info.output;
}

TEST_F(CliOnSyntheticData, SampleSelectionByIndicesAndCount) {
  testing::TemporaryDirectory model_dir;
  testing::save_linear_torchscript(model_dir.file("linear.pt"), at::randn({3, 36}), at::zeros({3}));
  const auto by_indices = run_cli("eval --model " + model_dir.file("linear.pt") + " --indices 0,5,9 --out " +
                                  out_.path() + data_arg());
  ASSERT_EQ(by_indices.exit_code, 0) << by_indices.output;
  EXPECT_EQ(read_json_file(out_.file("eval.json")).at("samples"), 3);
  const auto by_count = run_cli("eval --model " + model_dir.file("linear.pt") + " --samples 17 --out " + out_.path() + data_arg());
  ASSERT_EQ(by_count.exit_code, 0) << by_count.output;
  EXPECT_EQ(read_json_file(out_.file("eval.json")).at("samples"), 17);
}

TEST_F(CliOnSyntheticData, BadInputGetsOneClearMessageAndNonZeroExit) {
  testing::write_bytes(out_.file("text.pt"), "hello");
  testing::save_torchscript(out_.file("vector.pt"), "return x.flatten(1).sum(1)");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"eval --model " + out_.file("absent.pt") + data_arg(), "does not exist"},
      {"eval --model " + out_.file("text.pt") + data_arg(), "expected a zip archive"},
      {"eval --model " + out_.file("vector.pt") + data_arg(), "N×K logits"},
      {"eval --model " + out_.file("vector.pt") + " --data bogus:/x", "unknown dataset kind"},
      {"eval --model " + out_.file("vector.pt") + " --indices 99999" + data_arg(), "out of range"},
      {"train --arch mlp --objective pgd-l2 --eps -1" + data_arg(), "--eps"},
      {"train --arch lenet --out " + out_.file("lenet") + data_arg(), "at least 12×12"},
      {"train --arch mlp --data idx:" + out_.file("nowhere"), "does not exist"},
  };
  for (const auto& [arguments, fragment] : cases) {
    const auto result = run_cli(arguments);
    EXPECT_NE(result.exit_code, 0) << arguments;
    EXPECT_TRUE(contains(result.output, fragment)) << arguments << "\n" << result.output;
    EXPECT_FALSE(contains(result.output, "terminate called")) << arguments << "\n" << result.output;
  }
  if (!torch::cuda::is_available()) {
    const auto cuda = run_cli("eval --device cuda --model " + out_.file("vector.pt") + data_arg());
    EXPECT_EQ(cuda.exit_code, 2);
    EXPECT_TRUE(contains(cuda.output, "--device cuda")) << cuda.output;
  }
}

TEST_F(CliOnSyntheticData, AttackAgreesWithEvalAndWritesItsFiles) {
  const std::string model = out_.file("run/model.pt");
  ASSERT_EQ(run_cli("train --arch mlp --epochs 3 --batch-size 32 --threads 1 --out " + out_.file("run") + data_arg()).exit_code, 0);
  const auto eval = run_cli("eval --samples 40 --seed 3 --model " + model + " --out " + out_.file("eval") + data_arg());
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  const auto attack = run_cli("attack --samples 40 --seed 3 --eps 0,0.2,0.5 --save-examples --model " + model +
                              " --out " + out_.file("attack") + data_arg());
  ASSERT_EQ(attack.exit_code, 0) << attack.output;
  const auto record = read_json_file(out_.file("attack/attack.json"));
  EXPECT_DOUBLE_EQ(record.at("clean_accuracy").get<double>(),
                   read_json_file(out_.file("eval/eval.json")).at("accuracy").get<double>());
  EXPECT_DOUBLE_EQ(record.at("robust_accuracy").at(0).at("robust_accuracy").get<double>(),
                   record.at("clean_accuracy").get<double>());
  EXPECT_EQ(record.at("deepfool").at("norms").size(), 40u);
  EXPECT_TRUE(record.at("options").contains("steps"));
  for (const std::string file : {"robust_accuracy.csv", "deepfool.csv", "adversarial.pt", "examples.png"}) {
    EXPECT_TRUE(std::filesystem::exists(out_.file("attack/" + file))) << file;
  }
  const auto bad = run_cli("attack --eps 0.5,-1 --model " + model + data_arg());
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_TRUE(contains(bad.output, "--eps")) << bad.output;
}

TEST_F(CliOnSyntheticData, ExplainWritesNormalisedMapsAndHeatmaps) {
  const std::string model = out_.file("run/model.pt");
  ASSERT_EQ(run_cli("train --arch mlp --epochs 1 --threads 1 --out " + out_.file("run") + data_arg()).exit_code, 0);
  for (const std::string method : {"saliency", "input-x-gradient", "ig", "smoothgrad"}) {
    const auto result = run_cli("explain --samples 5 --method " + method + " --target predicted --model " + model +
                                " --out " + out_.file(method) + data_arg());
    ASSERT_EQ(result.exit_code, 0) << result.output;
    EXPECT_TRUE(std::filesystem::exists(out_.file(method + "/heatmaps.png")));
    const c10::IValue saved = torch::jit::pickle_load([&] {
      const std::string bytes = testing::read_bytes(out_.file(method + "/maps.pt"));
      return std::vector<char>(bytes.begin(), bytes.end());
    }());
    const at::Tensor maps = saved.toGenericDict().at("maps").toTensor();
    EXPECT_EQ(maps.sizes(), (at::IntArrayRef{5, 6, 6})) << method;
    EXPECT_TRUE(at::allclose(maps.flatten(1).sum(1), at::ones({5}))) << method;
  }
  EXPECT_EQ(read_json_file(out_.file("ig/explain.json")).at("options").at("steps"), 32);
}

// The foundation's acceptance check: LeNet, 3 epochs of Fashion-MNIST, ≥ 89% test accuracy.
TEST(CliFashionMnist, LeNetReaches89PercentInThreeEpochs) {
  testing::TemporaryDirectory out;
  const auto result = run_cli("train --arch lenet --epochs 3 --out " + out.path());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto log = read_json_file(out.file("train_log.json"));
  const double accuracy = log.at("result").at("epochs").back().at("test_accuracy");
  EXPECT_GE(accuracy, 0.89) << result.output;
}

}  // namespace
}  // namespace robustlens
