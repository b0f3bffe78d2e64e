// robustlens train-vae and train-denoiser as a user runs them: files, logs, info, bad options.
#include "robustlens/core/files.h"
#include "robustlens/data/image_folder.h"
#include "robustlens/generative/denoiser.h"
#include "robustlens/generative/vae.h"
#include "test_support.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace robustlens {
namespace {

using testing::run_cli;

using testing::contains;
class CliGenerative : public testing::CliOnIdxData {
 protected:
  CliGenerative() : CliOnIdxData(96, 32) {}
  std::string data_arg() const { return " --threads 1" + CliOnIdxData::data_arg(); }
};

TEST_F(CliGenerative, TrainVaeWritesTheModelAndItsLog) {
  const auto result =
      run_cli("train-vae --epochs 2 --batch-size 16 --latent-dim 3 --hidden 16 --out " + out_.file("vae") + data_arg());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "epoch 2  loss")) << result.output;
  const auto vae = load_vae(out_.file("vae/vae.pt"), at::kCPU);
  EXPECT_EQ(vae->spec().latent_dim, 3);
  EXPECT_EQ(vae->spec().input_shape, (std::vector<std::int64_t>{1, 6, 6}));
  const auto log = read_json_file(out_.file("vae/train_log.json"));
  EXPECT_EQ(log.at("command"), "train-vae");
  EXPECT_EQ(log.at("result").at("epochs").size(), 2u);
  EXPECT_TRUE(log.at("result").at("epochs").back().contains("test_kl"));
  EXPECT_EQ(log.at("train_data").at("size"), 96);

  // A rerun resumes from the checkpoint; another recipe is refused until --restart.
  const std::string again = "train-vae --epochs 2 --batch-size 16 --latent-dim 3 --hidden 16 --out " + out_.file("vae");
  const auto resumed = run_cli(again + data_arg());
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_TRUE(contains(resumed.output, "all 2 epochs were already trained")) << resumed.output;
  const auto other = run_cli(again + " --lr 0.01" + data_arg());
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_TRUE(contains(other.output, "use another output folder, or start afresh (--restart)")) << other.output;
  const auto restarted = run_cli(again + " --lr 0.01 --restart" + data_arg());
  ASSERT_EQ(restarted.exit_code, 0) << restarted.output;
  EXPECT_TRUE(contains(restarted.output, "epoch 1  loss")) << restarted.output;

  const auto info = run_cli("info --model " + out_.file("vae/vae.pt"));
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_TRUE(contains(info.output, "\"format\": \"robustlens-vae\"")) << info.output;
  EXPECT_TRUE(contains(info.output, "\"latent_dim\": 3")) << info.output;
  // Given where a classifier is expected, it is refused by name.
  const auto eval = run_cli("eval --model " + out_.file("vae/vae.pt") + data_arg());
  EXPECT_EQ(eval.exit_code, 2);
  EXPECT_TRUE(contains(eval.output, "is a robustlens VAE file, not a classifier")) << eval.output;
}

TEST_F(CliGenerative, TrainDenoiserConditionalAndUnconditional) {
  const std::string common = " --epochs 1 --batch-size 32 --channels 4 --embedding-dim 8 --samples 64";
  const auto conditional = run_cli("train-denoiser" + common + " --out " + out_.file("conditional") + data_arg());
  ASSERT_EQ(conditional.exit_code, 0) << conditional.output;
  EXPECT_TRUE(contains(conditional.output, "class-conditional")) << conditional.output;
  EXPECT_TRUE(contains(conditional.output, "epoch 1  lr")) << conditional.output;
  EXPECT_EQ(load_denoiser(out_.file("conditional/denoiser.pt"), at::kCPU)->spec().num_classes, 3);
  const auto log = read_json_file(out_.file("conditional/train_log.json"));
  EXPECT_EQ(log.at("train_data").at("size"), 64);
  EXPECT_EQ(log.at("options").at("recipe").at("sigma_max"), 2.0);

  const auto unconditional =
      run_cli("train-denoiser --unconditional" + common + " --out " + out_.file("unconditional") + data_arg());
  ASSERT_EQ(unconditional.exit_code, 0) << unconditional.output;
  EXPECT_EQ(load_denoiser(out_.file("unconditional/denoiser.pt"), at::kCPU)->spec().num_classes, 0);
  const auto info = run_cli("info --model " + out_.file("unconditional/denoiser.pt"));
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_TRUE(contains(info.output, "\"format\": \"robustlens-denoiser\"")) << info.output;
}

