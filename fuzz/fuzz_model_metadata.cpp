// The metadata record of a robustlens model file (and of checkpoints, which carry the same record).
#include "fuzz_support.h"
#include "robustlens/models/builtin_model.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  robustlens::fuzz::expect_clear_errors(
      [&] { robustlens::parse_builtin_metadata(robustlens::fuzz::input_text(data, size), "model.pt"); });
  return 0;
}
