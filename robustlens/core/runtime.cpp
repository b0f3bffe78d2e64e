#include "robustlens/core/runtime.h"

#include "robustlens/core/distributed.h"
#include "robustlens/core/error.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/utils.h>
#include <torch/version.h>

#include <thread>

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace robustlens {

c10::Device resolve_device(const std::string& name) {
  // Each rank of a data-parallel run on one host takes its own GPU (torchrun's LOCAL_RANK) unless told which.
  const auto own_gpu = [] {
    return c10::Device(c10::kCUDA,
                       static_cast<c10::DeviceIndex>(distributed::local_rank() %
                                                     std::max<std::size_t>(torch::cuda::device_count(), 1)));
  };
  if (name == "auto") return torch::cuda::is_available() ? own_gpu() : c10::Device(c10::kCPU);
  RL_CHECK(name == "cpu" || name.rfind("cuda", 0) == 0, "device spec: expected cpu, cuda, cuda:N or auto, got '", name,
           "'");
  if (name == "cpu") return c10::Device(c10::kCPU);
  RL_CHECK(torch::cuda::is_available(), "device spec ", name,
           ": this LibTorch build sees no CUDA device (use device spec cpu or auto)");
  if (name == "cuda") return own_gpu();
  c10::Device device(c10::kCUDA, 0);
  try {
    device = c10::Device(name);
  } catch (const std::exception&) {
    RL_CHECK(false, "device spec: cannot parse '", name, "' (expected cuda or cuda:N)");
  }
  RL_CHECK(device.index() < static_cast<int>(torch::cuda::device_count()), "device spec ", name, ": only ",
           torch::cuda::device_count(), " CUDA device(s) present");
  return device;
}

int configure_threads(int threads) {
  RL_CHECK(threads >= 0, "thread count must be >= 0 (0 = all cores), got ", threads);
  const int cores = static_cast<int>(std::thread::hardware_concurrency());  // 0: unknown
  // More threads than cores only contend: OpenMP's spinning threads slowed a 0.5 s run past 30 s.
  RL_CHECK(cores == 0 || threads <= cores, "thread count ", threads, " exceeds the ", cores,
           " hardware threads of this machine (0 = all of them)");
  const int resolved = threads == 0 ? std::max(1, cores) : threads;
  at::set_num_threads(resolved);
  return at::get_num_threads();
}

void configure_memory_allocator() {
#ifdef __GLIBC__
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest allowed value on 64-bit
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
}

nlohmann::json library_versions() {
  return {{"robustlens", ROBUSTLENS_VERSION},
          {"libtorch", TORCH_VERSION},
          {"cuda_available", torch::cuda::is_available()},
          {"threads", at::get_num_threads()}};
}

}  // namespace robustlens