TEST_F(CliGenerative, BadOptionsGiveAMessageAndNonZeroExit) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"train-vae --latent-dim 0" + data_arg(), "--latent-dim"},
      {"train-vae --latent-dim 99 --out " + out_.file("x") + data_arg(),
       "--latent-dim must lie in [1, 36] (C·H·W of the images), got 99"},
      {"train-vae --lr -1" + data_arg(), "--lr"},
      {"train-vae --data idx:" + out_.file("nowhere"), "does not exist"},
      {"train-denoiser --sigma-min 3 --sigma-max 1 --out " + out_.file("x") + data_arg(),
       "--sigma-min 3 --sigma-max 1"},
      {"train-denoiser --channels 0" + data_arg(), "--channels"},
  };
  for (const auto& [arguments, fragment] : cases) {
    const auto result = run_cli(arguments);
    EXPECT_EQ(result.exit_code, 2) << arguments;
    EXPECT_TRUE(contains(result.output, fragment)) << arguments << "\n" << result.output;
    EXPECT_FALSE(contains(result.output, "terminate called")) << arguments << "\n" << result.output;
  }
  EXPECT_FALSE(std::filesystem::exists(out_.file("x/vae.pt")));
  EXPECT_FALSE(std::filesystem::exists(out_.file("x/denoiser.pt")));
}

TEST(CliGenerativeModels, ADenoiserIsRefusedForDataThatNameItsClassesOtherwiseAndWarnedAboutOtherData) {
  // The same images as three folders, whose class folders name the labels (in name order): "a" cat, dog, emu;
  // "b" cat, dog, fox; "c" as "a". A denoiser trained on "a" gives, for label 2 of "b", the score of emus.
  testing::TemporaryDirectory dir;
  Dataset data = testing::linear_rule_dataset(36, {1, 12, 12}, 3, 5);
  data.class_names = {"cat", "dog", "emu"};
  write_image_folder(dir.file("a"), data);
  write_image_folder(dir.file("c"), data);
  data.class_names = {"cat", "dog", "fox"};
  write_image_folder(dir.file("b"), data);
  const auto folder = [&](const std::string& name) {
    return " --threads 1 --image-shape 1,12,12 --data folder:" + dir.file(name);
  };
  const std::string small = " --epochs 1 --batch-size 12 --channels 4 --embedding-dim 8";
  ASSERT_EQ(run_cli("train-denoiser" + small + " --out " + dir.file("denoiser") + folder("a")).exit_code, 0);
  const auto model = run_cli("train --arch mlp --epochs 1 --out " + dir.file("model") + folder("b"));
  ASSERT_EQ(model.exit_code, 0) << model.output;
  const std::string align = "align --samples 6 --figure-images 0 --model " + dir.file("model/model.pt") +
                            " --denoiser " + dir.file("denoiser/denoiser.pt");

  const auto refused = run_cli(align + " --out " + dir.file("align-b") + folder("b"));
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_TRUE(
      contains(refused.output,
               "denoiser.pt' was trained on classes [\"cat\",\"dog\",\"emu\"] but dataset folder:" + dir.file("b") +
                   " (test) has [\"cat\",\"dog\",\"fox\"] (label 2 differs): its "
                   "class-conditional score for each label would be another class's"))
      << refused.output;
  EXPECT_FALSE(std::filesystem::exists(dir.file("align-b/alignment.json")));

  // Data "c" name the classes as "a" does but are other data by their spec: analysed, with a warning.
  const auto model_c = run_cli("train --arch mlp --epochs 1 --out " + dir.file("model-c") + folder("c"));
  ASSERT_EQ(model_c.exit_code, 0) << model_c.output;
  const auto warned =
      run_cli("align --samples 6 --figure-images 0 --model " + dir.file("model-c/model.pt") + " --denoiser " +
              dir.file("denoiser/denoiser.pt") + " --out " + dir.file("align-c") + folder("c"));
  EXPECT_EQ(warned.exit_code, 0) << warned.output;
  EXPECT_TRUE(contains(warned.output, "warning: --denoiser '" + dir.file("denoiser/denoiser.pt") +
                                          "' was trained on folder:" + dir.file("a") +
                                          " (train), but the data analysed are folder:" + dir.file("c") +
                                          " (test): its scores describe other data"))
      << warned.output;
  // The data it was trained on: no warning.
  const auto model_a = run_cli("train --arch mlp --epochs 1 --out " + dir.file("model-a") + folder("a"));
  ASSERT_EQ(model_a.exit_code, 0) << model_a.output;
  const auto same =
      run_cli("align --samples 6 --figure-images 0 --model " + dir.file("model-a/model.pt") + " --denoiser " +
              dir.file("denoiser/denoiser.pt") + " --out " + dir.file("align-a") + folder("a"));
  EXPECT_EQ(same.exit_code, 0) << same.output;
  EXPECT_FALSE(contains(same.output, "warning:")) << same.output;
}

}  // namespace
}  // namespace robustlens
