// Process-wide run-time settings: device, threads, and the versions that
// every output echoes so that its numbers can be reproduced.
#pragma once

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace robustlens {

/// "cpu", "cuda", "cuda:N" or "auto" (CUDA when available, else CPU).
/// Asking for CUDA where there is none is an error, not a silent fallback.
c10::Device resolve_device(const std::string& name);

/// Intra-op threads; 0 means all cores (Debian's LibTorch defaults to one), more than the
/// hardware threads is refused. Returns the number in force.
int configure_threads(int threads);

/// Keeps freed tensor memory in the heap for reuse (glibc). By default glibc
/// serves blocks over 128 KiB with fresh mmap calls until a large free happens
/// to raise its threshold, so a network's activations are page-faulted anew on
/// every pass and throughput flips between two modes run to run (measured: LeNet
/// input gradients at batch 32, 2.2k vs 8-9k samples/s on two cores).
void configure_memory_allocator();

/// {"robustlens": ..., "libtorch": ..., "cuda": ..., "threads": ...}
nlohmann::json library_versions();

}  // namespace robustlens
