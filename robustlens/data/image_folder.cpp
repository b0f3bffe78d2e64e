#include "robustlens/data/image_folder.h"

#include "robustlens/core/error.h"
#include "robustlens/core/files.h"
#include "robustlens/core/limits.h"
#include "robustlens/data/byte_file.h"

#include <stb_image.h>
#include <stb_image_resize.h>
#include <stb_image_write.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <map>
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
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  RL_CHECK(in.good(), "image '", path.string(), "' cannot be opened");
  const std::streamoff size = in.tellg();
  RL_CHECK(size >= 0, "image '", path.string(), "' cannot be read");
  RL_CHECK(static_cast<std::uint64_t>(size) <= kMaxImageFileBytes, "image '", path.string(), "' is larger than ",
           kMaxImageFileBytes, " bytes");
  // Sized by the file (a buffer of the largest size allowed cost 256 MiB of page faults per image).
  std::string bytes(static_cast<std::size_t>(size), '\0');
  in.seekg(0);
  in.read(bytes.data(), size);
  RL_CHECK(in.gcount() == size, "image '", path.string(), "' cannot be read (it changed while being read)");
  return bytes;
}

/// Debian 12's stb_image (2.27) misreads two kinds of corrupt JPEG (both found by fuzz/fuzz_image), which are
/// therefore refused before stb reads them:
/// - a DHT segment declaring more than 256 codes: stb writes past its Huffman table;
/// - a scan that uses a Huffman or quantisation table no segment defined: stb reads its own uninitialised
///   memory (it mallocs the decoder without clearing it), so the pixels differ from run to run, and garbage
///   code lengths made its bit reader shift by 33 bits.
/// Walks the marker segments as stb does: length-prefixed segments, bytes between them skipped up to the next
/// 0xFF, and after each scan header the entropy-coded data up to the next marker.
void check_jpeg_tables(const std::string& bytes, std::size_t after_start_marker, const std::string& path) {
  // Past the end stb reads zeros, and so does this walk.
  const auto byte = [&](std::size_t i) {
    return i < bytes.size() ? static_cast<std::uint8_t>(bytes[i]) : std::uint8_t{0};
  };
  const auto refuse = [&](const auto&... what) {
    throw Error(detail::concat("image '", path, "' is not a valid JPEG file: ", what...));
  };
  // What the segments so far defined, as stb keeps it: tables by class and id (0 to 3), and the frame's
  // components by id with their quantisation table.
  std::array<bool, 4> dc_defined{}, ac_defined{}, quant_defined{};
  std::map<int, int> quant_table_of_component;
  bool progressive = false;
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
    if (marker == 0xD9) return;                                  // end of image
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // no length
      at += 2;
      continue;
    }
    const std::size_t end = at + 2 + (std::size_t{byte(at + 2)} << 8 | byte(at + 3));
    const std::size_t segment_end = std::min(end, bytes.size());
    if (marker == 0xC4) {  // Huffman tables: class (0 DC, 1 AC) and id, 16 code counts, the codes
      for (std::size_t table = at + 4; table < segment_end;) {
        std::size_t codes = 0;
        for (std::size_t i = 1; i <= 16; ++i) codes += byte(table + i);
        if (codes > 256) refuse("a Huffman table declares ", codes, " codes (at most 256)");
        const int table_class = byte(table) >> 4, id = byte(table) & 15;
        if (table_class <= 1 && id <= 3) (table_class == 0 ? dc_defined : ac_defined)[id] = true;
        table += 17 + codes;
      }
    } else if (marker == 0xDB) {  // quantisation tables: precision (0: 8 bits, 1: 16 bits) and id, 64 values
      for (std::size_t table = at + 4; table < segment_end;) {
        const int precision = byte(table) >> 4, id = byte(table) & 15;
        if (precision <= 1 && id <= 3) quant_defined[id] = true;
        table += 1 + (precision == 1 ? 128 : 64);
      }
    } else if (marker == 0xC0 || marker == 0xC1 || marker == 0xC2) {  // frame: components (id, sampling, table)
      progressive = marker == 0xC2;
      quant_table_of_component.clear();
      for (std::size_t i = 0, count = byte(at + 9); i < count; ++i) {
        quant_table_of_component[byte(at + 10 + 3 * i)] = byte(at + 12 + 3 * i);
      }
    } else if (marker == 0xDA) {  // scan: components (id, DC and AC table), then spectral selection
      const std::size_t count = byte(at + 4), selection = at + 5 + 2 * count;
      const bool first_dc_scan = byte(selection) == 0 && (byte(selection + 2) >> 4) == 0;
      // What stb decodes with: baseline scans both tables, progressive DC scans (first pass) the DC table,
      // progressive AC scans the AC table.
      const bool uses_dc = !progressive || first_dc_scan, uses_ac = !progressive || byte(selection) > 0;
      for (std::size_t i = 0; i < count; ++i) {
        const int component = byte(at + 5 + 2 * i), dc = byte(at + 6 + 2 * i) >> 4, ac = byte(at + 6 + 2 * i) & 15;
        if (uses_dc && dc <= 3 && !dc_defined[dc])
          refuse("a scan uses DC Huffman table ", dc, ", which no DHT segment before it defines");
        if (uses_ac && ac <= 3 && !ac_defined[ac])
          refuse("a scan uses AC Huffman table ", ac, ", which no DHT segment before it defines");
        const auto quant = quant_table_of_component.find(component);
        if (quant != quant_table_of_component.end() && quant->second <= 3 && !quant_defined[quant->second]) {
          refuse("a scan uses quantisation table ", quant->second, ", which no DQT segment before it defines");
        }
      }
    }
    at = end;
    if (marker == 0xDA) {
      // Entropy-coded data, up to the next marker. As stb's bit reader reads it, fill bytes (0xFF) may run
      // before a stuffed 0 or a restart marker, which belong to the data.
      while (at + 1 < bytes.size()) {
        std::size_t after = at + 1;
        if (byte(at) == 0xFF) {
          while (after < bytes.size() && byte(after) == 0xFF) ++after;
          if (byte(after) != 0x00 && !(byte(after) >= 0xD0 && byte(after) <= 0xD7)) {
            at = after - 1;  // the marker: its 0xFF, then its code
            break;
          }
          ++after;
        }
        at = after;
      }
    }
  }
}

