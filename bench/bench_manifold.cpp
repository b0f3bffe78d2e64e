// Throughput of the manifold analyses on Fashion-MNIST (28×28), each next to
// the passes it needs, measured in the same run at the same batch size:
//   VAE tangent spaces   k Jacobian-vector products (double backprop) + QR per
//                        image; shown beside one forward+backward of the
//                        decoder on the same N·k rows (cost in such passes)
//   local PCA            nearest neighbours among the 6,000 training images of
//                        the image's class, SVD of the 64 neighbours
//   tangent sensitivity  bound = tangent spaces + one logit gradient + (1 + 2·draws·|eps|)
//                        classifier forwards per image
//   alignment            bound = one logit gradient + one denoiser pass per image
// and the wall time of one sweep model per objective: training (--sweep-epochs
// on --sweep-samples images) and the sweep's measures on --images test images.
// Without --vae/--denoiser the generative models are untrained (their speed does
// not depend on their weights); without --lenet a LeNet is trained for one epoch.
//
//   build/bench/bench_manifold [--threads N] [--device cpu|cuda] [--images N] [--batch B]
//                              [--vae FILE] [--denoiser FILE] [--lenet FILE]
//                              [--sweep-samples N] [--sweep-epochs E]
#include "bench_support.h"
#include "robustlens/analyses/sweep.h"
#include "robustlens/data/sample_selection.h"
#include "robustlens/generative/denoiser.h"
#include "robustlens/generative/vae.h"
#include "robustlens/train/objectives.h"

#include <torch/autograd.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

using robustlens::bench::measure_throughput;
using robustlens::bench::seconds_of;

