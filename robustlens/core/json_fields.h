// Reading the JSON records stored in model, VAE and denoiser files: a missing key or a value
// of the wrong type is one Error naming the file and the key, not nlohmann's bare exception text.
#pragma once

#include "robustlens/core/error.h"

#include <nlohmann/json.hpp>

#include <string>

namespace robustlens {

/// json[key] as T. `where` names the record, e.g. "model file 'm.pt': architecture".
template <typename T>
T required_field(const nlohmann::json& json, const std::string& key, const std::string& where) {
  RL_CHECK(json.is_object() && json.contains(key), where, ": key '", key, "' is missing");
  try {
    return json.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw Error(detail::concat(where, ": key '", key, "' holds a value of the wrong type (", json.at(key).type_name(),
                               ")"));
  }
}

/// json[key] as T, or `fallback` where the key is absent (a present value of the wrong type is an Error).
template <typename T>
T optional_field(const nlohmann::json& json, const std::string& key, const T& fallback, const std::string& where) {
  return json.is_object() && json.contains(key) ? required_field<T>(json, key, where) : fallback;
}

}  // namespace robustlens
