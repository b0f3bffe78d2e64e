// Random numbers with an owner. Every analysis and training run draws from a
// generator of its own, made from the seed in its options, never from
// LibTorch's process-wide generator: its numbers then do not depend on what
// else ran before in the process. Draws are made on the CPU and moved to the
// tensor's device, so that a seed gives the same numbers on every device.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>

namespace robustlens {

/// An independent stream of `seed`: splitmix64 of (seed, stream), so that nearby seeds and streams give
/// unrelated numbers. Code with several random needs (shuffling, noise, evaluation) gives each its own stream.
std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream);

/// A CPU generator seeded with `seed`. Copies of an at::Generator share one state: pass it on, and every draw
/// continues the same stream.
at::Generator make_generator(std::uint64_t seed);

/// Standard normal, uniform [0,1) and uniform-integer draws from `generator`, made on the CPU in the dtype of
/// `options` and moved to its device. A draw's batch rows lie along `row_dim` (the first dimension unless said;
/// RowShareScope below).
at::Tensor random_normal(at::IntArrayRef shape, const at::Generator& generator, const at::TensorOptions& options = {},
                         std::int64_t row_dim = 0);
at::Tensor random_uniform(at::IntArrayRef shape, const at::Generator& generator, const at::TensorOptions& options = {},
                          std::int64_t row_dim = 0);
/// While it lives, this thread's process computes rows [offset, offset + rows) of a batch of `total` rows (its
/// share in data-parallel training, core/distributed.h): random_normal and random_uniform then draw for the whole
/// batch and keep the share's rows, so that each row gets the numbers it would get in one process, and every
/// rank's generator advances alike. A draw of k·rows rows is k draws per row, each row's consecutive (the copies
/// of repeat_interleave); a draw whose row dimension is not a multiple of the share's rows is an Error.
class RowShareScope {
 public:
  RowShareScope(std::int64_t offset, std::int64_t rows, std::int64_t total);
  ~RowShareScope();
  RowShareScope(const RowShareScope&) = delete;
  RowShareScope& operator=(const RowShareScope&) = delete;

 private:
  const RowShareScope* previous_;
  std::int64_t offset_, rows_, total_;
  friend at::Tensor draw_for_share(at::IntArrayRef, std::int64_t, const std::function<at::Tensor(at::IntArrayRef)>&);
};

/// A random order of 0..n-1 (int64, CPU).
at::Tensor random_permutation(std::int64_t n, const at::Generator& generator);

/// Runs `build` with LibTorch's global CPU generator seeded with `seed` and restores its state afterwards. Only
/// for what cannot take a generator: the initialisers of LibTorch's layers (the weights of a model built on the
/// CPU).
void with_global_seed(std::uint64_t seed, const std::function<void()>& build);

}  // namespace robustlens
