#include "robustlens/data/image_folder.h"

#include "robustlens/core/error.h"
#include "robustlens/core/limits.h"
#include "robustlens/report/images.h"

#include <stb_image.h>
#include <stb_image_resize.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
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

/// The bytes of an image file, at most kMaxImageFileBytes.
std::string read_image_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  RL_CHECK(in.good(), "image '", path.string(), "' cannot be opened");
  std::string bytes;
  bytes.resize(kMaxImageFileBytes + 1);
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  bytes.resize(static_cast<std::size_t>(in.gcount()));
  RL_CHECK(!in.bad(), "image '", path.string(), "' cannot be read");
  RL_CHECK(bytes.size() <= kMaxImageFileBytes, "image '", path.string(), "' is larger than ", kMaxImageFileBytes, " bytes");
  return bytes;
}

/// Debian 12's stb_image (2.27) writes past its Huffman table when a JPEG's DHT segment declares more than
/// 256 codes (found by fuzz/fuzz_image); such a file is refused before stb reads it. Walks the marker segments
/// as stb does: length-prefixed segments, bytes between them skipped up to the next 0xFF, and after each scan
/// header the entropy-coded data up to the next marker.
void check_jpeg_huffman_tables(const std::string& bytes, std::size_t after_start_marker, const std::string& path) {
  // Past the end stb reads zeros, and so does this walk.
  const auto byte = [&](std::size_t i) { return i < bytes.size() ? static_cast<std::uint8_t>(bytes[i]) : std::uint8_t{0}; };
  std::size_t at = after_start_marker;
  while (at + 4 <= bytes.size()) {
    if (byte(at) != 0xFF) {  // between segments stb skips to the next 0xFF, and so do we
      ++at;
      continue;
    }
    const std::uint8_t marker = byte(at + 1);
    if (marker == 0xFF) {  // fill byte
      ++at;
      continue;
    }
    if (marker == 0xD9) return;                                 // end of image
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // no length
      at += 2;
      continue;
    }
    const std::size_t end = at + 2 + (std::size_t{byte(at + 2)} << 8 | byte(at + 3));
    if (marker == 0xC4) {
      for (std::size_t table = at + 4; table < std::min(end, bytes.size());) {
        std::size_t codes = 0;
        for (std::size_t i = 1; i <= 16; ++i) codes += byte(table + i);
        RL_CHECK(codes <= 256, "image '", path, "' is not a valid JPEG file: a Huffman table declares ",
                 codes, " codes (at most 256)");
        table += 17 + codes;
      }
    }
    at = end;
    if (marker == 0xDA) {  // entropy-coded data: up to the next marker that is not a stuffed 0 or a restart
      while (at + 1 < bytes.size() &&
             !(byte(at) == 0xFF && byte(at + 1) != 0x00 && !(byte(at + 1) >= 0xD0 && byte(at + 1) <= 0xD7))) {
        ++at;
      }
    }
  }
}

}  // namespace

std::pair<int, int> image_file_size(const std::string& bytes, const std::string& path) {
  // stb takes a file for JPEG when 0xFF bytes and then the start-of-image marker 0xD8 open it.
  const std::size_t first = bytes.find_first_not_of('\xFF');
  if (first != 0 && first != std::string::npos && static_cast<std::uint8_t>(bytes[first]) == 0xD8) {
    check_jpeg_huffman_tables(bytes, first + 1, path);
  }
  int w = 0, h = 0, found_channels = 0;
  RL_CHECK(bytes.size() <= kMaxImageFileBytes &&
               stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size()), &w,
                                     &h, &found_channels) == 1,
           "image '", path, "' cannot be decoded (", stbi_failure_reason(), "); expected a PNG or JPEG file");
  return {w, h};
}

at::Tensor decode_image(const std::string& bytes, const std::string& path, std::int64_t channels, std::int64_t height,
                        std::int64_t width) {
  auto [w, h] = image_file_size(bytes, path);
  // stb_image_resize divides by the size: an empty image made it convert NaN to int (found by fuzz/fuzz_image).
  RL_CHECK(w >= 1 && h >= 1, "image '", path, "' has ", w, "×", h, " pixels: nothing to read");
  RL_CHECK(std::int64_t{w} * h <= kMaxDecodedPixels, "image '", path, "' has ", w, "×", h, " pixels, more than ",
           kMaxDecodedPixels, ": resize it first");
  int found_channels = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size()), &w, &h,
                            &found_channels, static_cast<int>(channels)),
      stbi_image_free);
  RL_CHECK(pixels != nullptr, "image '", path, "' cannot be decoded (", stbi_failure_reason(),
           "); expected a PNG or JPEG file");
  RL_CHECK(w >= 1 && h >= 1, "image '", path, "' decodes to ", w, "×", h, " pixels: nothing to read");
  at::Tensor image = at::empty({height, width, channels}, at::kByte);
  if (h == height && w == width) {
    std::copy(pixels.get(), pixels.get() + image.numel(), image.data_ptr<std::uint8_t>());
  } else {
    RL_CHECK(stbir_resize_uint8(pixels.get(), w, h, 0, image.data_ptr<std::uint8_t>(), static_cast<int>(width),
                                static_cast<int>(height), 0, static_cast<int>(channels)) == 1,
             "cannot resize image '", path, "'");
  }
  return image.permute({2, 0, 1}).to(at::kFloat).div_(255.0f);
}


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
      images.push_back(decode_image(read_image_file(file), file.string(), image_shape[0], image_shape[1], image_shape[2]));
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
