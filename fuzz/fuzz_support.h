// What every fuzz target shares: the input as a file (the readers take paths), and the rule that bad input
// may only end in robustlens::Error. Any other exception, a crash or a sanitizer report is a finding.
#pragma once

#include "robustlens/core/error.h"

#include <unistd.h>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

namespace robustlens::fuzz {

/// A file of this process under /tmp (tmpfs on most machines) holding the input; `name` sets its file name.
inline std::string input_file(const std::uint8_t* data, std::size_t size, const std::string& name = "input") {
  const std::string folder = "/tmp/robustlens-fuzz-" + std::to_string(::getpid());
  static const bool made = [&] { return std::system(("mkdir -p " + folder).c_str()) == 0; }();
  (void)made;
  const std::string path = folder + "/" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), size);
  return path;
}

inline std::string input_text(const std::uint8_t* data, std::size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

/// Runs `read`; an Error (a clear message for bad input) is the expected outcome, anything else escapes.
template <typename Read>
void expect_clear_errors(Read&& read) {
  try {
    read();
  } catch (const Error&) {
  }
}

}  // namespace robustlens::fuzz
