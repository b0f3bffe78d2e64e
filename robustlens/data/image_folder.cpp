#include "robustlens/data/image_folder.h"

#include "robustlens/core/error.h"
#include "robustlens/report/images.h"

#include <stb_image.h>
#include <stb_image_resize.h>

#include <algorithm>
#include <filesystem>
#include <memory>

namespace robustlens {
namespace fs = std::filesystem;
namespace {

bool is_image_file(const fs::path& path) {
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(), ::tolower);
  return extension == ".png" || extension == ".jpg" || extension == ".jpeg";
}

std::vector<fs::path> sorted_entries(const fs::path& directory, bool directories) {
  std::vector<fs::path> entries;
  for (const auto& entry : fs::directory_iterator(directory)) {
    // Hidden folders (.ipynb_checkpoints, .git) are not classes.
    const bool class_dir = entry.is_directory() && entry.path().filename().string().front() != '.';
    if (directories ? class_dir : (entry.is_regular_file() && is_image_file(entry.path()))) {
      entries.push_back(entry.path());
    }
  }
  std::sort(entries.begin(), entries.end());
  return entries;
}

/// One image file → float32 C×H×W in [0,1] of the declared shape.
at::Tensor load_image(const fs::path& path, std::int64_t channels, std::int64_t height, std::int64_t width) {
  int w = 0, h = 0, found_channels = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load(path.c_str(), &w, &h, &found_channels, static_cast<int>(channels)), stbi_image_free);
  RL_CHECK(pixels != nullptr, "image '", path.string(), "' cannot be decoded (", stbi_failure_reason(),
           "); expected a PNG or JPEG file");
  at::Tensor image = at::empty({height, width, channels}, at::kByte);
  if (h == height && w == width) {
    std::copy(pixels.get(), pixels.get() + image.numel(), image.data_ptr<std::uint8_t>());
  } else {
    RL_CHECK(stbir_resize_uint8(pixels.get(), w, h, 0, image.data_ptr<std::uint8_t>(), static_cast<int>(width),
                                static_cast<int>(height), 0, static_cast<int>(channels)) == 1,
             "cannot resize image '", path.string(), "'");
  }
  return image.permute({2, 0, 1}).to(at::kFloat).div_(255.0f);
}

}  // namespace

Dataset read_image_folder(const std::string& directory, const std::vector<std::int64_t>& image_shape) {
  RL_CHECK(fs::is_directory(directory), "image folder '", directory, "' does not exist");
  RL_CHECK(image_shape.size() == 3 && (image_shape[0] == 1 || image_shape[0] == 3) && image_shape[1] > 0 &&
               image_shape[2] > 0,
           "image folders need --image-shape C,H,W with C = 1 or 3, got ", image_shape.size(), " numbers");
  Dataset dataset;
  dataset.name = directory;
  std::vector<at::Tensor> images;
  std::vector<std::int64_t> labels;
  // Every sub-folder is a class, with or without images: skipping an empty one (a class absent from
  // this split) would give every later class the label of the one before it.
  for (const fs::path& class_dir : sorted_entries(directory, true)) {
    const auto label = static_cast<std::int64_t>(dataset.class_names.size());
    dataset.class_names.push_back(class_dir.filename().string());
    for (const fs::path& file : sorted_entries(class_dir, false)) {
      images.push_back(load_image(file, image_shape[0], image_shape[1], image_shape[2]));
      labels.push_back(label);
    }
  }
  RL_CHECK(dataset.class_names.size() >= 2 && !images.empty(), "image folder '", directory,
           "' must hold at least two sub-folders (one per class) and PNG or JPEG files in them; found ",
           dataset.class_names.size(), " sub-folders and ", images.size(), " images");
  dataset.images = at::stack(images);
  dataset.labels = at::tensor(labels, at::kLong);
  return dataset;
}

void write_image_folder(const std::string& directory, const Dataset& dataset) {
  for (std::int64_t i = 0; i < dataset.size(); ++i) {
    const std::string& class_name = dataset.class_names.at(dataset.labels[i].item<std::int64_t>());
    write_png((fs::path(directory) / class_name / (std::to_string(i) + ".png")).string(), dataset.images[i]);
  }
}

}  // namespace robustlens
