// Whole-file byte I/O shared by the dataset readers and writers.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace robustlens {

/// A file read a piece at a time, gunzipped when it is gzip-compressed (detected from the content, not
/// the name): a reader checks the header before it inflates the rest, and never inflates more than it
/// asks for (a small gzip file can inflate to gigabytes). A damaged or truncated stream is an Error.
class MaybeGzippedFile {
 public:
  explicit MaybeGzippedFile(std::string path);
  ~MaybeGzippedFile();
  MaybeGzippedFile(const MaybeGzippedFile&) = delete;
  MaybeGzippedFile& operator=(const MaybeGzippedFile&) = delete;

  /// Up to `count` more bytes; fewer only where the data ends.
  std::vector<std::uint8_t> read(std::uint64_t count);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  void* file_;  // gzFile, kept out of this header
};

/// The whole file (gunzipped), refusing one whose data exceeds `max_bytes` after reading at most one byte more.
std::vector<std::uint8_t> read_maybe_gzipped_file(const std::string& path, std::uint64_t max_bytes);

/// Writes atomically; gzip-compressed when `compress`.
void write_byte_file(const std::string& path, const std::vector<std::uint8_t>& bytes, bool compress);

/// The 32-bit big-endian number at `bytes` (idx headers, PNG chunk lengths).
inline std::uint32_t big_endian_u32(const std::uint8_t* bytes) {
  return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) | (std::uint32_t{bytes[2]} << 8) |
         std::uint32_t{bytes[3]};
}

/// Float pixels in [0,1] → contiguous uint8 (rounded), same shape.
at::Tensor to_bytes(const at::Tensor& images);

}  // namespace robustlens
