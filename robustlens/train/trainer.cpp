#include "robustlens/train/trainer.h"

#include "robustlens/core/archive_integrity.h"
#include "robustlens/core/checksum.h"
#include "robustlens/core/error.h"
#include "robustlens/core/files.h"
#include "robustlens/core/json_fields.h"
#include "robustlens/core/random.h"
#include "robustlens/models/accuracy.h"

#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <torch/utils.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <numeric>
#include <random>

namespace robustlens {
namespace {

constexpr std::uint64_t kShuffleStream = 1, kObjectiveStream = 2;

/// One parameter group, or two with hold_output_lr: the rest, then the output layer.
std::vector<torch::optim::OptimizerParamGroup> parameter_groups(BuiltinModel& model, const TrainOptions& options) {
  if (!options.hold_output_lr) return {torch::optim::OptimizerParamGroup(model.parameters())};
  const std::vector<at::Tensor> output = model.net().head->parameters();
  std::vector<at::Tensor> rest;
  for (const at::Tensor& parameter : model.parameters()) {
    const bool in_output =
        std::any_of(output.begin(), output.end(), [&](const at::Tensor& p) { return p.is_same(parameter); });
    if (!in_output) rest.push_back(parameter);
  }
  return {torch::optim::OptimizerParamGroup(rest), torch::optim::OptimizerParamGroup(output)};
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(BuiltinModel& model, const TrainOptions& options) {
  if (options.optimizer == "adamw") {
    return std::make_unique<torch::optim::AdamW>(
        parameter_groups(model, options), torch::optim::AdamWOptions(options.lr).weight_decay(options.weight_decay));
  }
  return std::make_unique<torch::optim::SGD>(
      parameter_groups(model, options),
      torch::optim::SGDOptions(options.lr).momentum(options.momentum).weight_decay(options.weight_decay));
}

/// The order of epoch `epoch`'s samples: a function of (seed, epoch) only.
std::vector<std::int64_t> epoch_order(std::int64_t size, std::uint64_t seed, std::int64_t epoch) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(size));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 engine(derive_seed(derive_seed(seed, kShuffleStream), static_cast<std::uint64_t>(epoch)));
  std::shuffle(order.begin(), order.end(), engine);
  return order;
}

std::string checkpoint_path(const TrainOptions& options) {
  return (std::filesystem::path(options.out_dir) / "checkpoint.pt").string();
}

/// What the weights are trained from besides the recipe: the architecture and the training data (a
/// resumed run must continue the same model on the same images).
nlohmann::json training_inputs(const BuiltinModel& model, const Dataset& train) {
  return {{"architecture", model.spec().to_json()},
          {"train_data",
           {{"name", train.name}, {"size", train.size()}, {"checksum", data_checksum(train.images, train.labels)}}}};
}

void save_checkpoint(BuiltinModel& model, torch::optim::Optimizer& optimizer, const TrainOptions& options,
                     const nlohmann::json& inputs, const TrainResult& result) {
  // State, not an output: a killed run resumes from it.
  write_file_atomically(
      checkpoint_path(options),
      [&](const std::string& temporary) {
        torch::serialize::OutputArchive archive, optimizer_archive;
        model.save_to(archive);
        optimizer.save(optimizer_archive);
        archive.write("optimizer", optimizer_archive);
        const nlohmann::json state = {
            {"recipe", options.to_json()}, {"inputs", inputs}, {"log", result.to_json()["epochs"]}};
        archive.write("trainer_state", c10::IValue(state.dump()));
        archive.save_to(temporary);
      },
      OutputKind::kState);
}

/// Restores model, optimiser and log from the checkpoint; returns false if there is none.
bool load_checkpoint(BuiltinModel& model, torch::optim::Optimizer& optimizer, const TrainOptions& options,
                     const nlohmann::json& inputs, TrainResult& result) {
  const std::string path = checkpoint_path(options);
  if (!std::filesystem::is_regular_file(path)) return false;
  try {
    check_archive_records(path, "checkpoint '" + path + "'");
  } catch (const Error& error) {
    RL_CHECK(false, error.what(), "; delete it or pass --restart");
  }
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path, model.device());
  } catch (const std::exception& error) {  // c10::Error, and what else LibTorch throws for a damaged file
    RL_CHECK(false, "checkpoint '", path, "' cannot be read (", first_line(error.what()),
             "); delete it or pass --restart");
  }
  c10::IValue state_value;
  RL_CHECK(archive.try_read("trainer_state", state_value) && state_value.isString(), "checkpoint '", path,
           "' has no trainer state; delete it or pass --restart");
  CheckpointState state = parse_checkpoint_state(state_value.toStringRef(), path);
  RL_CHECK(state.recipe == options.to_json(), "checkpoint '", path,
           "' was made with a different recipe:\n  checkpoint: ", state.recipe.dump(),
           "\n  requested:  ", options.to_json().dump(), "\nuse another --out, or --restart to start afresh");
  // Checkpoints written before the inputs were recorded are resumed on the recipe alone.
  RL_CHECK(state.inputs.is_null() || state.inputs == inputs, "checkpoint '", path,
           "' was trained with another architecture or other training data:\n  checkpoint: ", state.inputs.dump(),
           "\n  requested:  ", inputs.dump(), "\nuse another --out, or --restart to start afresh");
  read_builtin_metadata(archive, path);
  model.load_parameters_from(archive, path);
  torch::serialize::InputArchive optimizer_archive;
  RL_CHECK(archive.try_read("optimizer", optimizer_archive), "checkpoint '", path, "' has no optimiser state");
  optimizer.load(optimizer_archive);
  result.epochs = std::move(state.epochs);
  result.resumed_after_epoch = static_cast<std::int64_t>(result.epochs.size());
  return true;
}

}  // namespace

