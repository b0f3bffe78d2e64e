// Spectral importance throughput: coalition-image evaluations per second for
// LeNet and the small ResNet on Fashion-MNIST (M = 8 bands, K = 256 test images,
// 2^M·K = 65,536 evaluations), next to the plain forward throughput at the same
// batch size measured in the same run, and the share of the model's time spent
// building coalition images (band images once, then one addition per coalition):
//   filtering share = time to build all 2^M·K coalition images
//                     / time of 2^M·K plain forward passes.
// Aims (issue 5): filtering share ≤ 10%; analysis rate close to the forward rate.
//
//   build/bench/bench_spectral [--threads N] [--device cpu|cuda] [--images K] [--batch B]
//                              [--fills donor,noise] [--lenet FILE] [--resnet FILE]
// Without model files it trains each architecture for one epoch first.
#include "bench_support.h"
#include "robustlens/analyses/spectral_importance.h"

#include <cstdio>
#include <sstream>
#include <string>

using robustlens::bench::measure_throughput;
using robustlens::bench::seconds_of;

int run_benchmark(int argc, char** argv) {
  const robustlens::bench::Arguments args(
      argc, argv, {"--threads", "--images", "--batch", "--fills", "--lenet", "--resnet", "--device"});
  const int threads = static_cast<int>(args.integer("--threads", 1));
  const std::int64_t images = args.integer("--images", 256), batch = args.integer("--batch", 512), bands = 8;
  const std::string lenet_path = args.text("--lenet", ""), resnet_path = args.text("--resnet", ""),
                    device_name = args.text("--device", "cpu"), fills = args.text("--fills", "donor,noise");
  RL_CHECK(images >= 2 && batch >= 1, "--images must be >= 2 and --batch >= 1, got ", images, " and ", batch);
  const robustlens::bench::FashionMnistBench bench(threads, device_name);
  const at::Device device = bench.device;
  const auto synchronize = [&] { bench.synchronize(); };
  const robustlens::Dataset& test = bench.test;
  const robustlens::Dataset& train = bench.train;
  const robustlens::Dataset data = bench.first_test_images(images);
  const double evaluations = static_cast<double>((std::int64_t{1} << bands) * images);
  std::printf("bench_spectral: %s, device %s, %d threads\n", robustlens::library_versions().dump().c_str(),
              device.str().c_str(), threads);
  std::printf("%lld Fashion-MNIST test images × 2^%lld coalitions, batch %lld, output reference\n\n",
              static_cast<long long>(images), static_cast<long long>(bands), static_cast<long long>(batch));
  std::printf("%-7s %-6s %13s %10s %13s %12s %16s\n", "model", "fill", "evaluations/s", "seconds", "forward/s",
              "vs forward", "filtering share");
  for (const std::string arch : {"lenet", "resnet"}) {
    auto model = robustlens::bench::model_for(arch, arch == "lenet" ? lenet_path : resnet_path, train, test);
    model->to(device);
    model->set_training(false);
    const at::Tensor x = test.images.slice(0, 0, batch).to(device);
    const double forward = measure_throughput(
                               [&] {
                                 at::NoGradGuard no_grad;
                                 model->forward(x);
                                 synchronize();
                               },
                               static_cast<double>(x.size(0)))
                               .median;
    std::stringstream fill_list(fills);
    for (std::string fill; std::getline(fill_list, fill, ',');) {
      const auto options =
          robustlens::SpectralImportanceOptions().set_bands(bands).set_fill(fill).set_batch_size(batch);
      // Filtering alone: the band images of the K images and all 2^M coalition images.
      const at::Tensor masks = robustlens::fourier_band_masks(28, 28, bands);
      const at::Tensor on_device = data.images.to(device);
      const double filtering = seconds_of([&] {
        at::NoGradGuard no_grad;
        const at::Tensor band_images = robustlens::band_images(on_device, masks);
        const at::Tensor filler =
            robustlens::fill_band_images(band_images, masks, robustlens::parse_coalition_fill(fill));
        for (robustlens::CoalitionEnumerator all(band_images, filler, robustlens::CoalitionOutput::reference);
             !all.done(); all.advance()) {
          all.images();
        }
        synchronize();
      });
      const double seconds = seconds_of([&] {
        robustlens::analyse_spectral_importance(*model, data, options);
        synchronize();
      });
      std::printf("%-7s %-6s %13.0f %10.2f %13.0f %12.2f %15.1f%%\n", arch.c_str(), fill.c_str(), evaluations / seconds,
                  seconds, forward, evaluations / seconds / forward, 100 * filtering / (evaluations / forward));
      std::fflush(stdout);
    }
  }
  return 0;
}

int main(int argc, char** argv) {
  return robustlens::bench::run_reporting_errors([&] { return run_benchmark(argc, argv); });
}
