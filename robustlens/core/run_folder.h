// A command's outputs appear all together or not at all.
//
// While a run is open on a folder, every output that write_file_atomically writes below that folder goes to
// FOLDER/.robustlens-staging-PID instead, and commit() moves the staged files into place. A run that fails
// (an exception) or is killed leaves no output under a final name: an abandoned run's staging folder is removed at
// once, a killed run's by the next run below the same folder. The commit first writes its plan into the staging
// folder, then moves; a commit killed half-way is finished by the next run from that plan.
//
// The folder's manifest (FOLDER/robustlens-run.json) lists what its last committed run wrote. A rerun into the
// same folder replaces the previous run's outputs: what the previous manifest listed and the new run neither
// wrote nor kept is removed at the commit, so that two runs' files never mix. Files no manifest lists (the
// user's own, training checkpoints) are never removed.
//
// Runs nest (an audit's steps, a sweep's models): an output belongs to the innermost open run whose folder
// holds it, and a nested run's folder, once committed, is part of the enclosing run's outputs. The nested runs
// that a failed or killed run committed stay (a rerun reuses them) and are added to the folder's manifest as
// "unfinished": the next run to commit there removes those it did not reuse.
#pragma once

#include <cstddef>
#include <string>

namespace robustlens {

/// The manifest of a folder's last committed run: {"format", "outputs": [relative paths], "parts": [nested
/// runs' folders and outputs kept from an earlier run]}, and "unfinished": [parts of runs that did not finish].
inline constexpr const char* kRunManifestName = "robustlens-run.json";

/// Opens a run on `folder` (which must exist). Before that, the staging folders of killed runs at or below
/// `folder` are removed, or their commit finished when they had started it; returns how many were found.
std::size_t open_run(const std::string& folder);

/// Where an output for `path` is written: its place in the staging folder of the innermost open run whose
/// folder holds `path` (recorded as that run's output), or `path` itself when no open run holds it.
std::string staged_output_path(const std::string& path);

/// Keeps `path` (a file or folder that an earlier run wrote below the innermost open run's folder and this run
/// reuses, e.g. an audit step finished earlier) among the outputs of that run, so that its commit keeps it.
void keep_output(const std::string& path);

/// The runs opened while it lives: commit() commits them (innermost first); the destructor abandons those not
/// committed (an exception left the command), removing what they staged.
class RunScope {
 public:
  RunScope();
  ~RunScope();
  RunScope(const RunScope&) = delete;
  RunScope& operator=(const RunScope&) = delete;
  void commit();

 private:
  std::size_t first_;  ///< the number of runs open before this scope
};

}  // namespace robustlens
