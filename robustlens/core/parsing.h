// Parsing user text (option values, index files) strictly: the whole text must be the value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace robustlens {

/// The integer `text` spells, or nothing if it is not exactly one integer.
inline std::optional<std::int64_t> parse_int64(const std::string& text) {
  std::size_t used = 0;
  try {
    const std::int64_t value = std::stoll(text, &used);
    if (used == text.size()) return value;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

}  // namespace robustlens
