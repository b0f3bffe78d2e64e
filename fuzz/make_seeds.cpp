// Writes the seed corpora of the fuzz targets into FOLDER/TARGET/: small valid inputs made with robustlens's
// own writers (as the tests make them) and the records its files carry. Usage: make_seeds FOLDER
#include "robustlens/data/cifar10.h"
#include "robustlens/data/idx.h"
#include "robustlens/data/image_folder.h"
#include "robustlens/generative/denoiser.h"
#include "robustlens/generative/generative_file.h"
#include "robustlens/generative/vae.h"
#include "robustlens/models/architectures.h"

#include <ATen/ATen.h>
#include <stb_image_write.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

namespace fs = std::filesystem;

void write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace robustlens;
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds FOLDER\n");
    return 2;
  }
  const fs::path out(argv[1]);
  at::manual_seed(0);
  const at::Tensor images = at::rand({3, 1, 6, 5});
  const at::Tensor labels = at::tensor({0, 2, 1}, at::kLong);
  for (const std::string target : {"idx", "cifar10", "image"}) fs::create_directories(out / target);
  write_idx_images((out / "idx" / "images").string(), images, false);
  write_idx_images((out / "idx" / "images.gz").string(), images, true);
  write_idx_labels((out / "idx" / "labels").string(), labels, false);
  write_idx_labels((out / "idx" / "labels.gz").string(), labels, true);
  write_cifar10_batch((out / "cifar10" / "batch.bin").string(), at::rand({2, 3, 32, 32}),
                      at::tensor({4, 9}, at::kLong));

  write_png((out / "image" / "grey.png").string(), at::rand({1, 6, 5}));
  write_png((out / "image" / "rgb.png").string(), at::rand({3, 4, 7}));
  std::vector<unsigned char> pixels(6 * 5 * 3);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<unsigned char>(i * 37);
  stbi_write_jpg((out / "image" / "rgb.jpg").c_str(), 6, 5, 3, pixels.data(), 90);
  stbi_write_jpg((out / "image" / "grey.jpg").c_str(), 6, 5, 1, pixels.data(), 50);
  stbi_write_bmp((out / "image" / "rgb.bmp").c_str(), 6, 5, 3, pixels.data());

  const nlohmann::json architecture =
      ArchitectureSpec().set_name("lenet").set_input_shape({1, 28, 28}).set_num_classes(3).resolved().to_json();
  write_text(out / "model_metadata" / "lenet.json", nlohmann::json{{"format", "robustlens-model"},
                                                                   {"format_version", 1},
                                                                   {"architecture", architecture},
                                                                   {"class_names", {"a", "b", "c"}},
                                                                   {"training", {{"epochs", 3}}}}
                                                        .dump());
  VaeSpec vae;
  vae.input_shape = {1, 28, 28};
  DenoiserSpec denoiser;
  denoiser.input_shape = {1, 28, 28};
  denoiser.num_classes = 10;
  write_text(out / "generative_metadata" / "vae.json",
             nlohmann::json{{"format", kVaeFormat}, {"format_version", 1}, {"spec", vae.to_json()}}.dump());
  write_text(out / "generative_metadata" / "denoiser.json",
             nlohmann::json{{"format", kDenoiserFormat}, {"format_version", 1}, {"spec", denoiser.to_json()}}.dump());
  const nlohmann::json epoch = {{"epoch", 1},           {"learning_rate", 0.1},
                                {"train_loss", 0.5},    {"train_accuracy", 0.8},
                                {"test_accuracy", 0.7}, {"seconds", 2.5}};
  write_text(out / "checkpoint_state" / "state.json",
             nlohmann::json{{"recipe", {{"epochs", 3}, {"lr", 0.1}}},
                            {"inputs", {{"architecture", architecture}, {"data", {{"size", 3}}}}},
                            {"log", {epoch}}}
                 .dump());
  write_text(out / "audit_step" / "marker.json", nlohmann::json{{"arguments", {"eval", "--model", "m.pt"}},
                                                                {"inputs", {{"m.pt", {{"size", 10}, {"hash", "ab"}}}}},
                                                                {"data", {{"test", "1"}, {"train", "2"}}},
                                                                {"build", "3"},
                                                                {"record_format", 2},
                                                                {"seconds", 1.5}}
                                                     .dump());
  // Option specs: the first byte picks the parser (0 --data, 1 --indices, 2 --subspaces, 3 --transform, 4
  // --image-shape).
  const std::vector<std::pair<char, std::string>> options = {{0, "fashion-mnist"},
                                                             {0, "distractor:idx:/tmp/x"},
                                                             {0, "folder:/tmp/images"},
                                                             {1, "3,17,42"},
                                                             {1, "0 1 2"},
                                                             {2, "auto"},
                                                             {2, "dct:8:2"},
                                                             {3, "dct-flip"},
                                                             {3, "low-pass:4"},
                                                             {4, "3,32,32"},
                                                             {4, "1,28,28"}};
  for (std::size_t i = 0; i < options.size(); ++i) {
    write_text(out / "option_specs" / ("seed-" + std::to_string(i)),
               std::string(1, options[i].first) + options[i].second);
  }
  std::printf("seed corpora in %s\n", out.c_str());
  return 0;
}
