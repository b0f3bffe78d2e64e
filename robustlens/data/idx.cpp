#include "robustlens/data/idx.h"

#include "robustlens/core/error.h"
#include "robustlens/data/byte_file.h"

#include <cstdint>
#include <vector>

namespace robustlens {
namespace {

constexpr std::uint32_t kImagesMagic = 0x00000803;  // unsigned byte, 3 dimensions
constexpr std::uint32_t kLabelsMagic = 0x00000801;  // unsigned byte, 1 dimension
// Sizes far beyond any real idx file are rejected before allocating memory.
constexpr std::uint64_t kMaxItems = 100'000'000;
constexpr std::uint64_t kMaxSide = 4096;

void put_big_endian(std::vector<std::uint8_t>& out, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(value >> shift));
}

// Far beyond any real data set; checked before anything is inflated past the header.
constexpr std::uint64_t kMaxPayload = std::uint64_t{4} << 30;

struct IdxContent {
  std::vector<std::uint64_t> shape;
  std::vector<std::uint8_t> payload;
};

/// Reads and checks the header, then exactly the payload it promises (and one byte to find trailing data).
IdxContent read_idx(const std::string& path, std::uint32_t magic) {
  MaybeGzippedFile file(path);
  const std::size_t dims = magic & 0xFF;
  const std::vector<std::uint8_t> head = file.read(4);
  RL_CHECK(head.size() == 4, "idx file '", path, "' is truncated: ", head.size(), " bytes, no header");
  const std::uint32_t found = big_endian_u32(head.data());
  RL_CHECK(found == magic, "idx file '", path, "' has magic 0x", std::hex, found, " but 0x", magic, " was expected (",
           (magic == kImagesMagic ? "unsigned-byte images" : "unsigned-byte labels"), ")");
  const std::vector<std::uint8_t> sizes = file.read(4 * dims);
  RL_CHECK(sizes.size() == 4 * dims, "idx file '", path, "' is truncated inside its header");
  IdxContent content;
  std::uint64_t payload = 1;
  for (std::size_t d = 0; d < dims; ++d) {
    content.shape.push_back(big_endian_u32(sizes.data() + 4 * d));
    RL_CHECK(content.shape.back() <= (d == 0 ? kMaxItems : kMaxSide), "idx file '", path, "' declares dimension ", d,
             " of ", content.shape.back(), ", beyond the supported ", (d == 0 ? kMaxItems : kMaxSide));
    payload *= content.shape.back();
  }
  RL_CHECK(payload <= kMaxPayload, "idx file '", path, "' declares ", payload, " bytes of data, beyond the supported ",
           kMaxPayload);
  const std::uint64_t expected = 4 + 4 * dims + payload;
  content.payload = file.read(payload + 1);
  RL_CHECK(content.payload.size() >= payload, "idx file '", path, "' is truncated: header promises ", expected,
           " bytes, file has ", 4 + 4 * dims + content.payload.size());
  RL_CHECK(content.payload.size() == payload, "idx file '", path, "' is oversized: header promises ", expected,
           " bytes, the file has more (trailing data)");
  return content;
}

}  // namespace

at::Tensor read_idx_images(const std::string& path) {
  const IdxContent content = read_idx(path, kImagesMagic);
  const auto n = static_cast<std::int64_t>(content.shape[0]), h = static_cast<std::int64_t>(content.shape[1]),
             w = static_cast<std::int64_t>(content.shape[2]);
  at::Tensor raw = at::empty({n, 1, h, w}, at::kByte);
  std::copy(content.payload.begin(), content.payload.end(), raw.data_ptr<std::uint8_t>());
  return raw.to(at::kFloat).div_(255.0f);
}

at::Tensor read_idx_labels(const std::string& path) {
  const IdxContent content = read_idx(path, kLabelsMagic);
  at::Tensor raw = at::empty({static_cast<std::int64_t>(content.shape[0])}, at::kByte);
  std::copy(content.payload.begin(), content.payload.end(), raw.data_ptr<std::uint8_t>());
  return raw.to(at::kLong);
}

void write_idx_images(const std::string& path, const at::Tensor& images, bool compress) {
  RL_CHECK(images.dim() == 4 && images.size(1) == 1, "idx images must be N×1×H×W, got ", images.sizes());
  std::vector<std::uint8_t> out;
  put_big_endian(out, kImagesMagic);
  for (int d : {0, 2, 3}) put_big_endian(out, static_cast<std::uint32_t>(images.size(d)));
  const at::Tensor bytes = to_bytes(images);
  out.insert(out.end(), bytes.data_ptr<std::uint8_t>(), bytes.data_ptr<std::uint8_t>() + bytes.numel());
  write_byte_file(path, out, compress);
}

void write_idx_labels(const std::string& path, const at::Tensor& labels, bool compress) {
  RL_CHECK(labels.dim() == 1, "idx labels must be one-dimensional, got ", labels.sizes());
  RL_CHECK(labels.numel() == 0 || (labels.min().item<std::int64_t>() >= 0 && labels.max().item<std::int64_t>() <= 255),
           "idx labels must lie in [0,255]");
  std::vector<std::uint8_t> out;
  put_big_endian(out, kLabelsMagic);
  put_big_endian(out, static_cast<std::uint32_t>(labels.size(0)));
  const at::Tensor bytes = labels.to(at::kByte).contiguous();
  out.insert(out.end(), bytes.data_ptr<std::uint8_t>(), bytes.data_ptr<std::uint8_t>() + bytes.numel());
  write_byte_file(path, out, compress);
}

}  // namespace robustlens
