// Drives the robustlens command line as a user would: exit codes, messages, files.
#include "robustlens/core/files.h"
#include "robustlens/data/image_folder.h"
#include "test_support.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/cuda.h>

#include <algorithm>
#include <filesystem>
#include <map>

namespace robustlens {
namespace {

using testing::run_cli;

using testing::contains;
using CliOnSyntheticData = testing::CliOnIdxData;

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

  // What a killed earlier run left half-written in the output folder is removed, and said so.
  const std::string stale = out_.file("eval/eval.json.tmp" + std::to_string(testing::exited_process_id()));
  std::filesystem::create_directories(out_.file("eval"));
  testing::write_bytes(stale, "{\"accur");
  const auto eval =
      run_cli("eval --threads 1 --model " + out_.file("model.pt") + " --out " + out_.file("eval") + data_arg());
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  EXPECT_TRUE(contains(eval.output, "removed 1 unfinished temporary file that a killed run left in")) << eval.output;
  EXPECT_FALSE(std::filesystem::exists(stale));
  EXPECT_DOUBLE_EQ(read_json_file(out_.file("eval/eval.json")).at("accuracy").get<double>(), trained_accuracy);

  const auto info = run_cli("info --model " + out_.file("model.pt"));
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_TRUE(contains(info.output, "\"kind\": \"builtin\"")) << info.output;
  EXPECT_TRUE(contains(info.output, "\"objective\"")) << info.output;
}

TEST_F(CliOnSyntheticData, SampleSelectionByIndicesAndCount) {
  testing::TemporaryDirectory model_dir;
  testing::save_linear_torchscript(model_dir.file("linear.pt"), at::randn({3, 36}), at::zeros({3}));
  const auto by_indices =
      run_cli("eval --model " + model_dir.file("linear.pt") + " --indices 0,5,9 --out " + out_.path() + data_arg());
  ASSERT_EQ(by_indices.exit_code, 0) << by_indices.output;
  EXPECT_EQ(read_json_file(out_.file("eval.json")).at("samples"), 3);
  const auto by_count =
      run_cli("eval --model " + model_dir.file("linear.pt") + " --samples 17 --out " + out_.path() + data_arg());
  ASSERT_EQ(by_count.exit_code, 0) << by_count.output;
  EXPECT_EQ(read_json_file(out_.file("eval.json")).at("samples"), 17);
}

TEST_F(CliOnSyntheticData, BadInputGetsOneClearMessageAndNonZeroExit) {
  testing::write_bytes(out_.file("text.pt"), "hello");
  testing::save_torchscript(out_.file("vector.pt"), "return x.flatten(1).sum(1)");
  testing::save_torchscript(out_.file("raises.pt"),
                            "assert bool(x.sum() < -1.0e30), 'no images today'\n    return x.flatten(1)");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"eval --model " + out_.file("absent.pt") + data_arg(), "does not exist"},
      {"eval --model " + out_.file("text.pt") + data_arg(), "expected a zip archive"},
      {"eval --model " + out_.file("vector.pt") + data_arg(), "N×K logits"},
      {"eval --model " + out_.file("raises.pt") + data_arg(),
       "raises.pt' failed in forward() on a batch of shape [2, 1, 6, 6]: "
       "RuntimeError: AssertionError: no images today"},
      {"attack --eps 0.5,-1 --model " + out_.file("vector.pt") + data_arg(), "--eps: must be >= 0, got -1"},
      {"train --arch mlp --out " + out_.file("text.pt") + data_arg(), "--out '" + out_.file("text.pt") + "' is a file"},
      {"eval --model " + out_.file("vector.pt") + " --out " + out_.file("text.pt") + "/sub" + data_arg(),
       "cannot be created"},
      // The library names the inputs it parses by what they are ("dataset spec 'bogus:/x'"); the CLI by flag.
      {"eval --model " + out_.file("vector.pt") + " --data bogus:/x", "error: --data 'bogus:/x': unknown dataset kind"},
      {"eval --model " + out_.file("vector.pt") + " --samples 99999" + data_arg(),
       "error: --samples 99999 exceeds the"},
      {"eval --model " + out_.file("vector.pt") + " --indices 99999" + data_arg(), "out of range"},
      {"train --arch mlp --objective pgd-l2 --eps -1" + data_arg(), "--eps"},
      // The library names the option UpiOptions.top_k; the CLI names the flag that set it.
      {"upi --top-k -3 --model " + out_.file("vector.pt") + data_arg(),
       "error: --top-k must be >= 0 (0 = scaled with the image area), got -3"},
      {"train --arch lenet --out " + out_.file("lenet") + data_arg(), "at least 12×12"},
      {"train --arch mlp --data idx:" + out_.file("nowhere"), "does not exist"},
  };
  for (const auto& [arguments, fragment] : cases) {
    const auto result = run_cli(arguments);
    EXPECT_EQ(result.exit_code, 2) << arguments;
    EXPECT_TRUE(contains(result.output, fragment)) << arguments << "\n" << result.output;
    EXPECT_FALSE(contains(result.output, "terminate called")) << arguments << "\n" << result.output;
    // One line, and CLI11's pointer to --help after an option error.
    EXPECT_EQ(std::count(result.output.begin(), result.output.end(), '\n'),
              contains(result.output, "Run with --help") ? 2 : 1)
        << "one line:\n"
        << result.output;
  }
  if (!torch::cuda::is_available()) {
    const auto cuda = run_cli("eval --device cuda --model " + out_.file("vector.pt") + data_arg());
    EXPECT_EQ(cuda.exit_code, 2);
    EXPECT_TRUE(contains(cuda.output, "--device cuda")) << cuda.output;
  }
}

