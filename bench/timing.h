// Shared by the benchmark programs. Wall-clock throughput measurement: warm up, then
// time several repetitions of at least `min_seconds` each and report the median
// rate. (Google Benchmark's rate counters divide by process CPU time, which
// counts every worker thread and OpenMP spin-waits: wrong for samples/s.)
#pragma once

#include "robustlens/core/error.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <vector>

namespace robustlens::bench {

struct Throughput {
  double median;  ///< units per second
  double low, high;  ///< slowest and fastest repetition
};

/// `step` processes `units` units (e.g. samples) once.
inline Throughput measure_throughput(const std::function<void()>& step, double units, int repetitions = 5,
                                     double min_seconds = 0.3) {
  using clock = std::chrono::steady_clock;
  for (int i = 0; i < 2; ++i) step();  // warm-up: allocator, oneDNN primitive caches
  std::vector<double> rates;
  for (int r = 0; r < repetitions; ++r) {
    std::int64_t calls = 0;
    const auto start = clock::now();
    double elapsed = 0;
    do {
      step();
      ++calls;
      elapsed = std::chrono::duration<double>(clock::now() - start).count();
    } while (elapsed < min_seconds);
    rates.push_back(static_cast<double>(calls) * units / elapsed);
  }
  std::sort(rates.begin(), rates.end());
  return {rates[rates.size() / 2], rates.front(), rates.back()};
}

/// Runs a benchmark's body; an error (bad option, missing data) becomes one
/// "error: ..." line and exit status 2 instead of a crash.
inline int run_reporting_errors(const std::function<int()>& body) {
  try {
    return body();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "error: %s\n", robustlens::first_line(error.what()).c_str());
    return 2;
  }
}

}  // namespace robustlens::bench
