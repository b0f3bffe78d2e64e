#include "robustlens/data/byte_file.h"

#include "robustlens/core/error.h"
#include "robustlens/report/files.h"

#include <zlib.h>

#include <filesystem>
#include <fstream>

namespace robustlens {

std::vector<std::uint8_t> read_maybe_gzipped_file(const std::string& path) {
  RL_CHECK(std::filesystem::is_regular_file(path), "file '", path, "' does not exist");
  // gzread passes plain files through unchanged, so one code path reads both.
  gzFile file = gzopen(path.c_str(), "rb");
  RL_CHECK(file != nullptr, "cannot open '", path, "'");
  std::vector<std::uint8_t> bytes;
  std::uint8_t buffer[1 << 16];
  int count = 0;
  while ((count = gzread(file, buffer, sizeof buffer)) > 0) bytes.insert(bytes.end(), buffer, buffer + count);
  int code = Z_OK;
  const std::string message = count < 0 ? gzerror(file, &code) : "";
  const int close_code = gzclose_r(file);
  RL_CHECK(count == 0 && close_code == Z_OK, "'", path, "' is a damaged or truncated gzip file",
           message.empty() ? "" : ": ", message);
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
