#include "robustlens/core/error.h"

namespace robustlens {

std::string first_line(const std::string& message) {
  const auto end = message.find('\n');
  return end == std::string::npos ? message : message.substr(0, end);
}

}  // namespace robustlens
