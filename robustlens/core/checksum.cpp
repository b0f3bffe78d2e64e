#include "robustlens/core/checksum.h"

#include "robustlens/core/error.h"

#include <torch/nn/module.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cstdio>

namespace robustlens {

void Fnv1a::add(const void* data, std::size_t bytes) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < bytes; ++i) hash_ = (hash_ ^ p[i]) * 1099511628211ull;
}

void Fnv1a::add(const std::string& text) { add(text.data(), text.size()); }

void Fnv1a::add(const at::Tensor& tensor) {
  add(std::string(c10::toString(tensor.scalar_type())));
  for (const std::int64_t size : tensor.sizes()) add(&size, sizeof size);
  const at::Tensor values = tensor.detach().to(at::kCPU).contiguous();
  add(values.data_ptr(), values.numel() * values.element_size());
}

std::string Fnv1a::hex() const {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash_));
  return text;
}

std::string module_checksum(const torch::nn::Module& module) {
  Fnv1a hash;
  for (const auto& item : module.named_parameters()) {
    hash.add(item.key());
    hash.add(item.value());
  }
  for (const auto& item : module.named_buffers()) {
    hash.add(item.key());
    hash.add(item.value());
  }
  return hash.hex();
}

namespace {
constexpr const char* kParameterChecksumKey = "parameter_checksum";
}

void write_parameter_checksum(torch::serialize::OutputArchive& archive, const torch::nn::Module& module) {
  archive.write(kParameterChecksumKey, c10::IValue(module_checksum(module)));
}

void check_parameter_checksum(torch::serialize::InputArchive& archive, const torch::nn::Module& module,
                              const std::string& path) {
  c10::IValue recorded;
  if (!archive.try_read(kParameterChecksumKey, recorded)) return;
  RL_CHECK(recorded.isString(), "'", path, "': the parameter checksum record is not a string");
  const std::string actual = module_checksum(module);
  RL_CHECK(actual == recorded.toStringRef(), "'", path,
           "': the parameters do not match the checksum written with them (", recorded.toStringRef(), ", now ", actual,
           "): the file was changed or corrupted after it was written");
}

std::string data_checksum(const at::Tensor& images, const at::Tensor& labels) {
  Fnv1a hash;
  hash.add(images);
  hash.add(labels);
  return hash.hex();
}

}  // namespace robustlens
