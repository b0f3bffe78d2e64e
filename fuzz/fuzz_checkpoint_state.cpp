// The training loop's record in a checkpoint (recipe, inputs, finished epochs).
#include "fuzz_support.h"
#include "robustlens/core/training_loop.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  robustlens::fuzz::expect_clear_errors(
      [&] { robustlens::parse_training_checkpoint_state(robustlens::fuzz::input_text(data, size), "checkpoint.pt"); });
  return 0;
}
