// Progress reporting: library code calls a ProgressCallback; the CLI turns it
// into a terminal progress bar (only when stderr is a terminal), the Python module into its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

namespace robustlens {

struct ProgressUpdate {
  std::string task;    ///< e.g. "epoch 2/3"
  std::int64_t done;   ///< units finished
  std::int64_t total;  ///< units in the task
  std::string status;  ///< short free text, e.g. "loss 0.41"
};

using ProgressCallback = std::function<void(const ProgressUpdate&)>;

/// Calls the callback if there is one.
inline void report(const ProgressCallback& callback, const ProgressUpdate& update) {
  if (callback) callback(update);
}

/// A one-line bar redrawn in place: "epoch 1/3 [#####.....] 512/60000 1.2k/s loss 0.41".
/// Redraws at most every 100 ms; finishes the line when done == total.
class TerminalProgressBar {
 public:
  explicit TerminalProgressBar(std::FILE* stream = stderr);
  void operator()(const ProgressUpdate& update);

 private:
  std::FILE* stream_;
  bool enabled_;
  std::string current_task_;
  std::chrono::steady_clock::time_point task_start_, last_draw_;
};

/// A callback drawing a TerminalProgressBar on stderr, or doing nothing when
/// stderr is not a terminal (logs and CI stay clean); while a sink is set, the sink's callback instead.
ProgressCallback terminal_progress();

/// While `make` is set (not empty), terminal_progress() returns make() instead of a bar on stderr: how the Python
/// module (python/) shows progress in notebooks and checks for Ctrl-C as the work goes on.
void set_progress_sink(std::function<ProgressCallback()> make);

}  // namespace robustlens
