#include "robustlens/core/console.h"

#include <cstdarg>
#include <cstdio>
#include <utility>
#include <vector>

namespace robustlens::console {
namespace {

std::function<void(const std::string&)>& sink() {
  static std::function<void(const std::string&)> current;
  return current;
}

}  // namespace

void print(const char* format, ...) {
  std::va_list arguments;
  va_start(arguments, format);
  if (!sink()) {
    std::vprintf(format, arguments);
    va_end(arguments);
    return;
  }
  std::va_list measuring;
  va_copy(measuring, arguments);
  const int length = std::vsnprintf(nullptr, 0, format, measuring);
  va_end(measuring);
  std::vector<char> text(static_cast<std::size_t>(length > 0 ? length : 0) + 1);
  std::vsnprintf(text.data(), text.size(), format, arguments);
  va_end(arguments);
  sink()(std::string(text.data(), text.size() - 1));
}

void set_sink(std::function<void(const std::string&)> new_sink) { sink() = std::move(new_sink); }

}  // namespace robustlens::console
