// The one training loop of every network robustlens trains: the classifier (train/trainer.h), the VAE and the
// denoiser (generative/). It runs epochs of minibatches in an order the network's task chooses, one optimiser
// step per batch, refuses a loss that is not finite, reports progress, collects one JSON record per epoch, and
// writes a checkpoint after each epoch (weights, optimiser state, recipe, inputs, log) from which a killed run
// resumes to the same weights as an uninterrupted one (on CPU): everything epoch e draws comes from a generator
// seeded with (seed, e) alone.
#pragma once

#include "robustlens/core/options.h"
#include "robustlens/core/progress.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace torch {
namespace optim {
class Optimizer;
}
namespace serialize {
class InputArchive;
class OutputArchive;
}  // namespace serialize
}  // namespace torch

namespace robustlens {

struct TrainingLoopOptions {
  /// The caller's options struct ("TrainOptions"): messages name its fields lr and resume.
  std::string owner = "TrainOptions";
  /// Names the run in messages ("VAE training diverged ...").
  std::string what = "training";
  std::int64_t epochs = 1;
  std::int64_t batch_size = 128;
  /// Epoch e's generator is seeded with derive_seed(seed, e).
  std::uint64_t seed = 0;
  /// The learning rate, quoted when the loss diverges.
  double lr = 0;
  /// Folder of checkpoint.pt ("" = no checkpoint).
  std::string out_dir;
  /// Continue from out_dir/checkpoint.pt when it exists (else start afresh).
  bool resume = true;
  /// What a checkpoint must have been made with to be resumed: the recipe, and the inputs (architecture,
  /// training data; a checkpoint without inputs is resumed on the recipe alone).
  nlohmann::json recipe, inputs;
  /// Where the checkpoint's tensors are loaded.
  at::Device device = at::kCPU;

  RL_SETTER(owner)
  RL_SETTER(what)
  RL_SETTER(epochs)
  RL_SETTER(batch_size)
  RL_SETTER(seed)
  RL_SETTER(lr)
  RL_SETTER(out_dir)
  RL_SETTER(resume)
  RL_SETTER(recipe)
  RL_SETTER(inputs)
  RL_SETTER(device)

  void check() const;
  std::string checkpoint_path() const;
  /// The fields every trainer's options share (epochs, batch_size, lr, out_dir, resume; to_json() is the
  /// recipe); seed, inputs and device are the caller's.
  template <class TrainerOptions>
  static TrainingLoopOptions of(const TrainerOptions& options, std::string owner, std::string what) {
    return TrainingLoopOptions()
        .set_owner(std::move(owner))
        .set_what(std::move(what))
        .set_epochs(options.epochs)
        .set_batch_size(options.batch_size)
        .set_lr(options.lr)
        .set_out_dir(options.out_dir)
        .set_resume(options.resume)
        .set_recipe(options.to_json());
  }
};

/// One minibatch: its place in the run and its samples.
struct TrainingBatch {
  std::int64_t epoch = 0;  ///< 0-based
  std::int64_t step = 0;   ///< 0-based, within the epoch
  std::int64_t steps_per_epoch = 0;
  std::int64_t epochs = 0;
  /// The samples' indices (CPU, int64): this process's share of the batch (core/distributed.h).
  at::Tensor index;
  /// Whether this process's rows enter the epoch's statistics: false where a batch smaller than the world is
  /// computed whole by every rank and counted by rank 0 alone.
  bool counts = true;
  /// The step within the whole run and the run's length, for learning-rate schedules.
  std::int64_t run_step() const { return epoch * steps_per_epoch + step; }
  std::int64_t run_steps() const { return epochs * steps_per_epoch; }
};

/// What one kind of network supplies to the loop.
class TrainingTask {
 public:
  virtual ~TrainingTask() = default;
  /// The order of the training samples in epoch `epoch` (CPU, int64; it may draw from the epoch's generator),
  /// with the network put in training mode.
  virtual at::Tensor begin_epoch(std::int64_t epoch, at::Generator& generator) = 0;
  /// Sets the optimiser's learning rates for the batch (the default leaves them as they are).
  virtual void set_learning_rate(torch::optim::Optimizer& optimizer, const TrainingBatch& batch);
  /// The batch's loss (a scalar with its graph), drawing from the epoch's generator; the task keeps whatever
  /// else its epoch record needs.
  virtual at::Tensor batch_loss(const TrainingBatch& batch, at::Generator& generator) = 0;
  /// The epoch's record after its last step (typically with a test evaluation); `mean_loss` is the training loss
  /// averaged over the epoch's samples. The loop adds "epoch" (1-based) and "seconds".
  virtual nlohmann::json finish_epoch(std::int64_t epoch, double mean_loss) = 0;
  /// Refuses a record of a checkpoint's log that finish_epoch could not have written (`where` names it).
  virtual void check_record(const nlohmann::json& record, const std::string& where) const = 0;
  /// The network's weights in a checkpoint, and back.
  virtual void save_weights(torch::serialize::OutputArchive& archive) = 0;
  virtual void load_weights(torch::serialize::InputArchive& archive, const std::string& path) = 0;
};

/// The log of a run: one record per epoch, those taken from a checkpoint first.
struct TrainingLog {
  std::vector<nlohmann::json> epochs;
  std::int64_t resumed_after_epoch = 0;
};

/// Trains with `optimizer` over `samples` training samples; `on_epoch` sees each new record after its
/// checkpoint is written.
TrainingLog run_training(TrainingTask& task, torch::optim::Optimizer& optimizer, std::int64_t samples,
                         const TrainingLoopOptions& options, const ProgressCallback& progress = {},
                         const std::function<void(const nlohmann::json&)>& on_epoch = {});

/// A task whose epoch records are `Record`s (to_json, and from_json(json, where) refusing a malformed one).
template <class Record>
class TypedTrainingTask : public TrainingTask {
 public:
  void check_record(const nlohmann::json& record, const std::string& where) const final {
    Record::from_json(record, where);
  }
};

/// The log of a TypedTrainingTask's run, typed.
template <class Record>
struct TypedTrainingLog {
  std::vector<Record> epochs;
  std::int64_t resumed_after_epoch = 0;
};

/// run_training with typed records, for `on_epoch` and in the log.
template <class Record>
TypedTrainingLog<Record> run_typed_training(TypedTrainingTask<Record>& task, torch::optim::Optimizer& optimizer,
                                            std::int64_t samples, const TrainingLoopOptions& options,
                                            const ProgressCallback& progress,
                                            const std::function<void(const Record&)>& on_epoch) {
  const TrainingLog log = run_training(task, optimizer, samples, options, progress, [&](const nlohmann::json& r) {
    if (on_epoch) on_epoch(Record::from_json(r, "epoch record"));
  });
  TypedTrainingLog<Record> typed;
  for (const nlohmann::json& record : log.epochs) typed.epochs.push_back(Record::from_json(record, "epoch record"));
  typed.resumed_after_epoch = log.resumed_after_epoch;
  return typed;
}

/// A checkpoint's record of the loop (JSON text; `path` names the checkpoint in errors).
struct TrainingCheckpointState {
  nlohmann::json recipe;
  nlohmann::json inputs;  ///< null in checkpoints written before the inputs were recorded
  std::vector<nlohmann::json> log;
};
/// Parses it: an object with a recipe and a log whose records are epochs 1, 2, ...; anything else is an Error
/// naming the checkpoint.
TrainingCheckpointState parse_training_checkpoint_state(const std::string& text, const std::string& path);

}  // namespace robustlens