/// Debian 12's stb_image reserves memory for a PNG's IDAT chunk by the length the chunk declares, before it
/// reads the chunk: a 145-byte file that declared 2 GB made it allocate 2 GB (found by fuzz/fuzz_image). A chunk
/// longer than what is left of the file is therefore refused first.
void check_png_chunks(const std::string& bytes, const std::string& path) {
  const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data());
  // Each chunk: length (4 bytes), type (4), data (length), CRC (4).
  for (std::size_t at = 8; at + 8 <= bytes.size();) {
    const std::uint64_t length = big_endian_u32(data + at), left = bytes.size() - at - 8;
    const std::string type = bytes.substr(at + 4, 4);
    RL_CHECK(length + 4 <= left, "image '", path, "' is not a valid PNG file: its ", type, " chunk at byte ", at,
             " declares ", length, " bytes and a 4-byte checksum, but only ", left, " bytes follow its header");
    if (type == "IEND") return;
    at += 12 + length;
  }
}

}  // namespace

std::pair<int, int> image_file_size(const std::string& bytes, const std::string& path) {
  // stb takes a file for JPEG when 0xFF bytes and then the start-of-image marker 0xD8 open it.
  const std::size_t first = bytes.find_first_not_of('\xFF');
  if (first != 0 && first != std::string::npos && static_cast<std::uint8_t>(bytes[first]) == 0xD8) {
    check_jpeg_tables(bytes, first + 1, path);
  }
  if (bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0) check_png_chunks(bytes, path);
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
           "image folders need an image shape spec C,H,W with C = 1 or 3, got ", image_shape.size(), " numbers");
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
      images.push_back(
          decode_image(read_image_file(file), file.string(), image_shape[0], image_shape[1], image_shape[2]));
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

void write_png(const std::string& path, const at::Tensor& image) {
  RL_CHECK(image.dim() == 3 && (image.size(0) == 1 || image.size(0) == 3), "PNG images must be 1×H×W or 3×H×W, got ",
           image.sizes());
  const at::Tensor bytes = to_bytes(image.detach().to(at::kCPU, at::kFloat).clamp(0, 1).permute({1, 2, 0}));
  write_file_atomically(path, [&](const std::string& temporary) {
    RL_CHECK(stbi_write_png(temporary.c_str(), static_cast<int>(image.size(2)), static_cast<int>(image.size(1)),
                            static_cast<int>(image.size(0)), bytes.data_ptr<std::uint8_t>(),
                            static_cast<int>(image.size(0) * image.size(2))) != 0,
             "cannot write '", path, "'");
  });
}

}  // namespace robustlens