/// A model is scored only against the classes it was trained on: an image folder whose test split lacks
/// a class folder is refused by name; a class folder without images keeps every other label in place.
TEST_F(CliOnSyntheticData, ImageFolderClassesAreMatchedToTheModelsByName) {
  Dataset train = testing::linear_rule_dataset(240, {1, 6, 6}, 3, 11);
  Dataset test = testing::linear_rule_dataset(60, {1, 6, 6}, 3, 12);
  train.class_names = test.class_names = {"cat", "dog", "frog"};
  const std::filesystem::path folder = out_.file("folder");
  write_image_folder((folder / "train").string(), train);
  write_image_folder((folder / "test").string(), test);
  const std::string data = " --data folder:" + folder.string() + " --image-shape 1,6,6";
  const std::string model = out_.file("model/model.pt");
  ASSERT_EQ(run_cli("train --arch mlp --epochs 3" + data + " --out " + out_.file("model")).exit_code, 0);
  const auto full = run_cli("eval --model " + model + data + " --out " + out_.file("full"));
  ASSERT_EQ(full.exit_code, 0) << full.output;

  std::filesystem::remove_all(folder / "test" / "dog");
  std::filesystem::create_directories(folder / "test" / "dog");
  const auto without_images = run_cli("eval --model " + model + data + " --out " + out_.file("empty-class"));
  ASSERT_EQ(without_images.exit_code, 0) << without_images.output;
  const nlohmann::json before = read_json_file(out_.file("full/eval.json"));
  const nlohmann::json after = read_json_file(out_.file("empty-class/eval.json"));
  EXPECT_EQ(after.at("data").at("images_per_class").at(1), 0);
  for (const std::string name : {"cat", "frog"}) {
    EXPECT_EQ(after.at("per_class_accuracy").at(name), before.at("per_class_accuracy").at(name)) << name;
  }

  std::filesystem::remove_all(folder / "test" / "dog");
  const auto missing = run_cli("eval --model " + model + data + " --out " + out_.file("missing-class"));
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_TRUE(contains(missing.output, "was trained on classes")) << missing.output;
  EXPECT_FALSE(std::filesystem::exists(out_.file("missing-class/eval.json")));
}