void TrainOptions::check() const {
  RL_CHECK(optimizer == "sgd" || optimizer == "adamw", "TrainOptions.optimizer: expected sgd or adamw, got '",
           optimizer, "'");
  RL_CHECK(lr > 0, "TrainOptions.lr must be > 0, got ", lr);
  RL_CHECK(momentum >= 0 && momentum < 1, "TrainOptions.momentum must lie in [0,1), got ", momentum);
  RL_CHECK(weight_decay >= 0, "TrainOptions.weight_decay must be >= 0, got ", weight_decay);
  RL_CHECK(epochs >= 1, "TrainOptions.epochs must be >= 1, got ", epochs);
  RL_CHECK(batch_size >= 1, "TrainOptions.batch_size must be >= 1, got ", batch_size);
  RL_CHECK(eval_batch_size >= 1, "evaluation batch size must be >= 1, got ", eval_batch_size);
  schedule.check();
  objective.check();
  latent_penalty.check();
}

TrainOptions TrainOptions::for_architecture(const ArchitectureSpec& spec) const {
  TrainOptions options = *this;
  options.latent_penalty.enabled = spec.penalised();
  return options;
}

nlohmann::json TrainOptions::to_json() const {
  nlohmann::json json = {{"optimizer", optimizer},
                         {"lr", lr},
                         {"momentum", optimizer == "sgd" ? momentum : 0.0},
                         {"weight_decay", weight_decay},
                         {"schedule", schedule.to_json()},
                         {"epochs", epochs},
                         {"batch_size", batch_size},
                         {"seed", seed},
                         {"objective", objective.to_json()},
                         {"transform", transform}};
  // Only when used, so that recipes (and checkpoints) without them stay as they were.
  if (latent_penalty.enabled) json["latent_penalty"] = latent_penalty.to_json();
  if (hold_output_lr) json["hold_output_lr"] = true;
  return json;
}

nlohmann::json EpochRecord::to_json() const {
  nlohmann::json json = {{"epoch", epoch},
                         {"learning_rate", learning_rate},
                         {"train_loss", train_loss},
                         {"train_accuracy", train_accuracy},
                         {"test_accuracy", test_accuracy},
                         {"seconds", seconds}};
  if (latent_gamma > 0) json["latent_gamma"] = latent_gamma;
  return json;
}

EpochRecord EpochRecord::from_json(const nlohmann::json& json, const std::string& where) {
  return {
      required_field<std::int64_t>(json, "epoch", where),      required_field<double>(json, "learning_rate", where),
      required_field<double>(json, "train_loss", where),       required_field<double>(json, "train_accuracy", where),
      required_field<double>(json, "test_accuracy", where),    required_field<double>(json, "seconds", where),
      optional_field<double>(json, "latent_gamma", 0.0, where)};
}

CheckpointState parse_checkpoint_state(const std::string& text, const std::string& path) {
  const std::string where = "checkpoint '" + path + "': trainer state";
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& error) {
    RL_CHECK(false, where, " is not valid JSON (", error.what(), "); delete it or pass --restart");
  }
  CheckpointState state{required_field<nlohmann::json>(json, "recipe", where),
                        optional_field<nlohmann::json>(json, "inputs", nullptr, where),
                        {}};
  const auto log = required_field<std::vector<nlohmann::json>>(json, "log", where);
  for (std::size_t i = 0; i < log.size(); ++i) {
    state.epochs.push_back(EpochRecord::from_json(log[i], where + ": log[" + std::to_string(i) + "]"));
    RL_CHECK(state.epochs.back().epoch == static_cast<std::int64_t>(i + 1), where, ": log[", i, "] is epoch ",
             state.epochs.back().epoch, ", expected ", i + 1);
  }
  return state;
}

