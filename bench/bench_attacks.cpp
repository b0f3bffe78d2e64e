// Throughput of PGD, DeepFool, FMN, the minimal-perturbation ensemble and
// integrated gradients next to the bound they are measured against, all in one
// run on the same model and images:
//   bound = input gradients (forward+backward of the cross-entropy) per second
//           at the same batch size.
// PGD with S steps needs S input gradients per sample (plus one forward to
// score the restart); DeepFool needs k−1 class-difference gradients per
// sample-iteration (k candidates; we share one forward among them); IG with S
// steps needs S gradients per sample; FMN with S steps S gradients per sample
// (in the ensemble, per correctly classified sample); the ensemble's PGD
// bisection R·S per sample it bisects; the long FMN L steps per sample still unfooled after them. Efficiency =
// gradients delivered per second / bound. The ensemble (DeepFool, FMN, PGD bisection, each candidate checked) is also
// given as a multiple of DeepFool's time alone, and timed again with its members switched on one by one.
//
//   build/bench/bench_attacks [--model FILE] [--threads N] [--samples N] [--batch N]
// Without --model it trains LeNet for one epoch on Fashion-MNIST first.
#include "bench_support.h"
#include "robustlens/attacks/deepfool.h"
#include "robustlens/attacks/minimal_perturbation.h"
#include "robustlens/attacks/pgd.h"
#include "robustlens/core/batches.h"
#include "robustlens/core/random.h"
#include "robustlens/core/runtime.h"
#include "robustlens/data/dataset_source.h"
#include "robustlens/explain/attributions.h"

#include <torch/autograd.h>

#include <chrono>
#include <cstdio>
#include <string>

using robustlens::bench::seconds_of;

