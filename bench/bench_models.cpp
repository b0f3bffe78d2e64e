// Throughput of the built-in architectures on Fashion-MNIST-shaped input: forward
// (no autograd), forward+backward to the input (what attacks and attributions
// need) and a full SGD training step, in samples/s at batch sizes 1 to 512.
// These are the bounds every analysis is later measured against.
//
//   build/bench/bench_models [--threads N] [--device cpu|cuda] [--arch lenet]
// Prints one row per (architecture, batch): the median of 5 wall-clock
// repetitions of >= 0.3 s, with the slowest and fastest in brackets.
#include "bench_support.h"
#include "robustlens/core/runtime.h"
#include "robustlens/models/builtin_model.h"
#include "robustlens/train/objectives.h"

#include <torch/autograd.h>
#include <torch/cuda.h>
#include <torch/optim/sgd.h>
#include <torch/utils.h>

#include <cstdio>
#include <string>

namespace {

using robustlens::bench::measure_throughput;
using robustlens::bench::Throughput;

void synchronize(const at::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

std::string cell(const Throughput& t) {
  char text[64];
  std::snprintf(text, sizeof text, "%9.0f [%.0f-%.0f]", t.median, t.low, t.high);
  return text;
}

}  // namespace

int run_benchmark(int argc, char** argv) {
  const robustlens::bench::Arguments args(argc, argv, {"--threads", "--device", "--arch"});
  const int threads = static_cast<int>(args.integer("--threads", 0));
  const std::string device_name = args.text("--device", "cpu"), only_arch = args.text("--arch", "");
  robustlens::configure_memory_allocator();
  robustlens::configure_threads(threads);
  const at::Device device = robustlens::resolve_device(device_name);
  std::printf("bench_models: %s\n", robustlens::library_versions().dump().c_str());
  std::printf("device %s; samples/s, median [slowest-fastest] of 5 repetitions\n", device.str().c_str());
  std::printf("%-7s %6s %24s %24s %24s\n", "arch", "batch", "forward", "forward+backward", "training step");
  for (const std::string arch : {"mlp", "lenet", "resnet"}) {
    if (!only_arch.empty() && arch != only_arch) continue;
    for (const std::int64_t batch : {1, 8, 32, 128, 512}) {
      torch::manual_seed(0);
      robustlens::BuiltinModel model(robustlens::ArchitectureSpec().set_name(arch), {});
      model.to(device);
      const at::Tensor images = at::rand({batch, 1, 28, 28}).to(device);
      const at::Tensor labels = at::randint(10, {batch}, at::kLong).to(device);

      model.set_training(false);
      const Throughput forward = measure_throughput(
          [&] {
            at::NoGradGuard no_grad;
            model.forward(images);
            synchronize(device);
          },
          static_cast<double>(batch));
      const Throughput forward_backward = measure_throughput(
          [&] {
            const at::Tensor x = images.detach().requires_grad_(true);
            torch::autograd::grad({at::cross_entropy_loss(model.forward(x), labels)}, {x});
            synchronize(device);
          },
          static_cast<double>(batch));

      model.set_training(true);
      torch::optim::SGD optimizer(model.parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
      const robustlens::ObjectiveOptions standard;
      const Throughput training = measure_throughput(
          [&] {
            optimizer.zero_grad();
            robustlens::objective_loss(model, images, labels, standard).loss.backward();
            optimizer.step();
            synchronize(device);
          },
          static_cast<double>(batch));
      std::printf("%-7s %6lld %24s %24s %24s\n", arch.c_str(), static_cast<long long>(batch), cell(forward).c_str(),
                  cell(forward_backward).c_str(), cell(training).c_str());
      std::fflush(stdout);
    }
  }
  return 0;
}

int main(int argc, char** argv) {
  return robustlens::bench::run_reporting_errors([&] { return run_benchmark(argc, argv); });
}
