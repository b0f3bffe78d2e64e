// CIFAR-10 binary batches.
#include "fuzz_support.h"
#include "robustlens/data/cifar10.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = robustlens::fuzz::input_file(data, size);
  robustlens::fuzz::expect_clear_errors([&] { robustlens::read_cifar10_batch(path); });
  return 0;
}
