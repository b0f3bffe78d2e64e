// Learning-rate schedules, as pure functions of the step so that a resumed run
// follows exactly the schedule of an uninterrupted one.
#pragma once

#include "robustlens/core/options.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace robustlens {

struct ScheduleOptions {
  /// "constant", "step" (×gamma every step_epochs), "cosine" (to 0), or
  /// "onecycle" (triangular: base/25 → base over the first warmup fraction, → base/1e4 at the end).
  std::string kind = "onecycle";
  double gamma = 0.1;
  std::int64_t step_epochs = 10;
  double warmup = 0.3;

  RL_SETTER(kind)
  RL_SETTER(gamma)
  RL_SETTER(step_epochs)
  RL_SETTER(warmup)

  void check() const;
  nlohmann::json to_json() const;
};

/// Learning rate for optimiser step `step` (0-based) of `total_steps`.
double learning_rate_at(const ScheduleOptions& schedule, double base_lr, std::int64_t step, std::int64_t total_steps,
                        std::int64_t steps_per_epoch);

}  // namespace robustlens
