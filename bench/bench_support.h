// Shared by the benchmark programs: wall-clock throughput measurement (warm up,
// then time several repetitions of at least `min_seconds` each and report the
// median rate; Google Benchmark's rate counters divide by process CPU time,
// which counts every worker thread and OpenMP spin-waits: wrong for samples/s),
// the model a benchmark runs on, and error reporting.
#pragma once

#include "robustlens/core/error.h"
#include "robustlens/core/random.h"
#include "robustlens/core/runtime.h"
#include "robustlens/data/dataset.h"
#include "robustlens/data/dataset_source.h"
#include "robustlens/models/builtin_model.h"
#include "robustlens/models/load_model.h"
#include "robustlens/train/trainer.h"

#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace robustlens::bench {

struct Throughput {
  double median;     ///< units per second
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

/// A benchmark's "--name value" options; a name not in `known`, a missing value
/// or a malformed number is an error that names it.
class Arguments {
 public:
  Arguments(int argc, char** argv, const std::vector<std::string>& known) {
    for (int i = 1; i < argc; i += 2) {
      const std::string name = argv[i];
      RL_CHECK(std::find(known.begin(), known.end(), name) != known.end(), "unknown option '", name, "'");
      RL_CHECK(i + 1 < argc, "option ", name, " needs a value");
      values_[name] = argv[i + 1];
    }
  }
  std::string text(const std::string& name, const std::string& fallback) const {
    const auto found = values_.find(name);
    return found == values_.end() ? fallback : found->second;
  }
  std::int64_t integer(const std::string& name, std::int64_t fallback) const {
    const auto found = values_.find(name);
    if (found == values_.end()) return fallback;
    char* end = nullptr;
    const long long value = std::strtoll(found->second.c_str(), &end, 10);
    RL_CHECK(end != found->second.c_str() && *end == '\0', "option ", name, ": '", found->second,
             "' is not an integer");
    return value;
  }

 private:
  std::map<std::string, std::string> values_;
};

/// Seconds of one run of `work` after one warm-up run.
inline double seconds_of(const std::function<void()>& work) {
  work();
  const auto start = std::chrono::steady_clock::now();
  work();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// The model file at `path` or, without one, the built-in `arch` trained for
/// one epoch (its speed is what is measured; the epoch makes its outputs those
/// of a real classifier).
inline std::unique_ptr<Model> model_for(const std::string& arch, const std::string& path, const Dataset& train,
                                        const Dataset& test) {
  if (!path.empty()) return load_model(path, at::kCPU);
  std::unique_ptr<BuiltinModel> model;
  with_global_seed(
      0, [&] { model = std::make_unique<BuiltinModel>(ArchitectureSpec().set_name(arch), test.class_names); });
  train_model(*model, train, test, TrainOptions().set_epochs(1));
  return model;
}

/// What a benchmark on Fashion-MNIST starts from: allocator and threads set,
/// the device resolved, both splits loaded.
struct FashionMnistBench {
  at::Device device;
  Dataset train, test;

  FashionMnistBench(int threads, const std::string& device_name)
      : device((configure_memory_allocator(), configure_threads(threads), resolve_device(device_name))),
        train(load_dataset("fashion-mnist", Split::train)),
        test(load_dataset("fashion-mnist", Split::test)) {}

  /// Waits for queued device work, so that wall-clock times are complete.
  void synchronize() const {
    if (device.is_cuda()) torch::cuda::synchronize();
  }
  /// The first `count` test images.
  Dataset first_test_images(std::int64_t count) const {
    std::vector<std::int64_t> first(static_cast<std::size_t>(count));
    for (std::int64_t i = 0; i < count; ++i) first[i] = i;
    return test.subset(first);
  }
};

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
