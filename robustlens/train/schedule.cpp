#include "robustlens/train/schedule.h"

#include "robustlens/core/error.h"

#include <cmath>

namespace robustlens {

void ScheduleOptions::check() const {
  RL_CHECK(kind == "constant" || kind == "step" || kind == "cosine" || kind == "onecycle",
           "ScheduleOptions.kind: expected constant, step, cosine or onecycle, got '", kind, "'");
  RL_CHECK(gamma > 0 && gamma <= 1, "ScheduleOptions.gamma must lie in (0,1], got ", gamma);
  RL_CHECK(step_epochs >= 1, "ScheduleOptions.step_epochs must be >= 1, got ", step_epochs);
  RL_CHECK(warmup > 0 && warmup < 1, "ScheduleOptions.warmup must lie in (0,1), got ", warmup);
}

nlohmann::json ScheduleOptions::to_json() const {
  return {{"kind", kind}, {"gamma", gamma}, {"step_epochs", step_epochs}, {"warmup", warmup}};
}

double learning_rate_at(const ScheduleOptions& schedule, double base_lr, std::int64_t step, std::int64_t total_steps,
                        std::int64_t steps_per_epoch) {
  const double progress = total_steps > 1 ? static_cast<double>(step) / static_cast<double>(total_steps - 1) : 0.0;
  if (schedule.kind == "step") {
    return base_lr * std::pow(schedule.gamma, static_cast<double>(step / steps_per_epoch / schedule.step_epochs));
  }
  if (schedule.kind == "cosine") return base_lr * 0.5 * (1.0 + std::cos(M_PI * progress));
  if (schedule.kind == "onecycle") {
    const double start = base_lr / 25.0, end = base_lr / 1e4;
    if (progress < schedule.warmup) return start + (base_lr - start) * progress / schedule.warmup;
    return base_lr + (end - base_lr) * (progress - schedule.warmup) / (1.0 - schedule.warmup);
  }
  return base_lr;
}

}  // namespace robustlens
