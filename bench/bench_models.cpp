// Throughput of the built-in architectures: forward, forward+backward (input
// gradient, as attacks and attributions need it) and a full training step,
// in samples/s at batch sizes 1 to 512 on Fashion-MNIST-shaped input. These are
// the bounds every analysis is later measured against.
//
//   build/bench/bench_models [--threads N] [--benchmark_filter=lenet]
// Medians of 3 repetitions are reported (column samples/s).
#include "robustlens/core/runtime.h"
#include "robustlens/models/builtin_model.h"
#include "robustlens/train/objectives.h"

#include <benchmark/benchmark.h>
#include <torch/autograd.h>
#include <torch/optim/sgd.h>
#include <torch/utils.h>

#include <cstring>
#include <string>

namespace {

using robustlens::ArchitectureSpec;
using robustlens::BuiltinModel;

struct Fixture {
  explicit Fixture(const std::string& arch, std::int64_t batch)
      : model((torch::manual_seed(0), ArchitectureSpec().set_name(arch)), {}),
        images(at::rand({batch, 1, 28, 28})),
        labels(at::randint(10, {batch}, at::kLong)) {}
  BuiltinModel model;
  at::Tensor images, labels;
};

void set_rate(benchmark::State& state) {
  state.counters["samples/s"] = benchmark::Counter(static_cast<double>(state.iterations() * state.range(0)),
                                                   benchmark::Counter::kIsRate);
}

void forward(benchmark::State& state, const std::string& arch) {
  Fixture f(arch, state.range(0));
  f.model.set_training(false);
  at::NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(f.model.forward(f.images));
  set_rate(state);
}

void forward_backward(benchmark::State& state, const std::string& arch) {
  Fixture f(arch, state.range(0));
  f.model.set_training(false);
  for (auto _ : state) {
    const at::Tensor x = f.images.detach().requires_grad_(true);
    const at::Tensor loss = at::cross_entropy_loss(f.model.forward(x), f.labels);
    benchmark::DoNotOptimize(torch::autograd::grad({loss}, {x})[0]);
  }
  set_rate(state);
}

void training_step(benchmark::State& state, const std::string& arch) {
  Fixture f(arch, state.range(0));
  f.model.set_training(true);
  torch::optim::SGD optimizer(f.model.parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  const robustlens::ObjectiveOptions standard;
  for (auto _ : state) {
    optimizer.zero_grad();
    robustlens::objective_loss(f.model, f.images, f.labels, standard).loss.backward();
    optimizer.step();
  }
  set_rate(state);
}

void batch_sizes(benchmark::internal::Benchmark* b) {
  for (const int batch : {1, 8, 32, 128, 512}) b->Arg(batch);
  b->ArgName("batch")->UseRealTime()->Repetitions(3)->ReportAggregatesOnly(true)->Unit(benchmark::kMillisecond);
}

BENCHMARK_CAPTURE(forward, mlp, std::string("mlp"))->Apply(batch_sizes);
BENCHMARK_CAPTURE(forward, lenet, std::string("lenet"))->Apply(batch_sizes);
BENCHMARK_CAPTURE(forward, resnet, std::string("resnet"))->Apply(batch_sizes);
BENCHMARK_CAPTURE(forward_backward, mlp, std::string("mlp"))->Apply(batch_sizes);
BENCHMARK_CAPTURE(forward_backward, lenet, std::string("lenet"))->Apply(batch_sizes);
BENCHMARK_CAPTURE(forward_backward, resnet, std::string("resnet"))->Apply(batch_sizes);
BENCHMARK_CAPTURE(training_step, mlp, std::string("mlp"))->Apply(batch_sizes);
BENCHMARK_CAPTURE(training_step, lenet, std::string("lenet"))->Apply(batch_sizes);
BENCHMARK_CAPTURE(training_step, resnet, std::string("resnet"))->Apply(batch_sizes);

}  // namespace

int main(int argc, char** argv) {
  int threads = 0;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--threads") == 0) threads = std::stoi(argv[i + 1]);
  }
  const int used = robustlens::configure_threads(threads);
  benchmark::AddCustomContext("threads", std::to_string(used));
  benchmark::AddCustomContext("libtorch", robustlens::library_versions()["libtorch"].get<std::string>());
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
