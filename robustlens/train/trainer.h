// The trainer: minibatch optimisation of a built-in model with one objective, on the training loop of
// core/training_loop.h (a checkpoint after every epoch, exact resume). The shuffling and the random draws
// of epoch e depend only on (seed, e), so a killed run resumed from its last checkpoint ends with the same
// weights as an uninterrupted one (on CPU).
#pragma once

#include "robustlens/core/options.h"
#include "robustlens/core/progress.h"
#include "robustlens/data/dataset.h"
#include "robustlens/models/builtin_model.h"
#include "robustlens/train/objectives.h"
#include "robustlens/train/schedule.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace robustlens {

struct TrainOptions {
  /// "sgd" (with momentum, L2 weight decay) or "adamw" (decoupled weight decay).
  std::string optimizer = "sgd";
  double lr = 0.1;
  double momentum = 0.9;
  double weight_decay = 5e-4;
  ScheduleOptions schedule;
  std::int64_t epochs = 3;
  std::int64_t batch_size = 128;
  std::uint64_t seed = 0;
  ObjectiveOptions objective;
  /// The binenc/wide latent penalty; enabled by for_architecture().
  LatentPenaltyOptions latent_penalty;
  /// Keep the output layer at the base learning rate while the schedule moves
  /// the rest (the binary-encoding recipe).
  bool hold_output_lr = false;
  /// The transform the caller applied to the training and test images ("none",
  /// "dct-flip", "low-pass:B"): recorded in the recipe, not applied here; any but
  /// "none" keeps the PGD objectives from clipping to [0,1], which such images leave.
  std::string transform = "none";
  /// Batch size of the per-epoch test evaluation.
  std::int64_t eval_batch_size = 1000;
  /// Folder for checkpoint.pt, model.pt and train_log.json ("" = no files).
  std::string out_dir;
  /// Continue from out_dir/checkpoint.pt when it exists (else start afresh).
  bool resume = true;

  RL_SETTER(optimizer)
  RL_SETTER(lr)
  RL_SETTER(momentum)
  RL_SETTER(weight_decay)
  RL_SETTER(schedule)
  RL_SETTER(epochs)
  RL_SETTER(batch_size)
  RL_SETTER(seed)
  RL_SETTER(objective)
  RL_SETTER(latent_penalty)
  RL_SETTER(hold_output_lr)
  RL_SETTER(transform)
  RL_SETTER(eval_batch_size)
  RL_SETTER(out_dir)
  RL_SETTER(resume)

  void check() const;
  /// These options with the latent penalty enabled exactly when the
  /// architecture's head is penalised (binenc, wide); train_model uses this.
  TrainOptions for_architecture(const ArchitectureSpec& spec) const;
  /// The recipe: everything that determines the weights (not out_dir/resume).
  nlohmann::json to_json() const;
};

struct EpochRecord {
  std::int64_t epoch = 0;    ///< 1-based
  double learning_rate = 0;  ///< at the epoch's last step
  double train_loss = 0;
  double train_accuracy = 0;  ///< on the (possibly perturbed) training inputs
  double test_accuracy = 0;
  double seconds = 0;
  double latent_gamma = 0;  ///< the latent penalty's gamma in this epoch (0 = none)
  nlohmann::json to_json() const;
  /// `where` names the record in errors (a missing key or a wrong type).
  static EpochRecord from_json(const nlohmann::json& json, const std::string& where = "epoch record");
};

struct TrainResult {
  std::vector<EpochRecord> epochs;
  std::int64_t resumed_after_epoch = 0;  ///< epochs taken from a checkpoint
  nlohmann::json to_json() const;
};

using EpochCallback = std::function<void(const EpochRecord&)>;

/// Trains `model` in place on `train`, evaluating on `test` after every epoch;
/// `on_epoch` sees each finished epoch (after its checkpoint is written).
TrainResult train_model(BuiltinModel& model, const Dataset& train, const Dataset& test, const TrainOptions& options,
                        const ProgressCallback& progress = {}, const EpochCallback& on_epoch = {});

}  // namespace robustlens
