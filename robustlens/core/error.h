// Errors: every bad input becomes one robustlens::Error whose message names the
// thing, the offending value and what was expected. The CLI prints it and exits 2.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace robustlens {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

/// Thrown by a progress callback to stop the work (Ctrl-C in the Python module). Not a std::exception, so that the
/// handlers that turn failures into Errors (an audit step's) let it through.
struct Interrupted {};

namespace detail {
template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream stream;
  (stream << ... << parts);
  return stream.str();
}
}  // namespace detail

/// First line of an exception's message: LibTorch appends long C++ backtraces.
std::string first_line(const std::string& message);

}  // namespace robustlens

/// TORCH_CHECK-style check: RL_CHECK(x >= 0, "eps must be >= 0, got ", x);
#define RL_CHECK(condition, ...)                                            \
  do {                                                                      \
    if (!(condition)) {                                                     \
      throw ::robustlens::Error(::robustlens::detail::concat(__VA_ARGS__)); \
    }                                                                       \
  } while (false)