TEST_F(CliOnSyntheticData, AttackAgreesWithEvalAndWritesItsFiles) {
  const std::string model = out_.file("run/model.pt");
  ASSERT_EQ(run_cli("train --arch mlp --epochs 3 --batch-size 32 --threads 1 --out " + out_.file("run") + data_arg())
                .exit_code,
            0);
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
  const auto& minimal = record.at("minimal_perturbation");
  EXPECT_EQ(minimal.at("norms").size(), 40u);
  EXPECT_EQ(minimal.at("found_by").size(), 40u);
  EXPECT_EQ(minimal.at("attacks"), nlohmann::json({"clean", "deepfool", "pgd", "fmn", "pgd-bisection", "fmn-long"}));
  EXPECT_TRUE(contains(attack.output, "minimal l2 perturbation per image")) << attack.output;
  for (const std::string file :
       {"robust_accuracy.csv", "deepfool.csv", "minimal_perturbation.csv", "adversarial.pt", "examples.png"}) {
    EXPECT_TRUE(std::filesystem::exists(out_.file("attack/" + file))) << file;
  }
  const auto bad = run_cli("attack --eps 0.5,-1 --model " + model + data_arg());
  EXPECT_EQ(bad.exit_code, 2);
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

TEST_F(CliOnSyntheticData, MarginsWithSubspacesAndTransforms) {
  testing::TemporaryDirectory images;
  testing::write_idx_dataset(images.path(), testing::linear_rule_dataset(240, {1, 12, 12}, 3, 11),
                             testing::linear_rule_dataset(60, {1, 12, 12}, 3, 12));
  const std::string data = " --data idx:" + images.path();
  ASSERT_EQ(run_cli("train --arch mlp --epochs 2 --transform low-pass:6 --out " + out_.file("run") + data).exit_code,
            0);
  EXPECT_EQ(read_json_file(out_.file("run/train_log.json")).at("options").at("recipe").at("transform"), "low-pass:6");
  const auto margins = run_cli("margins --samples 6 --subspaces dct:4:2 --transform low-pass:6 --model " +
                               out_.file("run/model.pt") + " --out " + out_.file("margins") + data);
  ASSERT_EQ(margins.exit_code, 0) << margins.output;
  const auto record = read_json_file(out_.file("margins/margins.json"));
  EXPECT_EQ(record.at("per_subspace").size(), 5u);  // blocks at 0, 2, 4, 6, 8 of 12
  EXPECT_EQ(record.at("per_subspace").at(0).at("margins").size(), 6u);
  EXPECT_TRUE(std::filesystem::exists(out_.file("margins/margins.svg")));
  EXPECT_TRUE(contains(testing::read_bytes(out_.file("margins/margins.csv")), "full,"));
  EXPECT_TRUE(contains(testing::read_bytes(out_.file("margins/margins.csv")), "full-ensemble,"));
  // The whole space's minimum over the attack ensemble is at most DeepFool's margin, sample by sample.
  const auto& full = record.at("full_space");
  for (std::size_t i = 0; i < 6; ++i) {
    const auto& minimum = full.at("minimal_perturbation").at("norms").at(i);
    if (minimum.is_number() && full.at("flipped").at(i).get<int>() != 0) {
      EXPECT_LE(minimum.get<double>(), full.at("margins").at(i).get<double>() * (1 + 1e-5)) << i;
    }
  }
  EXPECT_TRUE(contains(margins.output, "minimum over the attack ensemble")) << margins.output;
  for (const auto& [arguments, fragment] : std::vector<std::pair<std::string, std::string>>{
           {"margins --subspaces dct:4 --model " + out_.file("run/model.pt") + data,
            "--subspaces: expected auto or dct:K:T"},
           {"margins --subspaces dct:20:1 --model " + out_.file("run/model.pt") + data, "exceeds the image side"},
           {"eval --transform blur --model " + out_.file("run/model.pt") + data, "--transform"}}) {
    const auto bad = run_cli(arguments);
    EXPECT_EQ(bad.exit_code, 2) << arguments;
    EXPECT_TRUE(contains(bad.output, fragment)) << arguments << "\n" << bad.output;
  }
}

TEST_F(CliOnSyntheticData, SpectralWritesItsRecordChartsAndGrid) {
  testing::TemporaryDirectory images;
  testing::write_idx_dataset(images.path(), testing::linear_rule_dataset(240, {1, 12, 12}, 3, 11),
                             testing::linear_rule_dataset(60, {1, 12, 12}, 3, 12));
  const std::string data = " --data idx:" + images.path();
  ASSERT_EQ(run_cli("train --arch mlp --epochs 2 --out " + out_.file("run") + data).exit_code, 0);
  const std::string model = " --model " + out_.file("run/model.pt");
  const auto spectral =
      run_cli("spectral --samples 20 --bands 4 --per-class --snr gaussian:0.1,pgd-linf:0.03 --pgd-steps 3 --seed 5" +
              model + " --out " + out_.file("spectral") + data);
  ASSERT_EQ(spectral.exit_code, 0) << spectral.output;
  EXPECT_TRUE(contains(spectral.output, "spectral robustness score")) << spectral.output;
  const auto record = read_json_file(out_.file("spectral/spectral.json"));
  EXPECT_EQ(record.at("options").at("bands"), 4);
  EXPECT_EQ(record.at("options").at("snr").at("perturbations").size(), 2u);
  EXPECT_EQ(record.at("seed"), 5);
  EXPECT_EQ(record.at("coalition_values").size(), 16u);
  const std::vector<double> phi = record.at("phi"), psi = record.at("psi");
  double phi_sum = 0, psi_sum = 0;
  for (std::size_t i = 0; i < 4; ++i) phi_sum += phi[i], psi_sum += psi[i];
  EXPECT_NEAR(phi_sum, record.at("v_full").get<double>() - record.at("v_empty").get<double>(), 1e-9);  // efficiency
  EXPECT_NEAR(psi_sum, 1.0, 1e-9);
  std::int64_t class_images = 0;
  for (const auto& c : record.at("per_class")) class_images += c.at("images").get<std::int64_t>();
  EXPECT_EQ(class_images, 20);
  ASSERT_EQ(record.at("snr").size(), 2u);
  EXPECT_EQ(record.at("snr").at(1).at("perturbation"), "pgd-linf:0.03");
  EXPECT_EQ(record.at("snr").at(0).at("snr_db").size(), 4u);
  for (const char* file : {"psi.svg", "snr.svg", "coalitions.png"}) {
    EXPECT_TRUE(std::filesystem::exists(out_.file("spectral/" + std::string(file)))) << file;
  }
  // the same run gives the same numbers (seeded noise, PGD start and donor order)
  ASSERT_EQ(
      run_cli("spectral --samples 20 --bands 4 --per-class --snr gaussian:0.1,pgd-linf:0.03 --pgd-steps 3 --seed 5" +
              model + " --out " + out_.file("again") + data)
          .exit_code,
      0);
  const auto again = read_json_file(out_.file("again/spectral.json"));
  EXPECT_EQ(again.at("phi"), record.at("phi"));
  EXPECT_EQ(again.at("snr"), record.at("snr"));
  for (const auto& [arguments, fragment] : std::vector<std::pair<std::string, std::string>>{
           {"spectral --bands 1" + model + data, "--bands"},
           {"spectral --fill blur" + model + data, "--fill"},
           {"spectral --snr gaussian:-1" + model + data, "positive number, got 'gaussian:-1'"},
           {"spectral --snr pgd-l3:1" + model + data, "got 'pgd-l3:1'"}}) {
    const auto bad = run_cli(arguments);
    EXPECT_EQ(bad.exit_code, 2) << arguments;
    EXPECT_TRUE(contains(bad.output, fragment)) << arguments << "\n" << bad.output;
  }
}

// Acceptance checks on real data: LeNet, 3 epochs of Fashion-MNIST, ≥ 89% test accuracy;
// its median margin grows ≥ 3× from the lowest to the highest DCT subspace.
TEST(CliFashionMnist, LeNetReaches89PercentInThreeEpochs) {
  testing::TemporaryDirectory out;
  const auto result = run_cli("train --arch lenet --epochs 3 --out " + out.path());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto log = read_json_file(out.file("train_log.json"));
  const double accuracy = log.at("result").at("epochs").back().at("test_accuracy");
  EXPECT_GE(accuracy, 0.89) << result.output;
  // Hold me tight!: on natural images the margin grows from low to high DCT frequencies.
  const auto margins =
      run_cli("margins --samples 40 --no-full-space --model " + out.file("model.pt") + " --out " + out.file("m"));
  ASSERT_EQ(margins.exit_code, 0) << margins.output;
  const auto subspaces = read_json_file(out.file("m/margins.json")).at("per_subspace");
  const double lowest = subspaces.front().at("quartiles_of_flipped").at("median");
  const double highest = subspaces.back().at("quartiles_of_flipped").at("median");
  EXPECT_GE(highest, 3 * lowest) << margins.output;
  // The attack ensemble's minimum agrees with robust accuracy on a trained LeNet.
  const auto attack = run_cli("attack --samples 300 --model " + out.file("model.pt") + " --out " + out.file("a"));
  ASSERT_EQ(attack.exit_code, 0) << attack.output;
  testing::expect_minimum_consistent_with_robust_accuracy(read_json_file(out.file("a/attack.json")));
}

// I-ASIDE: adversarial training moves the predictive power to low frequencies.
// One epoch on 20,000 images each (PGD with 3 steps) keeps this under a minute;
// scripts/spectral_importance_experiments.sh runs the full-size comparison.
TEST(CliFashionMnist, PgdTrainingRaisesTheSpectralScoreAndTheLowBandShare) {
  testing::TemporaryDirectory out;
  const std::string recipe = "train --arch lenet --epochs 1 --samples 20000 --out ";
  ASSERT_EQ(run_cli(recipe + out.file("standard")).exit_code, 0);
  ASSERT_EQ(run_cli(recipe + out.file("pgd") + " --objective pgd-l2 --eps 2 --pgd-steps 3").exit_code, 0);
  std::map<std::string, nlohmann::json> records;
  for (const std::string name : {"standard", "pgd"}) {
    const auto spectral =
        run_cli("spectral --snr none --model " + out.file(name + "/model.pt") + " --out " + out.file(name + "/s"));
    ASSERT_EQ(spectral.exit_code, 0) << spectral.output;
    records[name] = read_json_file(out.file(name + "/s/spectral.json"));
  }
  const auto low_share = [](const nlohmann::json& r) {
    return r.at("psi").at(0).get<double>() + r.at("psi").at(1).get<double>();
  };
  EXPECT_GT(records["pgd"].at("score").get<double>(), records["standard"].at("score").get<double>())
      << records["pgd"].at("psi") << " vs " << records["standard"].at("psi");
  EXPECT_GT(low_share(records["pgd"]), low_share(records["standard"]));
}

// UPI on a robustlens-trained Fashion-MNIST model (an MLP: LeNet's max-pooling
// ties on the flat background make its saliency maps jump under any noise; see
// docs/upi.md): both universal methods beat universal random noise by 2×, the
// per-image attack is at least as strong, and dissimilarity grows with eps.
TEST(CliFashionMnist, UniversalPerturbationsMoveSaliencyMapsFarMoreThanNoise) {
  testing::TemporaryDirectory out;
  ASSERT_EQ(run_cli("train --arch mlp --epochs 1 --samples 20000 --out " + out.path()).exit_code, 0);
  const auto upi =
      run_cli("upi --samples 200 --attack-samples 300 --eps 0.25,1 --summary-eps 1 --batch-size 64 --model " +
              out.file("model.pt") + " --out " + out.file("upi"));
  ASSERT_EQ(upi.exit_code, 0) << upi.output;
  const nlohmann::json record = read_json_file(out.file("upi/upi.json"));
  const auto per_eps = record.at("per_eps");
  ASSERT_EQ(per_eps.size(), 2u);  // the summary radius given is already on the list
  EXPECT_EQ(record.at("summary").at("eps"), 1.0);
  EXPECT_EQ(record.at("summary").at("metrics"), per_eps.at(1).at("metrics"));
  EXPECT_TRUE(contains(upi.output, "summary at eps 1 (given)")) << upi.output;
  // The floor (random noise of length 0.001) lies below random noise of length 0.25, which lies below 1.
  const double floor = record.at("floor").at("metrics").at("universal-random").at("dissimilarity").get<double>();
  EXPECT_LT(floor, per_eps.at(0).at("metrics").at("universal-random").at("dissimilarity").get<double>());
  EXPECT_EQ(per_eps.at(0).at("metrics").at("per-image-random").at("draws"), 5);
  const auto dissimilarity = [&](std::size_t e, const std::string& name) {
    return per_eps.at(e).at("metrics").at(name).at("dissimilarity").get<double>();
  };
  for (std::size_t e = 0; e < 2; ++e) {
    const double random = dissimilarity(e, "universal-random");
    EXPECT_GE(dissimilarity(e, "upi-grad"), 2 * random) << upi.output;
    EXPECT_GE(dissimilarity(e, "upi-pca"), 2 * random) << upi.output;
    EXPECT_GE(dissimilarity(e, "per-image-attack"), std::max(dissimilarity(e, "upi-grad"), dissimilarity(e, "upi-pca")))
        << upi.output;
  }
  for (const std::string name : {"upi-grad", "upi-pca", "universal-random", "per-image-attack"}) {
    EXPECT_GT(dissimilarity(1, name), dissimilarity(0, name)) << name;
  }
  for (const char* file : {"perturbations.pt", "perturbations.png", "dissimilarity.svg", "maps.png"}) {
    EXPECT_TRUE(std::filesystem::exists(out.file("upi/" + std::string(file)))) << file;
  }
  for (const auto& [arguments, fragment] : std::vector<std::pair<std::string, std::string>>{
           {"upi --eps -1 --model " + out.file("model.pt"), "--eps"},
           {"upi --summary-eps -0.5 --model " + out.file("model.pt"), "--summary-eps must be >= 0"},
           {"upi --random-draws 0 --model " + out.file("model.pt"), "error: --random-draws must be >= 1, got 0"},
           {"upi --attack-split test --samples 5000 --attack-samples 6000 --model " + out.file("model.pt"), "overlap"},
           {"upi --surrogate-beta 5 --model " + out.file("nope.pt"), "nope.pt"}}) {
    const auto bad = run_cli(arguments);
    EXPECT_EQ(bad.exit_code, 2) << arguments;
    EXPECT_TRUE(contains(bad.output, fragment)) << arguments << "\n" << bad.output;
  }
}

}  // namespace
}  // namespace robustlens