namespace {

double elapsed_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int run_benchmark(int argc, char** argv) {
  const robustlens::bench::Arguments args(argc, argv,
                                          {"--threads", "--device", "--images", "--batch", "--vae", "--denoiser",
                                           "--lenet", "--sweep-samples", "--sweep-epochs"});
  const int threads = static_cast<int>(args.integer("--threads", 1));
  const std::int64_t images = args.integer("--images", 500), batch = args.integer("--batch", 64),
                     sweep_samples = args.integer("--sweep-samples", 10000),
                     sweep_epochs = args.integer("--sweep-epochs", 1);
  RL_CHECK(images >= 1 && batch >= 1 && sweep_samples >= 1 && sweep_epochs >= 1,
           "--images, --batch, --sweep-samples and --sweep-epochs must be >= 1");
  const robustlens::bench::FashionMnistBench bench(threads, args.text("--device", "cpu"));
  const at::Device device = bench.device;
  const robustlens::Dataset data = bench.first_test_images(images);
  std::printf("bench_manifold: %s, device %s, %d threads\n", robustlens::library_versions().dump().c_str(),
              device.str().c_str(), threads);

  std::unique_ptr<robustlens::Vae> vae = args.text("--vae", "").empty()
                                             ? std::make_unique<robustlens::Vae>(robustlens::VaeSpec())
                                             : robustlens::load_vae(args.text("--vae", ""), device);
  vae->to(device);
  std::unique_ptr<robustlens::Denoiser> denoiser =
      args.text("--denoiser", "").empty() ? std::make_unique<robustlens::Denoiser>(robustlens::DenoiserSpec())
                                          : robustlens::load_denoiser(args.text("--denoiser", ""), device);
  denoiser->to(device);
  auto model = robustlens::bench::model_for("lenet", args.text("--lenet", ""), bench.train, bench.test);
  model->to(device);
  model->set_training(false);
  const std::int64_t k = vae->spec().latent_dim;
  const at::Tensor x = data.images.slice(0, 0, batch).to(device), y = data.labels.slice(0, 0, batch).to(device);
  const double units = static_cast<double>(x.size(0));
  const auto synchronized = [&](const std::function<void()>& work) {
    return [&, work] {
      work();
      bench.synchronize();
    };
  };

  std::printf("\n%lld images, batch %lld, VAE k = %lld (hidden %lld), denoiser %lld channels\n\n",
              static_cast<long long>(images), static_cast<long long>(batch), static_cast<long long>(k),
              static_cast<long long>(vae->spec().hidden), static_cast<long long>(denoiser->spec().channels));
  const double tangents =
      measure_throughput(synchronized([&] { robustlens::vae_tangent_basis(*vae, x, batch); }), units).median;
  at::Tensor latents;
  {
    at::NoGradGuard no_grad;
    latents = vae->encode_mean(x).repeat_interleave(k, 0);
  }
  const double decoder_passes = measure_throughput(synchronized([&] {
                                                     const at::Tensor z = latents.detach().requires_grad_(true);
                                                     vae->decode(z).sum().backward();
                                                   }),
                                                   units)
                                    .median;
  std::printf("%-22s %10.0f images/s  (%.2f decoder forward+backward passes on the k rows of an image)\n",
              "VAE tangent spaces", tangents, decoder_passes / tangents);
  const double pca =
      measure_throughput(synchronized([&] { robustlens::local_pca_basis(x, y, bench.train, 64, k); }), units, 3).median;
  std::printf("%-22s %10.0f images/s  (64 neighbours, k = %lld, against the 60,000 training images)\n", "local PCA",
              pca, static_cast<long long>(k));

  const robustlens::TangentOptions tangent_options = robustlens::TangentOptions().set_batch_size(batch);
  const std::int64_t rows = 2 * tangent_options.draws * batch;
  const at::Tensor many = x.repeat({2 * tangent_options.draws, 1, 1, 1});
  const double forwards = measure_throughput(synchronized([&] {
                                               at::NoGradGuard no_grad;
                                               model->forward(many);
                                             }),
                                             static_cast<double>(rows))
                              .median;
  const double gradients =
      measure_throughput(synchronized([&] { robustlens::predicted_logit_gradient(*model, x); }), units).median;
  const robustlens::TangentBasis basis = [&](const at::Tensor& images, const at::Tensor&) {
    return robustlens::vae_tangent_basis(*vae, images, batch);
  };
  const auto n = static_cast<double>(images);
  const double sensitivity_seconds = seconds_of([&] {
    robustlens::analyse_tangent_sensitivity(*model, data, basis, tangent_options, robustlens::make_generator(0));
    bench.synchronize();
  });
  const double forwards_per_image =
      1 + 2 * static_cast<double>(tangent_options.draws * static_cast<std::int64_t>(tangent_options.eps.size()));
  // Two gradients (of the tangent fraction and of the first-order sensitivities) from one forward pass: at most two
  // full passes.
  const double sensitivity_bound = n / tangents + 2 * n / gradients + n * forwards_per_image / forwards;
  std::printf("%-22s %10.0f images/s  bound %.0f images/s, efficiency %.2f (%zu eps, %lld draws)\n",
              "tangent sensitivity", n / sensitivity_seconds, n / sensitivity_bound,
              sensitivity_bound / sensitivity_seconds, tangent_options.eps.size(),
              static_cast<long long>(tangent_options.draws));

  const robustlens::ScoreFunction score = [&](const at::Tensor& images, const at::Tensor& labels, double sigma) {
    return robustlens::denoiser_score(*denoiser, images, labels, sigma, batch);
  };
  // The bound of a pairing: one classifier backward plus its denoiser forwards at every noise level.
  const double scores = measure_throughput(synchronized([&] { score(x, y, 0.5); }), units).median;
  const double label_gradients =
      measure_throughput(synchronized([&] {
                           robustlens::alignment_gradient(*model, x, y, robustlens::AlignmentPairing::conditional);
                         }),
                         units)
          .median;
  for (const robustlens::AlignmentPairing pairing :
       {robustlens::AlignmentPairing::conditional, robustlens::AlignmentPairing::bayes}) {
    const robustlens::AlignmentOptions options =
        robustlens::AlignmentOptions().set_pairing(pairing).set_batch_size(batch);
    const double alignment_seconds = seconds_of([&] {
      robustlens::analyse_alignment(*model, data, score, options);
      bench.synchronize();
    });
    const double denoiser_passes =
        static_cast<double>(options.sigmas.size()) * (pairing == robustlens::AlignmentPairing::bayes ? 2 : 1);
    const double alignment_bound = n / label_gradients + n * denoiser_passes / scores;
    std::printf(
        "%-22s %10.0f images/s  bound %.0f images/s, efficiency %.2f (%zu sigmas, %.0f denoiser passes; "
        "denoiser alone %.0f images/s)\n",
        ("alignment, " + robustlens::alignment_pairing_name(pairing)).c_str(), n / alignment_seconds,
        n / alignment_bound, alignment_bound / alignment_seconds, options.sigmas.size(), denoiser_passes, scores);
  }

  std::printf("\none sweep model (LeNet, %lld epoch(s) on %lld training images; measures on %lld test images):\n",
              static_cast<long long>(sweep_epochs), static_cast<long long>(sweep_samples),
              static_cast<long long>(images));
  std::printf("%-10s %10s %12s %12s %12s\n", "objective", "strength", "training s", "measures s", "total s");
  const robustlens::Dataset train = bench.train.subset(
      robustlens::select_samples(bench.train.size(), robustlens::SampleSelection().set_count(sweep_samples)));
  for (const auto& [objective, strength] :
       std::vector<std::pair<std::string, double>>{{"gradnorm", 1.0}, {"noise", 0.3}, {"pgd-l2", 0.5}}) {
    std::optional<robustlens::BuiltinModel> built;
    robustlens::with_global_seed(
        0, [&] { built.emplace(robustlens::ArchitectureSpec().set_name("lenet"), bench.train.class_names); });
    robustlens::BuiltinModel& swept = *built;
    swept.to(device);
    const auto start = std::chrono::steady_clock::now();
    robustlens::train_model(
        swept, train, bench.test,
        robustlens::TrainOptions()
            .set_epochs(sweep_epochs)
            .set_objective(robustlens::objective_at_strength(robustlens::ObjectiveOptions(), objective, strength)));
    bench.synchronize();
    const double training = elapsed_since(start);
    swept.set_training(false);
    const robustlens::SweepMeasures measured = robustlens::measure_sweep_model(
        swept, data, basis, score, robustlens::SweepMeasureOptions().set_batch_size(batch));
    std::printf("%-10s %10.3g %12.1f %12.1f %12.1f\n", objective.c_str(), strength, training, measured.seconds,
                training + measured.seconds);
    std::fflush(stdout);
  }
  return 0;
}

int main(int argc, char** argv) {
  return robustlens::bench::run_reporting_errors([&] { return run_benchmark(argc, argv); });
}
