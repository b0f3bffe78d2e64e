// idx files (Fashion-MNIST, MNIST, idx:DIR), plain or gzipped: header first, sizes capped, data checked.
#include "fuzz_support.h"
#include "robustlens/data/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = robustlens::fuzz::input_file(data, size);
  robustlens::fuzz::expect_clear_errors([&] { robustlens::read_idx_images(path); });
  robustlens::fuzz::expect_clear_errors([&] { robustlens::read_idx_labels(path); });
  return 0;
}
