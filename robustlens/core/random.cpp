#include "robustlens/core/random.h"

#include "robustlens/core/error.h"

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

namespace {
thread_local const RowShareScope* current_share = nullptr;
}  // namespace

RowShareScope::RowShareScope(std::int64_t offset, std::int64_t rows, std::int64_t total)
    : previous_(current_share), offset_(offset), rows_(rows), total_(total) {
  current_share = this;
}

RowShareScope::~RowShareScope() { current_share = previous_; }

/// `draw(shape)`, or within a RowShareScope the share's rows (along `row_dim`) of the whole batch's draw.
at::Tensor draw_for_share(at::IntArrayRef shape, std::int64_t row_dim,
                          const std::function<at::Tensor(at::IntArrayRef)>& draw) {
  const RowShareScope* share = current_share;
  if (share == nullptr) return draw(shape);
  const auto dims = static_cast<std::int64_t>(shape.size());
  RL_CHECK(row_dim >= 0 && row_dim < dims && shape[row_dim] % share->rows_ == 0, "a random draw of shape ", shape,
           " (rows along dimension ", row_dim, ") inside a share of ", share->rows_, " rows of a batch of ",
           share->total_, ": only per-row draws can be split across processes");
  // k draws per row, each row's consecutive (the rows' copies of repeat_interleave, e.g. SmoothGrad's).
  const std::int64_t per_row = shape[row_dim] / share->rows_;
  std::vector<std::int64_t> whole = shape.vec();
  whole[row_dim] = share->total_ * per_row;
  return draw(whole).narrow(row_dim, share->offset_ * per_row, shape[row_dim]);
}

at::Tensor random_normal(at::IntArrayRef shape, const at::Generator& generator, const at::TensorOptions& options,
                         std::int64_t row_dim) {
  return draw_for_share(shape, row_dim,
                        [&](at::IntArrayRef s) { return at::randn(s, generator, options.device(at::kCPU)); })
      .to(options.device());
}

at::Tensor random_uniform(at::IntArrayRef shape, const at::Generator& generator, const at::TensorOptions& options,
                          std::int64_t row_dim) {
  return draw_for_share(shape, row_dim,
                        [&](at::IntArrayRef s) { return at::rand(s, generator, options.device(at::kCPU)); })
      .to(options.device());
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
