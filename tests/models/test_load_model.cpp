#include "robustlens/models/load_model.h"

#include "robustlens/core/error.h"
#include "robustlens/core/files.h"
#include "robustlens/core/json_fields.h"
#include "robustlens/generative/generative_file.h"
#include "robustlens/models/builtin_model.h"
#include "test_support.h"

#include <gtest/gtest.h>
#include <torch/serialize/archive.h>
#include <torch/utils.h>

#include <limits>

namespace robustlens {
namespace {

using testing::expect_error;

using testing::TemporaryDirectory;

TEST(BuiltinModelFile, RoundTripKeepsLogitsAndMetadata) {
  TemporaryDirectory dir;
  torch::manual_seed(1);
  BuiltinModel model(ArchitectureSpec().set_name("lenet"), {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"},
                     {{"epochs", 3}});
  model.save(dir.file("m.pt"));
  auto loaded = load_model(dir.file("m.pt"), at::kCPU);
  EXPECT_EQ(loaded->info().kind, "builtin");
  EXPECT_EQ(loaded->info().class_names, model.info().class_names);
  EXPECT_EQ(loaded->info().input_shape, (std::vector<std::int64_t>{1, 28, 28}));
  EXPECT_EQ(loaded->info().training["epochs"], 3);
  const at::Tensor x = at::rand({4, 1, 28, 28});
  model.set_training(false);
  EXPECT_TRUE(at::equal(loaded->forward(x), model.forward(x)));
  EXPECT_TRUE(at::equal(loaded->latent(x), model.latent(x)));
}

TEST(LoadModel, RejectsMissingWrongMagicAndTruncatedFiles) {
  TemporaryDirectory dir;
  expect_error([&] { load_model(dir.file("absent.pt"), at::kCPU); }, "does not exist");
  testing::write_bytes(dir.file("text.pt"), "this is not a model");
  expect_error([&] { load_model(dir.file("text.pt"), at::kCPU); }, "expected a zip archive");
  BuiltinModel(ArchitectureSpec().set_name("mlp"), {}).save(dir.file("m.pt"));
  const std::string bytes = testing::read_bytes(dir.file("m.pt"));
  testing::write_bytes(dir.file("half.pt"), bytes.substr(0, bytes.size() / 2));
  expect_error([&] { load_model(dir.file("half.pt"), at::kCPU); }, "cannot be read");
}

TEST(TorchScriptModel, LinearModelGivesClosedFormLogits) {
  TemporaryDirectory dir;
  const at::Tensor weight = at::randn({3, 16}), bias = at::randn({3});
  testing::save_linear_torchscript(dir.file("linear.pt"), weight, bias);
  // The file records no input shape: the class count is learnt once a shape is bound at load.
  EXPECT_EQ(load_model(dir.file("linear.pt"), at::kCPU)->info().num_classes, 0);
  auto model = load_model(dir.file("linear.pt"), at::kCPU, {1, 4, 4});
  EXPECT_EQ(model->info().kind, "torchscript");
  EXPECT_FALSE(model->has_latent());
  EXPECT_EQ(model->info().input_shape, (std::vector<std::int64_t>{1, 4, 4}));
  EXPECT_EQ(model->info().num_classes, 3);
  const at::Tensor x = at::rand({5, 1, 4, 4});
  EXPECT_TRUE(at::allclose(model->forward(x), x.flatten(1).matmul(weight.t()) + bias, 1e-5, 1e-6));
  expect_error([&] { model->latent(x); }, "no method named 'latent'");
  expect_error([&] { model->forward(at::rand({5, 1, 5, 5})); }, "takes images of shape");
}

TEST(TorchScriptModel, ExposesLatentMethod) {
  TemporaryDirectory dir;
  testing::save_linear_torchscript(dir.file("linear.pt"), at::randn({2, 4}), at::zeros({2}), true);
  auto model = load_model(dir.file("linear.pt"), at::kCPU);
  ASSERT_TRUE(model->has_latent());
  const at::Tensor x = at::rand({3, 1, 2, 2});
  EXPECT_TRUE(at::equal(model->latent(x), x.flatten(1)));
}

TEST(TorchScriptModel, RejectsModelsThatDoNotReturnLogits) {
  TemporaryDirectory dir;
  testing::save_torchscript(dir.file("vector.pt"), "return x.flatten(1).sum(1)");
  auto model = load_model(dir.file("vector.pt"), at::kCPU);
  expect_error([&] { model->forward(at::rand({2, 1, 3, 3})); }, "must return N×K logits");
  testing::save_torchscript(dir.file("wrong_rows.pt"), "return x.flatten(1)[0:1]");
  expect_error(
      [&] {
        load_model(dir.file("wrong_rows.pt"), at::kCPU)->forward(at::rand({2, 1, 3, 3}));
      },
      "for a batch of N=2");
}

TEST(LoadModel, RefusesNonFiniteParametersAndLogits) {
  TemporaryDirectory dir;
  BuiltinModel model(ArchitectureSpec().set_name("mlp").set_input_shape({1, 6, 6}).set_num_classes(3), {});
  {
    at::NoGradGuard no_grad;
    model.parameters().at(0).view(-1)[5] = std::numeric_limits<float>::quiet_NaN();
  }
  model.save(dir.file("nan.pt"));
  expect_error([&] { load_model(dir.file("nan.pt"), at::kCPU); }, "holds 1 NaN or infinite values in parameter 0");
  // log of a negative number: NaN logits from finite parameters.
  testing::save_torchscript(dir.file("log.pt"), "return torch.log(x.flatten(1) - 2.0)");
  auto scripted = load_model(dir.file("log.pt"), at::kCPU);
  expect_error(
      [&] {
        batched_logits(*scripted, at::rand({5, 1, 3, 3}), 2);
      },
      "returned 45 NaN or infinite logits on 5 images");
}

TEST(LoadModel, ADamagedTorchScriptProgramIsAnErrorNamingTheFile) {
  // Found by flipping random bits of model files: a flip in the TorchScript code stored in the archive made
  // LibTorch's type parser throw torch::jit::ErrorReport, which is no c10::Error, and robustlens reported an
  // "internal error: " with an empty message and exit status 1.
  TemporaryDirectory dir;
  testing::save_linear_torchscript(dir.file("linear.pt"), at::randn({2, 4}), at::zeros({2}));
  ASSERT_NO_THROW(load_model(dir.file("linear.pt"), at::kCPU));
  // The archive again with the forward's type annotation misspelt "Tensoq" (its code records are compressed,
  // so they are rewritten rather than edited in place).
  const int misspelt = testing::rewrite_archive(dir.file("linear.pt"), dir.file("damaged.pt"),
                                                [](const std::string& name, std::string& record) {
                                                  const std::size_t at = record.find("x: Tensor");
                                                  if (name.rfind("code/", 0) == 0 && at != std::string::npos)
                                                    record[at + std::string("x: Tenso").size()] = 'q';
                                                });
  ASSERT_GE(misspelt, 1);
  expect_error([&] { load_model(dir.file("damaged.pt"), at::kCPU); },
               "model file '" + dir.file("damaged.pt") +
                   "' cannot be read (truncated or not a TorchScript/robustlens "
                   "file): Unknown type name 'Tensoq'");
}

TEST(LoadModel, ATorchScriptModelWhoseWeightsWereDamagedIsRefusedByTheArchivesCrc) {
  // A TorchScript file carries no checksum of ours, and LibTorch does not check the CRC-32 its zip archive
  // stores: a damaged weight loaded and gave other logits. The CRC of every record is now checked.
  TemporaryDirectory dir;
  const at::Tensor weight = at::randn({2, 4});
  testing::save_linear_torchscript(dir.file("linear.pt"), weight, at::zeros({2}));
  ASSERT_NO_THROW(load_model(dir.file("linear.pt"), at::kCPU));
  std::string bytes = testing::read_bytes(dir.file("linear.pt"));
  const std::size_t at = bytes.find(std::string(static_cast<const char*>(weight.data_ptr()), 16));
  ASSERT_NE(at, std::string::npos);  // tensors are stored uncompressed
  bytes[at + 5] = static_cast<char>(bytes[at + 5] ^ 0x10);
  testing::write_bytes(dir.file("damaged.pt"), bytes);
  expect_error(
      [&] { load_model(dir.file("damaged.pt"), at::kCPU); },
      "model file '" + dir.file("damaged.pt") + "' is damaged (record 'data/0' does not match its CRC-32: stored 0x");
}

TEST(LoadModel, RefusesAFileWhoseParameterBytesWereChanged) {
  TemporaryDirectory dir;
  torch::manual_seed(3);
  BuiltinModel model(ArchitectureSpec().set_name("mlp").set_input_shape({1, 6, 6}).set_num_classes(3), {});
  model.save(dir.file("m.pt"));
  ASSERT_NO_THROW(load_model(dir.file("m.pt"), at::kCPU));
  // 64 bytes of the first weight matrix inverted, in an archive whose CRC-32s were written for the changed
  // record (as a tool that edits weights writes it): past the CRC check, the parameter checksum catches it.
  const at::Tensor weight = model.parameters().at(0).detach().contiguous();
  const std::string weight_bytes(static_cast<const char*>(weight.data_ptr()), 64);
  const auto invert = [&](const std::string&, std::string& record) {
    const std::size_t at = record.find(weight_bytes);
    if (at != std::string::npos)
      for (std::size_t i = at; i < at + 64; ++i) record[i] = static_cast<char>(~record[i]);
  };
  ASSERT_EQ(testing::rewrite_archive(dir.file("m.pt"), dir.file("flipped.pt"), invert), 1);
  expect_error([&] { load_model(dir.file("flipped.pt"), at::kCPU); }, "do not match the checksum written with them");
}

TEST(LoadModel, MalformedMetadataNamesTheFileAndTheKey) {
  TemporaryDirectory dir;
  const auto save_with = [&](const std::string& name, const nlohmann::json& metadata) {
    torch::serialize::OutputArchive archive;
    archive.write(kBuiltinMetadataKey, c10::IValue(metadata.dump()));
    archive.save_to(dir.file(name));
    return dir.file(name);
  };
  nlohmann::json metadata = {{"format", "robustlens-model"},
                             {"format_version", 1},
                             {"architecture", ArchitectureSpec().set_name("mlp").to_json()},
                             {"class_names", {"a", "b"}}};
  metadata["architecture"]["width"] = "wide";
  const std::string wrong_type = save_with("width.pt", metadata);
  expect_error(
      [&] { load_model(wrong_type, at::kCPU); },
      "model file '" + wrong_type + "': metadata.architecture: key 'width' holds a value of the wrong type (string)");
  metadata["architecture"].erase("width");
  const std::string missing = save_with("missing.pt", metadata);
  expect_error([&] { load_model(missing, at::kCPU); }, "metadata.architecture: key 'width' is missing");
  metadata["class_names"] = 3;
  metadata["architecture"] = ArchitectureSpec().set_name("mlp").to_json();
  const std::string names = save_with("names.pt", metadata);
  expect_error([&] { load_model(names, at::kCPU); },
               "metadata: key 'class_names' holds a value of the wrong type (number)");
}

TEST(ModelMetadata, TheParserRefusesWhatTheLoaderCouldNotUse) {
  const nlohmann::json valid = {
      {"format", "robustlens-model"},
      {"format_version", 1},
      {"architecture", ArchitectureSpec().set_name("mlp").set_num_classes(2).resolved().to_json()},
      {"class_names", {"a", "b"}}};
  EXPECT_EQ(parse_builtin_metadata(valid.dump(), "m.pt").class_names, (std::vector<std::string>{"a", "b"}));
  expect_error([] { parse_builtin_metadata("{\"format\": ", "m.pt"); }, "'m.pt': metadata is not valid JSON");
  expect_error([] { parse_builtin_metadata("[1, 2]", "m.pt"); }, "model file 'm.pt': metadata is not a JSON object");
  nlohmann::json three_names = valid;
  three_names["class_names"] = {"a", "b", "c"};
  expect_error([&] { parse_builtin_metadata(three_names.dump(), "m.pt"); }, "3 class names for 2 classes");
  nlohmann::json wide = valid;
  wide["architecture"]["width"] = 1 << 20;
  expect_error([&] { parse_builtin_metadata(wide.dump(), "m.pt"); }, "width must lie in [0, 16384]");
  nlohmann::json flat = valid;
  flat["architecture"]["softplus_beta"] = 0.0;
  expect_error([&] { parse_builtin_metadata(flat.dump(), "m.pt"); }, "softplus beta must be > 0, got 0");
}

TEST(ModelMetadata, TheFuzzersFindingsAreErrorsNamingTheKey) {
  const std::string folder = std::string(ROBUSTLENS_FUZZ_REGRESSIONS_DIR);
  expect_error(
      [&] {
        parse_builtin_metadata(read_text_file(folder + "/model_metadata/float-for-an-integer-field.json"), "m.pt");
      },
      "metadata.architecture: key 'input_shape' holds a value of the wrong type (array)");
  expect_error(
      [&] {
        parse_generative_metadata(read_text_file(folder + "/generative_metadata/float-for-an-integer-field.json"),
                                  kVaeFormat, "VAE", "v.pt");
      },
      "VAE file 'v.pt': metadata: key 'format_version' holds a value of the wrong type (number)");
}

}  // namespace
}  // namespace robustlens
