#include "robustlens/core/random.h"

#include <ATen/CPUGeneratorImpl.h>

#include <mutex>

namespace robustlens {

std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (stream + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return (z ^ (z >> 31)) & 0x7FFFFFFFFFFFFFFFULL;  // LibTorch seeds are taken as signed
}

at::Generator make_generator(std::uint64_t seed) { return at::detail::createCPUGenerator(seed); }

at::Tensor random_normal(at::IntArrayRef shape, const at::Generator& generator, const at::TensorOptions& options) {
  return at::randn(shape, generator, options.device(at::kCPU)).to(options.device());
}

at::Tensor random_uniform(at::IntArrayRef shape, const at::Generator& generator, const at::TensorOptions& options) {
  return at::rand(shape, generator, options.device(at::kCPU)).to(options.device());
}

at::Tensor random_permutation(std::int64_t n, const at::Generator& generator) {
  return at::randperm(n, generator, at::kLong);
}

void with_global_seed(std::uint64_t seed, const std::function<void()>& build) {
  at::Generator global = at::detail::getDefaultCPUGenerator();
  at::Tensor saved;
  {
    std::lock_guard<std::mutex> lock(global.mutex());
    saved = global.get_state();
    global.set_current_seed(seed);
  }
  const auto restore = [&] {
    std::lock_guard<std::mutex> lock(global.mutex());
    global.set_state(saved);
  };
  try {
    build();
  } catch (...) {
    restore();
    throw;
  }
  restore();
}

}  // namespace robustlens
