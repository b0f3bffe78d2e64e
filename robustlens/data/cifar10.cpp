#include "robustlens/data/cifar10.h"

#include "robustlens/core/error.h"
#include "robustlens/data/byte_file.h"

#include <filesystem>
#include <fstream>

namespace robustlens {
namespace {
constexpr std::int64_t kSide = 32, kChannels = 3, kPixels = kChannels * kSide * kSide, kRecord = 1 + kPixels;
// A CIFAR-10 batch holds 10,000 images; the whole data set 60,000. More is not a CIFAR-10 batch.
constexpr std::int64_t kMaxRecords = 60'000;
}  // namespace

std::pair<at::Tensor, at::Tensor> read_cifar10_batch(const std::string& path) {
  const std::vector<std::uint8_t> bytes = read_maybe_gzipped_file(path, kMaxRecords * kRecord);
  const auto size = static_cast<std::int64_t>(bytes.size());
  RL_CHECK(size > 0 && size % kRecord == 0, "CIFAR-10 batch '", path, "' has ", size,
           " bytes; expected a positive multiple of ", kRecord, " (1 label byte + 3072 pixel bytes per image)",
           size % kRecord != 0 ? " — the file is truncated or not a CIFAR-10 binary batch" : "");
  const std::int64_t n = size / kRecord;
  at::Tensor raw = at::from_blob(const_cast<std::uint8_t*>(bytes.data()), {n, kRecord}, at::kByte);
  at::Tensor labels = raw.select(1, 0).to(at::kLong);
  RL_CHECK(labels.max().item<std::int64_t>() <= 9, "CIFAR-10 batch '", path, "' has label ",
           labels.max().item<std::int64_t>(), "; labels must lie in 0..9 (wrong file type?)");
  at::Tensor images = raw.slice(1, 1).reshape({n, kChannels, kSide, kSide}).to(at::kFloat).div_(255.0f);
  return {images, labels};
}

void write_cifar10_batch(const std::string& path, const at::Tensor& images, const at::Tensor& labels) {
  RL_CHECK(images.dim() == 4 && images.size(1) == kChannels && images.size(2) == kSide && images.size(3) == kSide,
           "CIFAR-10 images must be N×3×32×32, got ", images.sizes());
  RL_CHECK(labels.dim() == 1 && labels.size(0) == images.size(0), "CIFAR-10 needs one label per image");
  const at::Tensor records =
      at::cat({labels.to(at::kByte).unsqueeze(1), to_bytes(images).reshape({images.size(0), kPixels})}, 1).contiguous();
  std::vector<std::uint8_t> bytes(records.data_ptr<std::uint8_t>(), records.data_ptr<std::uint8_t>() + records.numel());
  write_byte_file(path, bytes, false);
}

std::vector<std::string> cifar10_class_names(const std::string& directory) {
  std::ifstream meta(std::filesystem::path(directory) / "batches.meta.txt");
  std::vector<std::string> names;
  for (std::string line; std::getline(meta, line);) {
    if (!line.empty()) names.push_back(line);
  }
  if (names.size() == 10) return names;
  return {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
}

}  // namespace robustlens