nlohmann::json TrainResult::to_json() const {
  nlohmann::json records = nlohmann::json::array();
  for (const auto& record : epochs) records.push_back(record.to_json());
  return {{"epochs", records}, {"resumed_after_epoch", resumed_after_epoch}};
}

TrainResult train_model(BuiltinModel& model, const Dataset& train, const Dataset& test, const TrainOptions& requested,
                        const ProgressCallback& progress, const EpochCallback& on_epoch) {
  const TrainOptions options = requested.for_architecture(model.spec());
  options.check();
  RL_CHECK(train.image_shape() == model.spec().input_shape, "training images are ", train.image_shape()[0], "×",
           train.image_shape()[1], "×", train.image_shape()[2], " but the model takes ", model.spec().input_shape[0],
           "×", model.spec().input_shape[1], "×", model.spec().input_shape[2]);
  RL_CHECK(train.num_classes() <= model.spec().num_classes, "the dataset has ", train.num_classes(),
           " classes but the model only ", model.spec().num_classes);
  auto optimizer = make_optimizer(model, options);
  TrainResult result;
  const nlohmann::json inputs = options.out_dir.empty() ? nlohmann::json() : training_inputs(model, train);
  if (!options.out_dir.empty() && options.resume) load_checkpoint(model, *optimizer, options, inputs, result);

  const std::int64_t steps_per_epoch = (train.size() + options.batch_size - 1) / options.batch_size;
  const std::int64_t total_steps = steps_per_epoch * options.epochs;
  const at::Device device = model.device();
  for (std::int64_t epoch = result.resumed_after_epoch; epoch < options.epochs; ++epoch) {
    const auto start_time = std::chrono::steady_clock::now();
    const at::Generator generator =
        make_generator(derive_seed(derive_seed(options.seed, kObjectiveStream), static_cast<std::uint64_t>(epoch)));
    const std::vector<std::int64_t> order = epoch_order(train.size(), options.seed, epoch);
    model.set_training(true);
    double loss_sum = 0, learning_rate = options.lr;
    const double latent_gamma = options.latent_penalty.gamma_at(epoch + 1);
    std::int64_t correct = 0, seen = 0;
    const std::string task = "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(options.epochs);
    for (std::int64_t step = 0; step < steps_per_epoch; ++step) {
      const std::int64_t begin = step * options.batch_size;
      const std::int64_t end = std::min(begin + options.batch_size, train.size());
      const at::Tensor index =
          at::tensor(std::vector<std::int64_t>(order.begin() + begin, order.begin() + end), at::kLong);
      const at::Tensor images = train.images.index_select(0, index).to(device);
      const at::Tensor labels = train.labels.index_select(0, index).to(device);

      learning_rate =
          learning_rate_at(options.schedule, options.lr, epoch * steps_per_epoch + step, total_steps, steps_per_epoch);
      auto& groups = optimizer->param_groups();
      groups[0].options().set_lr(learning_rate);
      if (groups.size() > 1) groups[1].options().set_lr(options.lr);  // the held output layer
      optimizer->zero_grad();
      // Transformed images are not pixels in [0,1]: the PGD objectives must not clip them to it.
      const BatchLoss batch = objective_loss(model, images, labels, options.objective, generator, latent_gamma,
                                             options.transform == "none");
      RL_CHECK(std::isfinite(batch.loss.item<double>()), "training diverged at epoch ", epoch + 1, ", step ", step + 1,
               " (loss is not finite); lower --lr (now ", options.lr, ")");
      batch.loss.backward();
      optimizer->step();

      loss_sum += batch.loss.item<double>() * static_cast<double>(end - begin);
      correct += batch.logits.argmax(1).eq(labels).sum().item<std::int64_t>();
      seen += end - begin;
      report(progress,
             {task, seen, train.size(), "loss " + std::to_string(loss_sum / static_cast<double>(seen)).substr(0, 6)});
    }
    EpochRecord record;
    record.epoch = epoch + 1;
    record.learning_rate = learning_rate;
    record.latent_gamma = latent_gamma;
    record.train_loss = loss_sum / static_cast<double>(seen);
    record.train_accuracy = static_cast<double>(correct) / static_cast<double>(seen);
    record.test_accuracy =
        evaluate_accuracy(model, test, AccuracyOptions().set_batch_size(options.eval_batch_size)).accuracy;
    record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
    result.epochs.push_back(record);
    if (!options.out_dir.empty()) save_checkpoint(model, *optimizer, options, inputs, result);
    if (on_epoch) on_epoch(record);
  }
  model.set_training(false);
  nlohmann::json recipe = options.to_json();
  recipe["log"] = result.to_json()["epochs"];
  recipe["train_data"] = train.name;
  model.info().training = recipe;
  return result;
}

}  // namespace robustlens
