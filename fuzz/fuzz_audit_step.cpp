// A finished audit step's record (audit_step.json), compared with the record of the step to run.
#include "fuzz_support.h"
#include "tools/robustlens/audit_records.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const nlohmann::json record = {{"arguments", {"eval", "--model", "m.pt"}},
                                        {"inputs", {{"m.pt", {{"size", 10}, {"hash", "ab"}}}}},
                                        {"data", {{"test", "1"}, {"train", "2"}}},
                                        {"build", "3"},
                                        {"record_format", 2}};
  robustlens::fuzz::expect_clear_errors(
      [&] { robustlens::cli::step_record_matches(robustlens::fuzz::input_text(data, size), record); });
  return 0;
}
