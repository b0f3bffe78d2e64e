// Frequency margins throughput: (sample, subspace) pairs per second for LeNet
// and the small ResNet on Fashion-MNIST (21 DCT subspaces × 100 test samples),
// and the efficiency against the cost of the passes the method requires, each
// at the best batch size measured in the same run:
//   per pair-iteration: 9 class-difference input gradients (10 candidates)
//   + 1 forward pass to check the label,
//   ideal time = Σ pair-iterations × (9 / best gradient rate + 1 / best forward rate).
// Sharing one forward pass among the 9 gradients lets the method beat this bound.
// The reference implementation computes 50–65 pairs/s on one CPU thread (LeNet).
//
//   build/bench/bench_margins [--threads N] [--device cpu|cuda] [--samples N] [--lenet FILE] [--resnet FILE]
// Without model files it trains each architecture for one epoch first.
#include "bench_support.h"
#include "robustlens/analyses/margins.h"

#include <torch/autograd.h>

#include <chrono>
#include <cstdio>
#include <string>

using robustlens::bench::measure_throughput;

int run_benchmark(int argc, char** argv) {
  const robustlens::bench::Arguments args(argc, argv, {"--threads", "--samples", "--lenet", "--resnet", "--device"});
  const int threads = static_cast<int>(args.integer("--threads", 1));
  const std::int64_t samples = args.integer("--samples", 100);
  const std::string lenet_path = args.text("--lenet", ""), resnet_path = args.text("--resnet", ""),
                    device_name = args.text("--device", "cpu");
  const robustlens::bench::FashionMnistBench bench(threads, device_name);
  const at::Device device = bench.device;
  const auto synchronize = [&] { bench.synchronize(); };
  const robustlens::Dataset& test = bench.test;
  const robustlens::Dataset& train = bench.train;
  const robustlens::Dataset data = bench.first_test_images(samples);
  std::printf("bench_margins: %s, device %s\n", robustlens::library_versions().dump().c_str(), device.str().c_str());
  std::printf(
      "%lld Fashion-MNIST test samples × 21 DCT subspaces (8×8, step 1); reference: 50-65 pairs/s on 1 thread\n\n",
      static_cast<long long>(samples));
  std::printf("%-7s %9s %10s %12s %16s %16s %11s\n", "model", "pairs/s", "seconds", "iterations", "best grad/s",
              "best fwd/s", "efficiency");
  for (const std::string arch : {"lenet", "resnet"}) {
    auto model = robustlens::bench::model_for(arch, arch == "lenet" ? lenet_path : resnet_path, train, test);
    model->to(device);
    model->set_training(false);
    double best_gradient = 0, best_forward = 0;
    for (const std::int64_t batch : {32, 128, 256, 512}) {
      const at::Tensor x = test.images.slice(0, 0, batch).to(device), y = test.labels.slice(0, 0, batch).to(device);
      best_gradient = std::max(best_gradient, measure_throughput(
                                                  [&] {
                                                    const at::Tensor leaf = x.detach().requires_grad_(true);
                                                    torch::autograd::grad(
                                                        {at::cross_entropy_loss(model->forward(leaf), y)}, {leaf});
                                                    synchronize();
                                                  },
                                                  static_cast<double>(batch))
                                                  .median);
      best_forward = std::max(best_forward, measure_throughput(
                                                [&] {
                                                  at::NoGradGuard no_grad;
                                                  model->forward(x);
                                                  synchronize();
                                                },
                                                static_cast<double>(batch))
                                                .median);
    }
    const auto options = robustlens::MarginOptions().set_full_space(false).set_batch_size(256);
    robustlens::analyse_margins(*model, data.subset({0, 1}), options);  // warm-up
    const auto start = std::chrono::steady_clock::now();
    const robustlens::MarginResult result = robustlens::analyse_margins(*model, data, options);
    synchronize();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double pair_iterations = 0;
    for (const auto& s : result.per_subspace) pair_iterations += s.iterations.sum().item<double>();
    const double pairs = static_cast<double>(samples * result.subspaces.count());
    const double ideal = pair_iterations * (9 / best_gradient + 1 / best_forward);
    std::printf("%-7s %9.0f %10.2f %12.0f %16.0f %16.0f %11.2f\n", arch.c_str(), pairs / seconds, seconds,
                pair_iterations, best_gradient, best_forward, ideal / seconds);
    std::fflush(stdout);
  }
  return 0;
}

int main(int argc, char** argv) {
  return robustlens::bench::run_reporting_errors([&] { return run_benchmark(argc, argv); });
}
