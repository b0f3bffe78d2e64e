// What the commands tell their user on standard output (summaries, notices) goes through console::print, so that
// an embedding can take it instead: the Python module writes it to sys.stdout (a notebook shows it under the cell)
// or drops it (quiet=True). Errors and progress bars have their own channels (stderr; core/progress.h).
#pragma once

#include <functional>
#include <string>

namespace robustlens::console {

/// printf-style text to the sink, or to stdout while none is set.
void print(const char* format, ...) __attribute__((format(printf, 1, 2)));

/// Sends what print writes to `sink` (one call per print) instead of stdout; an empty function restores stdout.
/// The process's: one command at a time sets it.
void set_sink(std::function<void(const std::string&)> sink);

}  // namespace robustlens::console