int run_benchmark(int argc, char** argv) {
  const robustlens::bench::Arguments args(argc, argv, {"--model", "--threads", "--samples", "--batch"});
  const std::string model_path = args.text("--model", "");
  const int threads = static_cast<int>(args.integer("--threads", 0));
  const std::int64_t samples = args.integer("--samples", 1000), batch = args.integer("--batch", 256);
  robustlens::configure_memory_allocator();
  robustlens::configure_threads(threads);
  const robustlens::Dataset test = robustlens::load_dataset("fashion-mnist", robustlens::Split::test);
  const std::unique_ptr<robustlens::Model> model = robustlens::bench::model_for(
      "lenet", model_path, robustlens::load_dataset("fashion-mnist", robustlens::Split::train), test);
  model->set_training(false);
  const at::Tensor images = test.images.slice(0, 0, samples);
  const at::Tensor labels = test.labels.slice(0, 0, samples);
  std::printf("bench_attacks: %s\n", robustlens::library_versions().dump().c_str());
  std::printf("model %s, %lld Fashion-MNIST test images, batch %lld\n",
              model_path.empty() ? "lenet (1 epoch)" : model_path.c_str(), static_cast<long long>(samples),
              static_cast<long long>(batch));

  const at::Tensor bx = images.slice(0, 0, batch), by = labels.slice(0, 0, batch);
  const double bound = robustlens::bench::measure_throughput(
                           [&] {
                             const at::Tensor x = bx.detach().requires_grad_(true);
                             torch::autograd::grad({at::cross_entropy_loss(model->forward(x), by)}, {x});
                           },
                           static_cast<double>(batch))
                           .median;
  std::printf("bound: %.0f input gradients/s (forward+backward, median of 5)\n\n", bound);
  std::printf("%-28s %12s %14s %11s\n", "method", "samples/s", "gradients/s", "efficiency");
  const auto row = [&](const char* name, double seconds, double gradients) {
    std::printf("%-28s %12.0f %14.0f %10.2f\n", name, static_cast<double>(samples) / seconds, gradients / seconds,
                gradients / seconds / bound);
  };

  const std::int64_t steps = 10;
  const auto pgd = robustlens::PgdOptions().set_eps(1.0).set_steps(steps);
  const at::Generator generator = robustlens::make_generator(0);
  const double pgd_seconds = seconds_of([&] {
    for (const auto [begin, end] : robustlens::batches(samples, batch)) {
      robustlens::pgd_attack(*model, images.slice(0, begin, end), labels.slice(0, begin, end), pgd, generator);
    }
  });
  row("PGD-L2, 10 steps", pgd_seconds, static_cast<double>(samples * steps));

  robustlens::DeepFoolResult fooled;
  const double deepfool_seconds = seconds_of(
      [&] { fooled = robustlens::deepfool(*model, images, robustlens::DeepFoolOptions().set_batch_size(batch)); });
  const double sample_iterations = fooled.iterations.sum().item<double>();
  row("DeepFool, 10 candidates", deepfool_seconds, sample_iterations * 9);
  std::printf("%-28s mean %.2f iterations, median norm %.4f\n", "", sample_iterations / static_cast<double>(samples),
              fooled.norms.median().item<float>());

  const robustlens::FmnOptions fmn_options = robustlens::FmnOptions().set_batch_size(batch);
  robustlens::FmnResult fmn;
  const double fmn_seconds = seconds_of([&] { fmn = robustlens::fmn_attack(*model, images, labels, fmn_options); });
  row(("FMN-L2, " + std::to_string(fmn_options.steps) + " steps").c_str(), fmn_seconds,
      static_cast<double>(samples * fmn_options.steps));
  std::printf("%-28s median norm %.4f\n", "", fmn.norms.median().item<float>());

  const robustlens::MinimalPerturbationOptions ensemble_options =
      robustlens::MinimalPerturbationOptions().set_batch_size(batch);
  robustlens::MinimalPerturbationResult ensemble;
  const double ensemble_seconds =
      seconds_of([&] { ensemble = robustlens::minimal_perturbations(*model, images, labels, ensemble_options); });
  // The bisection ran on the samples that were correct with a finite minimum before it.
  // FMN ran on the images correct when clean.
  const at::Tensor before_bisection = std::get<0>(ensemble.per_attack_norms.slice(1, 0, 3).min(1));
  const at::Tensor bisected = before_bisection.gt(0).logical_and(at::isfinite(before_bisection));
  const double correct = ensemble.per_attack_norms.select(1, 0).isinf().sum().item<double>();
  // The long FMN ran on the samples still without an adversarial after the bisection.
  const at::Tensor before_long = std::get<0>(ensemble.per_attack_norms.slice(1, 0, 4).min(1));
  const double long_rows = at::isinf(before_long).sum().item<double>();
  const double ensemble_gradients =
      sample_iterations * 9 + correct * static_cast<double>(ensemble_options.fmn_options.steps) +
      bisected.sum().item<double>() *
          static_cast<double>(ensemble_options.bisection_rounds * ensemble_options.bisection_steps) +
      long_rows * static_cast<double>(ensemble_options.long_fmn_steps);
  const std::string ensemble_name = "ensemble (FMN " + std::to_string(ensemble_options.fmn_options.steps) +
                                    ", bisection " + std::to_string(ensemble_options.bisection_rounds) + "x" +
                                    std::to_string(ensemble_options.bisection_steps) + ")";
  row(ensemble_name.c_str(), ensemble_seconds, ensemble_gradients);
  std::printf("%-28s %.2fx DeepFool's time; median norm %.4f (DeepFool's %.4f); DeepFool above 1.5x on %.1f%%\n", "",
              ensemble_seconds / deepfool_seconds, ensemble.norms.median().item<double>(),
              fooled.norms.median().item<float>(), 100 * ensemble.deepfool_overestimate_share);
  // What each member adds: the ensemble again with its members switched on one by one.
  const auto ensemble_time = [&](const robustlens::MinimalPerturbationOptions& options) {
    return seconds_of([&] { robustlens::minimal_perturbations(*model, images, labels, options); });
  };
  const auto without_long = robustlens::MinimalPerturbationOptions(ensemble_options).set_long_fmn_steps(0);
  const double with_deepfool =
      ensemble_time(robustlens::MinimalPerturbationOptions(without_long).set_fmn(false).set_bisection_rounds(0));
  const double with_fmn = ensemble_time(robustlens::MinimalPerturbationOptions(without_long).set_bisection_rounds(0));
  const double with_bisection = ensemble_time(without_long);
  std::printf(
      "%-28s members: DeepFool, ray search and checks %.2f s, FMN +%.2f s, bisection +%.2f s, long FMN on %.0f "
      "images +%.2f s (DeepFool alone %.2f s)\n",
      "", with_deepfool, with_fmn - with_deepfool, with_bisection - with_fmn, long_rows,
      ensemble_seconds - with_bisection, deepfool_seconds);

  const auto ig = robustlens::AttributionOptions()
                      .set_method(robustlens::AttributionMethod::integrated_gradients)
                      .set_steps(32)
                      .set_batch_size(batch);
  const double ig_seconds = seconds_of([&] {
    for (const auto [begin, end] : robustlens::batches(samples, batch)) {
      robustlens::attribute(*model, images.slice(0, begin, end), labels.slice(0, begin, end), ig);
    }
  });
  row("integrated gradients, 32", ig_seconds, static_cast<double>(samples * 32));
  return 0;
}

int main(int argc, char** argv) {
  return robustlens::bench::run_reporting_errors([&] { return run_benchmark(argc, argv); });
}
