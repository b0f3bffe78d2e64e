#include "robustlens/core/error.h"

namespace robustlens {

std::string first_line(const std::string& message) {
  // The first line that says something: TorchScript's parser errors open with an empty line.
  const auto begin = message.find_first_not_of("\n \t");
  if (begin == std::string::npos) return "(no message)";
  const auto end = message.find('\n', begin);
  return message.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

}  // namespace robustlens
