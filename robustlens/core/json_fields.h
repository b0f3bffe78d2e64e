// Reading the JSON records stored in model, VAE and denoiser files: a missing key or a value
// of the wrong type (an integer field holding a float or a number out of range, too) is one Error
// naming the file and the key, not nlohmann's bare exception text.
#pragma once

#include "robustlens/core/error.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

namespace robustlens {

/// A number of a record, NaN where it is null: JSON has no NaN, so an undefined measure is written as null.
inline double number_or_nan(const nlohmann::json& value) {
  return value.is_number() ? value.get<double>() : std::numeric_limits<double>::quiet_NaN();
}

namespace detail {

/// Whether `value` is an integer that T holds. nlohmann converts a float, or an integer out of T's range, with
/// undefined behaviour (found by fuzz/fuzz_model_metadata), so integer fields take integers in range only.
template <typename T>
bool holds_integer(const nlohmann::json& value) {
  if (value.is_number_unsigned())
    return value.get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<T>::max());
  if (!value.is_number_integer()) return false;
  const std::int64_t number = value.get<std::int64_t>();
  return number >= static_cast<std::int64_t>(std::numeric_limits<T>::min()) &&
         static_cast<std::uint64_t>(std::max<std::int64_t>(number, 0)) <=
             static_cast<std::uint64_t>(std::numeric_limits<T>::max());
}

template <typename T>
struct is_integer_vector : std::false_type {};
template <typename T>
struct is_integer_vector<std::vector<T>> : std::bool_constant<std::is_integral_v<T> && !std::is_same_v<T, bool>> {};

/// Whether get<T>() is defined for `value`: always, except for integers (and lists of them) out of range.
template <typename T>
bool converts_safely(const nlohmann::json& value) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    return holds_integer<T>(value);
  } else if constexpr (is_integer_vector<T>::value) {
    return value.is_array() && std::all_of(value.begin(), value.end(), [](const nlohmann::json& element) {
             return holds_integer<typename T::value_type>(element);
           });
  } else {
    return true;
  }
}

}  // namespace detail

/// json[key] as T. `where` names the record, e.g. "model file 'm.pt': architecture".
template <typename T>
T required_field(const nlohmann::json& json, const std::string& key, const std::string& where) {
  RL_CHECK(json.is_object() && json.contains(key), where, ": key '", key, "' is missing");
  const nlohmann::json& value = json.at(key);
  const auto wrong_type = [&] {
    return Error(detail::concat(where, ": key '", key, "' holds a value of the wrong type (", value.type_name(), ")"));
  };
  if (!detail::converts_safely<T>(value)) throw wrong_type();
  try {
    return value.get<T>();
  } catch (const nlohmann::json::exception&) {
    throw wrong_type();
  }
}

/// json[key] as T, or `fallback` where the key is absent (a present value of the wrong type is an Error).
template <typename T>
T optional_field(const nlohmann::json& json, const std::string& key, const T& fallback, const std::string& where) {
  return json.is_object() && json.contains(key) ? required_field<T>(json, key, where) : fallback;
}

}  // namespace robustlens
