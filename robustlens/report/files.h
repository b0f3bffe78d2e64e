// Output files are written to a temporary name and renamed into place, so that
// an interrupted run never leaves a half-written file under the final name.
#pragma once

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstddef>
#include <functional>
#include <string>

namespace robustlens {

/// Calls write(temporary_path) (PATH.tmpPID), flushes it to the disk and renames it to `path`.
/// Creates the parent directory. On failure removes the temporary file and throws.
void write_file_atomically(const std::string& path, const std::function<void(const std::string&)>& write);

/// Removes the temporaries of write_file_atomically in `folder` and below whose writer no longer runs
/// (killed before its rename); returns how many. A running process's temporaries are kept.
std::size_t remove_stale_temporaries(const std::string& folder);

void write_text_file(const std::string& path, const std::string& text);
/// Pretty-printed JSON (2-space indent).
void write_json_file(const std::string& path, const nlohmann::json& json);
nlohmann::json read_json_file(const std::string& path);
/// The bytes of a file; a missing or unreadable file is an Error naming it.
std::string read_text_file(const std::string& path);

/// A 1-D tensor (any device, integer, bool or floating) as a JSON array.
nlohmann::json tensor_to_json(const at::Tensor& values);

}  // namespace robustlens
