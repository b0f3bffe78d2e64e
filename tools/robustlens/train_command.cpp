// robustlens train: trains a built-in architecture with one objective, writing
// OUT/model.pt, OUT/checkpoint.pt (every epoch; a rerun resumes) and OUT/train_log.json.
#include "commands.h"
#include "common.h"
#include "emergence_log.h"
#include "training_options.h"

#include "robustlens/core/console.h"
#include "robustlens/core/files.h"
#include "robustlens/core/random.h"
#include "robustlens/core/runtime.h"
#include "robustlens/train/trainer.h"

#include <filesystem>
#include <memory>
#include <optional>

namespace robustlens::cli {
namespace {

struct TrainCommand {
  CommonOptions common;
  ArchitectureSpec architecture;
  TrainOptions training;
  bool restart = false;
  std::int64_t log_latent_every = 0;
  std::int64_t latent_probe = 2000;
};

void run_train(const TrainCommand& command) {
  CommonOptions common = command.common;
  if (common.out.empty()) common.out = "runs/" + command.architecture.name;
  const at::Device device = start_run(common);
  const Dataset train_data = select_data(load_data(common, "train"), common);
  const Dataset test_data = load_data(common, "test");

  ArchitectureSpec spec = command.architecture;
  spec.set_input_shape(train_data.image_shape()).set_num_classes(train_data.num_classes());
  std::optional<BuiltinModel> built;
  with_global_seed(common.seed, [&] { built.emplace(spec, train_data.class_names); });  // the initial weights
  BuiltinModel& model = *built;
  model.to(device);
  TrainOptions options = command.training.for_architecture(model.spec());
  options.set_seed(common.seed)
      .set_transform(common.transform)
      .set_out_dir(common.out)
      .set_resume(!command.restart)
      .set_eval_batch_size(1000);

  console::print("training %s (%s) on %s: %lld images, %lld epochs, objective %s, device %s\n", spec.name.c_str(),
                 model.spec().to_json().dump().c_str(), train_data.name.c_str(),
                 static_cast<long long>(train_data.size()), static_cast<long long>(options.epochs),
                 options.objective.to_json().dump().c_str(), device.str().c_str());
  EmergenceLog emergence(command.log_latent_every, options.epochs, train_data, command.latent_probe, common.out,
                         command.restart);
  const TrainResult result =
      train_model(model, train_data, test_data, options, terminal_progress(), [&](const EpochRecord& record) {
        print_epoch(record);
        emergence.after_epoch(model, record);
      });
  print_resumed(result.resumed_after_epoch, options.epochs, common.out);
  const std::string model_path = (std::filesystem::path(common.out) / "model.pt").string();
  model.save(model_path);
  nlohmann::json log =
      run_record("train", {{"architecture", model.spec().to_json()}, {"recipe", options.to_json()}}, common);
  log["train_data"] = train_data.summary();
  log["test_data"] = test_data.summary();
  log["result"] = result.to_json();
  write_json_file((std::filesystem::path(common.out) / "train_log.json").string(), log);
  console::print("test accuracy %.2f%%; model written to %s\n", 100 * result.epochs.back().test_accuracy,
                 model_path.c_str());
}

}  // namespace

void print_epoch(const EpochRecord& r) {
  char gamma[32] = "";
  if (r.latent_gamma > 0) std::snprintf(gamma, sizeof gamma, "  gamma %.4g", r.latent_gamma);
  console::print("epoch %lld  lr %.4g%s  loss %.4f  train %.2f%%  test %.2f%%  (%.1f s)\n",
                 static_cast<long long>(r.epoch), r.learning_rate, gamma, r.train_loss, 100 * r.train_accuracy,
                 100 * r.test_accuracy, r.seconds);
  std::fflush(stdout);
}

namespace {

void add_architecture_options(CLI::App& command, ArchitectureSpec& arch) {
  command.add_option("--arch", arch.name, "Architecture")
      ->check(CLI::IsMember({"mlp", "lenet", "resnet"}))
      ->capture_default_str();
  command
      .add_option("--width", arch.width,
                  "Width (0 = architecture default: mlp 256 units, lenet 16 channels, resnet 16)")
      ->check(kNonNegative)
      ->capture_default_str();
  command.add_option("--depth", arch.depth, "Depth (0 = default: mlp 2 hidden layers, resnet 1 block per stage)")
      ->check(kNonNegative)
      ->capture_default_str();
  command.add_option("--activation", arch.activation, "Activation")
      ->check(CLI::IsMember({"relu", "softplus"}))
      ->capture_default_str();
  command
      .add_option("--head", arch.head,
                  "Bottleneck variant: nopen (none), binenc (linear, penalised), linpen (linear), nonlinpen (SiLU), "
                  "wide (binenc, 512 units)")
      ->check(CLI::IsMember({"nopen", "binenc", "linpen", "nonlinpen", "wide"}))
      ->capture_default_str();
  command.add_option("--bottleneck", arch.bottleneck, "Bottleneck units P (0 = ceil(log2 K) + 2; wide: 512)")
      ->check(kNonNegative)
      ->capture_default_str();
}

void add_recipe_options(CLI::App& command, TrainOptions& t) {
  command.add_option("--epochs", t.epochs, "Training epochs")->check(kPositive)->capture_default_str();
  command.add_option("--batch-size", t.batch_size, "Training batch size")->check(kPositive)->capture_default_str();
  command.add_option("--optimizer", t.optimizer, "Optimiser")
      ->check(CLI::IsMember({"sgd", "adamw"}))
      ->capture_default_str();
  command.add_option("--lr", t.lr, "Peak learning rate")->check(kPositive)->capture_default_str();
  command.add_option("--momentum", t.momentum, "SGD momentum")->check(CLI::Range(0.0, 0.999999))->capture_default_str();
  command.add_option("--weight-decay", t.weight_decay, "Weight decay")->check(kNonNegative)->capture_default_str();
  command.add_option("--schedule", t.schedule.kind, "Learning-rate schedule")
      ->check(CLI::IsMember({"constant", "step", "cosine", "onecycle"}))
      ->capture_default_str();
  command.add_option("--lr-gamma", t.schedule.gamma, "step schedule: factor")
      ->check(CLI::Range(1e-9, 1.0))
      ->capture_default_str();
  command.add_option("--lr-step-epochs", t.schedule.step_epochs, "step schedule: epochs between decays")
      ->check(kPositive)
      ->capture_default_str();
  command.add_option("--warmup", t.schedule.warmup, "onecycle schedule: fraction of steps spent rising")
      ->check(CLI::Range(0.01, 0.99))
      ->capture_default_str();
  command.add_flag("--hold-output-lr", t.hold_output_lr,
                   "Keep the output layer at --lr while the schedule moves the other layers");
  LatentPenaltyOptions& penalty = t.latent_penalty;
  command.add_option("--gamma0", penalty.gamma0, "binenc/wide: latent penalty weight gamma in the first epoch")
      ->check(kPositive)
      ->capture_default_str();
  command.add_option("--gamma-factor", penalty.factor, "binenc/wide: gamma is multiplied by this after every epoch")
      ->check(CLI::Range(1.0, 1e6))
      ->capture_default_str();
  command.add_option("--gamma-max", penalty.gamma_max, "binenc/wide: gamma stops growing here")
      ->check(kPositive)
      ->capture_default_str();
}

void add_objective_options(CLI::App& command, ObjectiveOptions& objective) {
  command.add_option("--objective", objective.kind, "Training objective")
      ->check(CLI::IsMember({"standard", "pgd-l2", "pgd-linf", "noise", "gradnorm"}))
      ->capture_default_str();
  command.add_option("--eps", objective.eps, "pgd-*: radius of the attack ball in [0,1] pixel units")
      ->check(kNonNegative)
      ->capture_default_str();
  command.add_option("--pgd-steps", objective.pgd_steps, "pgd-*: attack steps")
      ->check(kPositive)
      ->capture_default_str();
  command.add_option("--pgd-step-size", objective.pgd_step_size, "pgd-*: step length (0 = 2.5·eps/steps)")
      ->check(kNonNegative)
      ->capture_default_str();
  command.add_option("--sigma", objective.sigma, "noise: standard deviation of the Gaussian noise")
      ->check(kNonNegative)
      ->capture_default_str();
  command.add_option("--lambda", objective.lambda, "gradnorm: weight of mean ||grad_x CE||^2")
      ->check(kNonNegative)
      ->capture_default_str();
}

}  // namespace

void add_training_options(CLI::App& command, ArchitectureSpec& arch, TrainOptions& t, bool with_objective) {
  add_architecture_options(command, arch);
  add_recipe_options(command, t);
  if (with_objective) add_objective_options(command, t.objective);
}

void add_train_command(CLI::App& app) {
  auto command = std::make_shared<TrainCommand>();
  CLI::App* sub = app.add_subcommand("train", "Train a built-in classifier (standard or robust objectives)");
  add_common_options(*sub, command->common, kData | kSamples | kRuntime | kOut);
  sub->get_option("--samples")->description("Train on a random subset of this many training images (0 = all)");
  sub->get_option("--out")->description("Output folder (default runs/ARCH); a checkpoint there is resumed");

  add_training_options(*sub, command->architecture, command->training, true);
  add_restart_flag(*sub, command->restart);
  sub->add_option("--log-latent-every", command->log_latent_every,
                  "After every this many epochs (and the last) measure the latent code on a probe of training images: "
                  "OUT/latent_log.json and OUT/emergence.svg (0 = off)")
      ->check(kNonNegative)
      ->capture_default_str();
  sub->add_option("--latent-probe", command->latent_probe, "Training images of that probe (the first ones)")
      ->check(kPositive)
      ->capture_default_str();

  sub->callback([command] { run_train(*command); });
}

}  // namespace robustlens::cli
