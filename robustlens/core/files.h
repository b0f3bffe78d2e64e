// Output files are written to a temporary name and renamed into place, so that
// an interrupted run never leaves a half-written file under the final name.
#pragma once

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstddef>
#include <functional>
#include <map>
#include <string>

namespace robustlens {

/// What a file is to the run that writes it.
enum class OutputKind {
  kOutput,  ///< a result: staged while a run is open on a folder that holds it (core/run_folder.h)
  kState,   ///< what a killed run must leave behind (training checkpoints, an audit's finished-step records):
            ///< written under its final name at once
};

/// Calls write(temporary_path) (NAME.tmpPID), flushes it to the disk and renames it to its name: `path`, or for an
/// output of an open run, its place in the run's staging folder. Creates the parent directory. On failure
/// removes the temporary file and throws. In a data-parallel run only the main process writes (core/distributed.h).
void write_file_atomically(const std::string& path, const std::function<void(const std::string&)>& write,
                           OutputKind kind = OutputKind::kOutput);

/// Whether no process with this id runs any more (the writer of a temporary or staging folder was killed).
bool process_has_ended(long process_id);
/// The process id that names end with (NAME.tmpPID, .robustlens-staging-PID): `digits` as a number, or 0
/// when it is not 1 to 9 decimal digits.
long parse_process_id(const std::string& digits);

/// Removes the temporaries of write_file_atomically in `folder` and below whose writer no longer runs
/// (killed before its rename); returns how many. A running process's temporaries are kept.
std::size_t remove_stale_temporaries(const std::string& folder);

void write_text_file(const std::string& path, const std::string& text, OutputKind kind = OutputKind::kOutput);
/// Pretty-printed JSON (2-space indent).
void write_json_file(const std::string& path, const nlohmann::json& json, OutputKind kind = OutputKind::kOutput);
nlohmann::json read_json_file(const std::string& path);
/// The bytes of a file; a missing or unreadable file is an Error naming it.
std::string read_text_file(const std::string& path);

/// Named tensors in one file (torch.load in Python gives a dict), written atomically.
void write_tensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors);

/// A 1-D tensor (any device, integer, bool or floating) as a JSON array.
nlohmann::json tensor_to_json(const at::Tensor& values);

}  // namespace robustlens
