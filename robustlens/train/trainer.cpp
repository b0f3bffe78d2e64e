#include "robustlens/train/trainer.h"

#include "robustlens/core/distributed.h"
#include "robustlens/core/error.h"
#include "robustlens/core/json_fields.h"
#include "robustlens/core/random.h"
#include "robustlens/core/training_loop.h"
#include "robustlens/models/accuracy.h"

#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <torch/utils.h>

#include <algorithm>
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
at::Tensor epoch_order(std::int64_t size, std::uint64_t seed, std::int64_t epoch) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(size));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 engine(derive_seed(derive_seed(seed, kShuffleStream), static_cast<std::uint64_t>(epoch)));
  std::shuffle(order.begin(), order.end(), engine);
  return at::tensor(order, at::kLong);
}

/// What the weights are trained from besides the recipe: the architecture and the training data (a
/// resumed run must continue the same model on the same images).
nlohmann::json training_inputs(const BuiltinModel& model, const Dataset& train) {
  return {{"architecture", model.spec().to_json()}, {"train_data", train.fingerprint()}};
}

/// The classifier's part of the training loop: batches through the objective, the schedule (with the output
/// layer held at the base rate when asked), train and test accuracy per epoch.
class ClassifierTask final : public TypedTrainingTask<EpochRecord> {
 public:
  ClassifierTask(BuiltinModel& model, const Dataset& train, const Dataset& test, const TrainOptions& options)
      : model_(model), train_(train), test_(test), options_(options) {}

  at::Tensor begin_epoch(std::int64_t epoch, at::Generator&) override {
    model_.set_training(true);
    latent_gamma_ = options_.latent_penalty.gamma_at(epoch + 1);
    correct_ = 0;
    seen_ = 0;
    return epoch_order(train_.size(), options_.seed, epoch);
  }

  void set_learning_rate(torch::optim::Optimizer& optimizer, const TrainingBatch& batch) override {
    learning_rate_ =
        learning_rate_at(options_.schedule, options_.lr, batch.run_step(), batch.run_steps(), batch.steps_per_epoch);
    auto& groups = optimizer.param_groups();
    groups[0].options().set_lr(learning_rate_);
    if (groups.size() > 1) groups[1].options().set_lr(options_.lr);  // the held output layer
  }

  at::Tensor batch_loss(const TrainingBatch& batch, at::Generator& generator) override {
    const at::Tensor images = train_.images.index_select(0, batch.index).to(model_.device());
    const at::Tensor labels = train_.labels.index_select(0, batch.index).to(model_.device());
    // Transformed images are not pixels in [0,1]: the PGD objectives must not clip them to it.
    const BatchLoss loss = objective_loss(model_, images, labels, options_.objective, generator, latent_gamma_,
                                          options_.transform == "none");
    if (batch.counts) {
      correct_ += loss.logits.argmax(1).eq(labels).sum().item<std::int64_t>();
      seen_ += images.size(0);
    }
    return loss.loss;
  }

  nlohmann::json finish_epoch(std::int64_t, double mean_loss) override {
    EpochRecord record;
    record.learning_rate = learning_rate_;
    record.latent_gamma = latent_gamma_;
    record.train_loss = mean_loss;
    const std::vector<double> counts =
        distributed::sum_over_ranks({static_cast<double>(correct_), static_cast<double>(seen_)});
    record.train_accuracy = counts[0] / counts[1];
    record.test_accuracy =
        evaluate_accuracy(model_, test_, AccuracyOptions().set_batch_size(options_.eval_batch_size)).accuracy;
    return record.to_json();
  }

  void save_weights(torch::serialize::OutputArchive& archive) override { model_.save_to(archive); }
  void load_weights(torch::serialize::InputArchive& archive, const std::string& path) override {
    read_builtin_metadata(archive, path);
    model_.load_parameters_from(archive, path);
  }

 private:
  BuiltinModel& model_;
  const Dataset& train_;
  const Dataset& test_;
  const TrainOptions& options_;
  double learning_rate_ = 0, latent_gamma_ = 0;
  std::int64_t correct_ = 0, seen_ = 0;
};

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
  ClassifierTask task(model, train, test, options);
  const TrainingLoopOptions loop =
      TrainingLoopOptions::of(options, "TrainOptions", "training")
          .set_seed(derive_seed(options.seed, kObjectiveStream))
          .set_inputs(options.out_dir.empty() ? nlohmann::json() : training_inputs(model, train))
          .set_device(model.device());
  const TypedTrainingLog<EpochRecord> log =
      run_typed_training(task, *optimizer, train.size(), loop, progress, on_epoch);
  const TrainResult result{log.epochs, log.resumed_after_epoch};
  model.set_training(false);
  nlohmann::json recipe = options.to_json();
  recipe["log"] = result.to_json()["epochs"];
  recipe["train_data"] = train.name;
  model.info().training = recipe;
  return result;
}

}  // namespace robustlens
