// robustlens train-vae / train-denoiser: the generative models the manifold
// and alignment analyses need (generative/vae.h, generative/denoiser.h),
// trained on the training split of --data and evaluated on its test split
// after every epoch. Each writes OUT/vae.pt or OUT/denoiser.pt, OUT/checkpoint.pt
// (every epoch; a rerun resumes) and OUT/train_log.json (run record, spec, recipe,
// per-epoch losses, data summaries).
#include "analysis_registry.h"
#include "commands.h"
#include "common.h"

#include "robustlens/core/console.h"
#include "robustlens/core/files.h"
#include "robustlens/core/random.h"
#include "robustlens/generative/denoiser.h"
#include "robustlens/generative/vae.h"

#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>

namespace robustlens::cli {
namespace {

std::string output_file(const CommonOptions& common, const std::string& name) {
  return (std::filesystem::path(common.out) / name).string();
}

struct TrainVaeCommand {
  CommonOptions common;
  VaeSpec spec;
  VaeTrainOptions training;
  bool restart = false;
};

void run_train_vae(const TrainVaeCommand& command) {
  CommonOptions common = command.common;
  if (common.out.empty()) common.out = "runs/vae";
  const at::Device device = start_run(common);
  VaeTrainOptions options = command.training;
  options.set_seed(common.seed).set_out_dir(common.out).set_resume(!command.restart).check();
  const Dataset train_data = select_data(load_data(common, "train"), common);
  const Dataset test_data = load_data(common, "test");

  VaeSpec spec = command.spec;
  spec.set_input_shape(train_data.image_shape());
  std::optional<Vae> built;
  with_global_seed(common.seed, [&] { built.emplace(spec); });  // the initial weights
  Vae& vae = *built;
  vae.to(device);
  console::print("training a VAE (%s) on %s: %lld images, %lld epochs, beta %g, device %s\n",
                 spec.to_json().dump().c_str(), train_data.name.c_str(), static_cast<long long>(train_data.size()),
                 static_cast<long long>(options.epochs), options.beta, device.str().c_str());
  std::fflush(stdout);
  const VaeTrainResult result =
      train_vae(vae, train_data, test_data, options, terminal_progress(), [&](const VaeEpochRecord& r) {
        console::print(
            "epoch %lld  loss %.2f (reconstruction %.2f + %g·KL %.2f)  test %.2f (%.2f + %g·%.2f)  active dims "
            "%lld/%lld  (%.1f s)\n",
            static_cast<long long>(r.epoch), r.train_loss, r.train_reconstruction, options.beta, r.train_kl,
            r.test_loss, r.test_reconstruction, options.beta, r.test_kl, static_cast<long long>(r.active_dims),
            static_cast<long long>(spec.latent_dim), r.seconds);
        std::fflush(stdout);
      });
  print_resumed(result.resumed_after_epoch, options.epochs, common.out);
  const std::string model_path = output_file(common, "vae.pt");
  vae.save(model_path);
  nlohmann::json log = run_record("train-vae", {{"spec", spec.to_json()}, {"recipe", options.to_json()}}, common);
  log["train_data"] = train_data.summary();
  log["test_data"] = test_data.summary();
  log["result"] = result.to_json();
  write_json_file(output_file(common, "train_log.json"), log);
  const VaeEpochRecord& last = result.epochs.back();
  console::print(
      "test: reconstruction %.2f + KL %.2f = negative ELBO %.2f nats per image, %lld of %lld latent dimensions "
      "active; VAE written to %s\n",
      last.test_reconstruction, last.test_kl, last.test_reconstruction + last.test_kl,
      static_cast<long long>(last.active_dims), static_cast<long long>(spec.latent_dim), model_path.c_str());
}

struct TrainDenoiserCommand {
  CommonOptions common;
  DenoiserSpec spec;
  DenoiserTrainOptions training;
  bool unconditional = false;
  bool restart = false;
};

/// The denoising-error table: the learned denoiser beside the trivial ones, per noise level.
void print_denoising_errors(const DenoisingErrors& errors) {
  const auto cell = [](double value) { return format_number(value, "%.5f", "-"); };
  console::print(
      "denoising error on %lld test images (MSE per pixel, [-1,1] units; Gaussians fitted to the training images):\n",
      static_cast<long long>(errors.images));
  console::print("%8s %12s %12s %12s %14s %14s\n", "sigma", "given y", "no label", "identity", "Gaussian/class",
                 "Gaussian/all");
  for (std::size_t i = 0; i < errors.sigmas.size(); ++i) {
    console::print("%8.3g %12s %12s %12s %14s %14s\n", errors.sigmas[i], cell(errors.conditional[i]).c_str(),
                   cell(errors.unconditional[i]).c_str(), cell(errors.identity[i]).c_str(),
                   cell(errors.gaussian_class[i]).c_str(), cell(errors.gaussian_all[i]).c_str());
  }
}

void run_train_denoiser(const TrainDenoiserCommand& command) {
  CommonOptions common = command.common;
  if (common.out.empty()) common.out = "runs/denoiser";
  const at::Device device = start_run(common);
  DenoiserTrainOptions options = command.training;
  options.set_seed(common.seed).set_out_dir(common.out).set_resume(!command.restart).check();
  const Dataset train_data = select_data(load_data(common, "train"), common);
  const Dataset test_data = load_data(common, "test");

  DenoiserSpec spec = command.spec;
  spec.set_input_shape(train_data.image_shape()).set_num_classes(command.unconditional ? 0 : train_data.num_classes());
  // --label-dropout 0: a conditional-only denoiser, without the token (s(x) is then unavailable).
  spec.set_no_label_token(options.label_dropout > 0);
  std::optional<Denoiser> built;
  with_global_seed(common.seed, [&] { built.emplace(spec); });  // the initial weights
  Denoiser& denoiser = *built;
  denoiser.to(device);
  console::print(
      "training %s denoiser (%s) on %s: %lld images, %lld epochs, sigma log-uniform in [%g, %g], device %s\n",
      spec.conditional() ? "a class-conditional (label dropout to a 'no label' token)" : "an unconditional",
      spec.to_json().dump().c_str(), train_data.name.c_str(), static_cast<long long>(train_data.size()),
      static_cast<long long>(options.epochs), options.sigma_min, options.sigma_max, device.str().c_str());
  std::fflush(stdout);
  const DenoiserTrainResult result =
      train_denoiser(denoiser, train_data, test_data, options, terminal_progress(), [](const DenoiserEpochRecord& r) {
        console::print("epoch %lld  lr %.3g  loss %.4f  test %.4f  (%.1f s)\n", static_cast<long long>(r.epoch),
                       r.learning_rate, r.train_loss, r.test_loss, r.seconds);
        std::fflush(stdout);
      });
  print_resumed(result.resumed_after_epoch, options.epochs, common.out);
  const std::string model_path = output_file(common, "denoiser.pt");
  denoiser.save(model_path);
  nlohmann::json log = run_record("train-denoiser", {{"spec", spec.to_json()}, {"recipe", options.to_json()}}, common);
  log["train_data"] = train_data.summary();
  log["test_data"] = test_data.summary();
  log["result"] = result.to_json();
  write_json_file(output_file(common, "train_log.json"), log);
  console::print("test loss %.4f; denoiser written to %s\n", result.epochs.back().test_loss, model_path.c_str());
  print_denoising_errors(result.errors);
}

}  // namespace

void add_train_vae_command(CLI::App& app) {
  auto command = std::make_shared<TrainVaeCommand>();
  CLI::App* sub = app.add_subcommand("train-vae", "Train the VAE whose decoder gives the tangent spaces of 'manifold'");
  add_common_options(*sub, command->common, kData | kSamples | kRuntime | kOut);
  sub->get_option("--samples")->description("Train on a random subset of this many training images (0 = all)");
  sub->get_option("--out")->description(
      "Output folder (default runs/vae): vae.pt, train_log.json; a checkpoint there is resumed");
  VaeSpec& spec = command->spec;
  sub->add_option("--latent-dim", spec.latent_dim, "Latent dimension k (the tangent spaces' dimension)")
      ->check(kPositive)
      ->capture_default_str();
  sub->add_option("--hidden", spec.hidden, "Units of each hidden layer of encoder and decoder")
      ->check(kPositive)
      ->capture_default_str();
  VaeTrainOptions& t = command->training;
  sub->add_option("--epochs", t.epochs, "Training epochs")->check(kPositive)->capture_default_str();
  sub->add_option("--batch-size", t.batch_size, "Training batch size")->check(kPositive)->capture_default_str();
  sub->add_option("--lr", t.lr, "Adam learning rate")->check(kPositive)->capture_default_str();
  sub->add_option("--beta", t.beta, "Weight of the KL term (1 = the ELBO; below 1 keeps more latent dimensions in use)")
      ->check(kNonNegative)
      ->capture_default_str();
  add_restart_flag(*sub, command->restart);
  sub->callback([command] { run_train_vae(*command); });
}

void add_train_denoiser_command(CLI::App& app) {
  auto command = std::make_shared<TrainDenoiserCommand>();
  CLI::App* sub =
      app.add_subcommand("train-denoiser", "Train the denoiser whose Tweedie score 'align' compares gradients with");
  add_common_options(*sub, command->common, kData | kSamples | kRuntime | kOut);
  sub->get_option("--samples")->description("Train on a random subset of this many training images (0 = all)");
  sub->get_option("--out")->description(
      "Output folder (default runs/denoiser): denoiser.pt, train_log.json; a checkpoint there is resumed");
  DenoiserSpec& spec = command->spec;
  sub->add_option("--channels", spec.channels, "Feature maps at full and half resolution (twice as many at a quarter)")
      ->check(kPositive)
      ->capture_default_str();
  sub->add_option("--embedding-dim", spec.embedding_dim, "Width of the noise-level and class embedding")
      ->check(kPositive)
      ->capture_default_str();
  sub->add_flag("--unconditional", command->unconditional, "Ignore the labels: D(x; sigma) instead of D(x; sigma, y)");
  sub->add_option("--label-dropout", command->training.label_dropout,
                  "Share of training images whose label is replaced by a 'no label' token, so that one network gives "
                  "s(x, y) and s(x) (conditional denoisers)")
      ->capture_default_str();
  DenoiserTrainOptions& t = command->training;
  sub->add_option("--epochs", t.epochs, "Training epochs")->check(kPositive)->capture_default_str();
  sub->add_option("--batch-size", t.batch_size, "Training batch size")->check(kPositive)->capture_default_str();
  sub->add_option("--lr", t.lr, "Adam peak learning rate (cosine decay to 0)")->check(kPositive)->capture_default_str();
  sub->add_option("--sigma-min", t.sigma_min, "Smallest training noise level ([-1,1] pixel units)")
      ->check(kPositive)
      ->capture_default_str();
  sub->add_option("--sigma-max", t.sigma_max, "Largest training noise level")->check(kPositive)->capture_default_str();
  add_restart_flag(*sub, command->restart);
  sub->callback([command] { run_train_denoiser(*command); });
}

Analysis train_vae_analysis() {
  Analysis analysis;
  analysis.name = "train-vae";
  analysis.result_file = "train_log.json";
  analysis.add_command = add_train_vae_command;
  analysis.scope = AuditScope::kGenerative;
  analysis.needs = kVaeIfAny;
  analysis.model_file = "vae.pt";
  // The audit decides itself which steps it reuses; a checkpoint another build left must not be resumed.
  analysis.audit_arguments = {"--restart"};
  analysis.quick_arguments = {"--epochs", "3"};
  return analysis;
}

Analysis train_denoiser_analysis() {
  Analysis analysis;
  analysis.name = "train-denoiser";
  analysis.result_file = "train_log.json";
  analysis.add_command = add_train_denoiser_command;
  analysis.scope = AuditScope::kGenerative;
  // Class-conditional with label dropout: one network gives s(x, y) and s(x) for every pairing of align.
  analysis.needs = kDenoiser;
  analysis.model_file = "denoiser.pt";
  analysis.audit_arguments = {"--restart"};
  analysis.quick_arguments = {"--epochs", "1", "--samples", "20000"};
  return analysis;
}

}  // namespace robustlens::cli
