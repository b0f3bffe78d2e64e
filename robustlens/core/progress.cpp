#include "robustlens/core/progress.h"

#include "robustlens/core/distributed.h"

#include <unistd.h>

#include <memory>
#include <utility>

namespace robustlens {

TerminalProgressBar::TerminalProgressBar(std::FILE* stream) : stream_(stream), enabled_(isatty(fileno(stream)) != 0) {}

void TerminalProgressBar::operator()(const ProgressUpdate& update) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (update.task != current_task_) {
    current_task_ = update.task;
    task_start_ = now;
    last_draw_ = {};
  }
  const bool finished = update.total > 0 && update.done >= update.total;
  if (!finished && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;

  constexpr int kWidth = 30;
  const double fraction = update.total > 0 ? std::min(1.0, static_cast<double>(update.done) / update.total) : 0.0;
  const int filled = static_cast<int>(fraction * kWidth);
  std::string bar(filled, '#');
  bar.append(kWidth - filled, '.');
  const double seconds = std::chrono::duration<double>(now - task_start_).count();
  const double rate = seconds > 0 ? update.done / seconds : 0.0;
  std::fprintf(stream_, "\r\033[K%s [%s] %lld/%lld %.0f/s %s", update.task.c_str(), bar.c_str(),
               static_cast<long long>(update.done), static_cast<long long>(update.total), rate, update.status.c_str());
  if (finished) std::fprintf(stream_, "  (%.1f s)\n", seconds);
  std::fflush(stream_);
}

namespace {
std::function<ProgressCallback()>& progress_sink() {
  static std::function<ProgressCallback()> sink;
  return sink;
}
}  // namespace

void set_progress_sink(std::function<ProgressCallback()> make) { progress_sink() = std::move(make); }

ProgressCallback terminal_progress() {
  if (progress_sink()) return progress_sink()();
  if (!distributed::is_main_process()) return {};  // one bar per data-parallel run, rank 0's
  auto bar = std::make_shared<TerminalProgressBar>(stderr);
  return [bar](const ProgressUpdate& update) { (*bar)(update); };
}

}  // namespace robustlens
