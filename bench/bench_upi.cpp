// UPI throughput: wall time of UPI-PCA and UPI-Grad on 1,000 Fashion-MNIST
// attack images for LeNet and the small ResNet, next to the cost of the passes
// each method requires, measured in the same run at the same batch size:
//   map            one interpretation map (forward + backward)
//   map gradient   the gradient of a map's dissimilarity (double backprop)
//   UPI-PCA bound  n maps + n map gradients + 4n maps (the sign: clean and
//                  perturbed maps of the attack images, for +delta and −delta)
//   UPI-Grad bound n maps + passes·n map gradients
// Efficiency = bound / measured (aim ≥ 0.7).
//
//   build/bench/bench_upi [--threads N] [--device cpu|cuda] [--images N] [--batch B]
//                         [--passes P] [--explainer saliency|ig] [--lenet FILE] [--resnet FILE]
#include "bench_support.h"
#include "robustlens/analyses/upi.h"

#include <cstdio>
#include <string>

using robustlens::bench::measure_throughput;
using robustlens::bench::seconds_of;

int run_benchmark(int argc, char** argv) {
  const robustlens::bench::Arguments args(
      argc, argv, {"--threads", "--images", "--batch", "--passes", "--explainer", "--lenet", "--resnet", "--device"});
  const int threads = static_cast<int>(args.integer("--threads", 1));
  const std::int64_t images = args.integer("--images", 1000), batch = args.integer("--batch", 32),
                     passes = args.integer("--passes", 20);
  const std::string lenet_path = args.text("--lenet", ""), resnet_path = args.text("--resnet", ""),
                    device_name = args.text("--device", "cpu"), explainer = args.text("--explainer", "saliency");
  RL_CHECK(images >= 1 && batch >= 1 && passes >= 1, "--images, --batch and --passes must be >= 1");
  const robustlens::bench::FashionMnistBench bench(threads, device_name);
  const robustlens::Dataset data = bench.first_test_images(images);
  const robustlens::UpiOptions options =
      robustlens::UpiOptions()
          .set_attribution(robustlens::AttributionOptions().set_softmax(true).set_method(
              robustlens::parse_attribution_method(explainer)))
          .set_passes(passes)
          .set_batch_size(batch);
  std::printf("bench_upi: %s, device %s, %d threads\n", robustlens::library_versions().dump().c_str(),
              bench.device.str().c_str(), threads);
  std::printf("%lld Fashion-MNIST images, %s maps, batch %lld, UPI-Grad %lld passes\n\n",
              static_cast<long long>(images), explainer.c_str(), static_cast<long long>(batch),
              static_cast<long long>(passes));
  std::printf("%-7s %10s %15s %10s %10s %11s %10s %10s %11s\n", "model", "maps/s", "map grads/s", "PCA s", "PCA bound",
              "efficiency", "Grad s", "Grad bound", "efficiency");
  for (const std::string arch : {"lenet", "resnet"}) {
    auto model =
        robustlens::bench::model_for(arch, arch == "lenet" ? lenet_path : resnet_path, bench.train, bench.test);
    model->to(bench.device);
    model->set_training(false);
    const at::Tensor x = data.images.slice(0, 0, batch).to(bench.device),
                     y = data.labels.slice(0, 0, batch).to(bench.device);
    const double units = static_cast<double>(x.size(0));
    const at::Tensor clean = robustlens::interpretation_maps(*model, x, y, options.attribution);
    const double maps = measure_throughput(
                            [&] {
                              robustlens::interpretation_maps(*model, x, y, options.attribution);
                              bench.synchronize();
                            },
                            units)
                            .median;
    const double gradients = measure_throughput(
                                 [&] {
                                   robustlens::map_attack_gradients(*model, x, clean, y, options.attribution);
                                   bench.synchronize();
                                 },
                                 units)
                                 .median;
    const auto n = static_cast<double>(images);
    const double pca_seconds = seconds_of([&] {
      const at::Tensor direction = robustlens::upi_pca_direction(*model, data, options, robustlens::make_generator(0));
      robustlens::upi_pca(*model, data, direction, 1.0, options);
      bench.synchronize();
    });
    const double pca_bound = n / maps + n / gradients + 4 * n / maps;
    const double grad_seconds = seconds_of([&] {
      robustlens::upi_grad(*model, data, 1.0, options, robustlens::make_generator(0));
      bench.synchronize();
    });
    const double grad_bound = n / maps + static_cast<double>(passes) * n / gradients;
    std::printf("%-7s %10.0f %15.0f %10.2f %10.2f %11.2f %10.2f %10.2f %11.2f\n", arch.c_str(), maps, gradients,
                pca_seconds, pca_bound, pca_bound / pca_seconds, grad_seconds, grad_bound, grad_bound / grad_seconds);
    std::fflush(stdout);
  }
  return 0;
}

int main(int argc, char** argv) {
  return robustlens::bench::run_reporting_errors([&] { return run_benchmark(argc, argv); });
}
