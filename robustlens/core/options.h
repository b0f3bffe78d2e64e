// The setters of the Options structs, declared once. After a field
//   std::int64_t batch_size = 128;
// RL_SETTER(batch_size) declares
//   Options& set_batch_size(std::int64_t value) { batch_size = std::move(value); return *this; }
// so that options chain: RobustnessOptions().set_eps({0.5}).set_steps(20).
#pragma once

#include <utility>

#define RL_SETTER(name)                    \
  auto& set_##name(decltype(name) value) { \
    name = std::move(value);               \
    return *this;                          \
  }
