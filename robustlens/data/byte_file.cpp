#include "robustlens/data/byte_file.h"

#include "robustlens/core/error.h"
#include "robustlens/core/files.h"

#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace robustlens {

MaybeGzippedFile::MaybeGzippedFile(std::string path) : path_(std::move(path)), file_(nullptr) {
  RL_CHECK(std::filesystem::is_regular_file(path_), "file '", path_, "' does not exist");
  // gzread passes plain files through unchanged, so one code path reads both.
  file_ = gzopen(path_.c_str(), "rb");
  RL_CHECK(file_ != nullptr, "cannot open '", path_, "'");
}

MaybeGzippedFile::~MaybeGzippedFile() { gzclose_r(static_cast<gzFile>(file_)); }

std::vector<std::uint8_t> MaybeGzippedFile::read(std::uint64_t count) {
  std::vector<std::uint8_t> bytes;
  std::uint8_t buffer[1 << 16];
  while (bytes.size() < count) {
    const auto want = static_cast<unsigned>(std::min<std::uint64_t>(sizeof buffer, count - bytes.size()));
    const int got = gzread(static_cast<gzFile>(file_), buffer, want);
    int code = Z_OK;
    const char* message = gzerror(static_cast<gzFile>(file_), &code);
    RL_CHECK(got >= 0 && code == Z_OK, "'", path_, "' is a damaged or truncated gzip file: ", message);
    if (got == 0) break;
    bytes.insert(bytes.end(), buffer, buffer + got);
  }
  return bytes;
}

std::vector<std::uint8_t> read_maybe_gzipped_file(const std::string& path, std::uint64_t max_bytes) {
  MaybeGzippedFile file(path);
  std::vector<std::uint8_t> bytes = file.read(max_bytes + 1);
  RL_CHECK(bytes.size() <= max_bytes, "'", path, "' holds more than ", max_bytes, " bytes (after gunzipping)");
  return bytes;
}

void write_byte_file(const std::string& path, const std::vector<std::uint8_t>& bytes, bool compress) {
  write_file_atomically(path, [&](const std::string& temporary) {
    if (compress) {
      gzFile file = gzopen(temporary.c_str(), "wb");
      RL_CHECK(file != nullptr, "cannot write '", path, "'");
      const int written = bytes.empty() ? 0 : gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size()));
      RL_CHECK(gzclose(file) == Z_OK && written == static_cast<int>(bytes.size()), "cannot write '", path, "'");
    } else {
      std::ofstream out(temporary, std::ios::binary);
      out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
      out.close();
      RL_CHECK(out.good(), "cannot write '", path, "'");
    }
  });
}

at::Tensor to_bytes(const at::Tensor& images) {
  return images.mul(255.0f).round_().clamp_(0, 255).to(at::kByte).contiguous();
}

}  // namespace robustlens
