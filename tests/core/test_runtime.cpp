#include "robustlens/core/runtime.h"

#include "robustlens/core/error.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <thread>

namespace robustlens {
namespace {

TEST(Runtime, ResolvesDevices) {
  EXPECT_EQ(resolve_device("cpu"), c10::Device(c10::kCPU));
  EXPECT_EQ(resolve_device("auto").is_cuda(), torch::cuda::is_available());
  EXPECT_THROW(resolve_device("gpu"), Error);
  if (!torch::cuda::is_available()) EXPECT_THROW(resolve_device("cuda"), Error);
}

TEST(Runtime, ConfiguresThreads) {
  EXPECT_EQ(configure_threads(1), 1);
  EXPECT_GE(configure_threads(0), 1);
  EXPECT_THROW(configure_threads(-1), Error);
  EXPECT_THROW(configure_threads(static_cast<int>(std::thread::hardware_concurrency()) + 1), Error);
}

TEST(Runtime, VersionsNameLibTorch) {
  const auto versions = library_versions();
  EXPECT_FALSE(versions.at("libtorch").get<std::string>().empty());
  EXPECT_EQ(versions.at("robustlens"), ROBUSTLENS_VERSION);
}

}  // namespace
}  // namespace robustlens
