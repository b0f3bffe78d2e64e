#include "robustlens/core/training_loop.h"

#include "robustlens/core/archive_integrity.h"
#include "robustlens/core/distributed.h"
#include "robustlens/core/error.h"
#include "robustlens/core/files.h"
#include "robustlens/core/json_fields.h"
#include "robustlens/core/random.h"

#include <torch/optim/optimizer.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

namespace robustlens {
namespace {

constexpr const char* kStateKey = "trainer_state";
constexpr const char* kOptimizerKey = "optimizer";

/// Accumulates the gradient of the batch's mean loss over all its rows, of which this process computes its share,
/// and returns that mean loss. Each process weights its share's mean by its share of the rows, so the sum of the
/// gradients over the processes is the whole batch's; random draws are the whole batch's (BatchShareScope), so every
/// row gets the numbers it gets in one process.
double batch_gradients(TrainingTask& task, torch::optim::Optimizer& optimizer, const TrainingBatch& batch,
                       const distributed::BatchShare& share, at::Generator& generator) {
  if (!distributed::active()) {
    const at::Tensor loss = task.batch_loss(batch, generator);
    const double value = loss.item<double>();
    if (std::isfinite(value)) loss.backward();
    return value;
  }
  double share_loss_sum = 0;
  {
    const distributed::BatchShareScope scope(share);
    const at::Tensor loss = task.batch_loss(batch, generator);  // every rank draws, counted or not
    if (share.counts) {
      share_loss_sum = loss.item<double>() * static_cast<double>(share.rows);
      if (std::isfinite(share_loss_sum)) (loss * (static_cast<double>(share.rows) / share.total)).backward();
    }
  }
  std::vector<at::Tensor> gradients;
  for (auto& group : optimizer.param_groups()) {
    for (at::Tensor& parameter : group.params()) {
      if (!parameter.grad().defined()) parameter.mutable_grad() = at::zeros_like(parameter);
      gradients.push_back(parameter.mutable_grad());
    }
  }
  // The loss travels with the gradients: one collective a step, not two (each costs a round trip between the ranks).
  at::Tensor loss_sum = at::full({1}, share_loss_sum, gradients.front().options());
  gradients.push_back(loss_sum);
  distributed::all_reduce_sum(gradients);
  return loss_sum.item<double>() / static_cast<double>(share.total);
}

void save_checkpoint(TrainingTask& task, torch::optim::Optimizer& optimizer, const TrainingLoopOptions& options,
                     const TrainingLog& log) {
  // State, not an output: a killed run resumes from it.
  write_file_atomically(
      options.checkpoint_path(),
      [&](const std::string& temporary) {
        torch::serialize::OutputArchive archive, optimizer_archive;
        task.save_weights(archive);
        optimizer.save(optimizer_archive);
        archive.write(kOptimizerKey, optimizer_archive);
        const nlohmann::json state = {{"recipe", options.recipe}, {"inputs", options.inputs}, {"log", log.epochs}};
        archive.write(kStateKey, c10::IValue(state.dump()));
        archive.save_to(temporary);
      },
      OutputKind::kState);
}

/// Restores weights, optimiser and log from the checkpoint; an empty log when there is none.
TrainingLog load_checkpoint(TrainingTask& task, torch::optim::Optimizer& optimizer,
                            const TrainingLoopOptions& options) {
  const std::string path = options.checkpoint_path();
  if (!std::filesystem::is_regular_file(path)) return {};
  const std::string afresh = "delete it or start afresh (" + options.owner + ".resume)";
  try {
    check_archive_records(path, "checkpoint '" + path + "'");
  } catch (const Error& error) {
    RL_CHECK(false, error.what(), "; ", afresh);
  }
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path, options.device);
  } catch (const std::exception& error) {  // c10::Error, and what else LibTorch throws for a damaged file
    RL_CHECK(false, "checkpoint '", path, "' cannot be read (", first_line(error.what()), "); ", afresh);
  }
  c10::IValue state_value;
  RL_CHECK(archive.try_read(kStateKey, state_value) && state_value.isString(), "checkpoint '", path,
           "' has no trainer state; ", afresh);
  TrainingCheckpointState state = parse_training_checkpoint_state(state_value.toStringRef(), path);
  const std::string elsewhere = "\nuse another output folder, or start afresh (" + options.owner + ".resume)";
  RL_CHECK(state.recipe == options.recipe, "checkpoint '", path,
           "' was made with a different recipe:\n  checkpoint: ", state.recipe.dump(),
           "\n  requested:  ", options.recipe.dump(), elsewhere);
  RL_CHECK(state.inputs.is_null() || state.inputs == options.inputs, "checkpoint '", path,
           "' was trained with another architecture or other training data:\n  checkpoint: ", state.inputs.dump(),
           "\n  requested:  ", options.inputs.dump(), elsewhere);
  const std::string where = "checkpoint '" + path + "': trainer state";
  for (std::size_t i = 0; i < state.log.size(); ++i) {
    task.check_record(state.log[i], where + ": log[" + std::to_string(i) + "]");
  }
  task.load_weights(archive, path);
  torch::serialize::InputArchive optimizer_archive;
  RL_CHECK(archive.try_read(kOptimizerKey, optimizer_archive), "checkpoint '", path, "' has no optimiser state");
  optimizer.load(optimizer_archive);
  TrainingLog log;
  log.resumed_after_epoch = static_cast<std::int64_t>(state.log.size());
  log.epochs = std::move(state.log);
  return log;
}

/// The ranks train in lockstep, so they must resume from the same epoch: a checkpoint that only some ranks see (an
/// output folder that is not on a file system every host sees) would leave them waiting for each other.
void check_ranks_resume_alike(std::int64_t resumed_after_epoch, const TrainingLoopOptions& options) {
  if (!distributed::active()) return;
  std::vector<double> epochs(static_cast<std::size_t>(distributed::world_size()), 0.0);
  epochs[static_cast<std::size_t>(distributed::rank())] = static_cast<double>(resumed_after_epoch);
  epochs = distributed::sum_over_ranks(epochs);
  for (std::size_t r = 1; r < epochs.size(); ++r) {
    if (epochs[r] == epochs[0]) continue;
    throw distributed::SharedError("rank " + std::to_string(r) + " would resume " + options.what + " after " +
                                   std::to_string(static_cast<std::int64_t>(epochs[r])) + " epochs, rank 0 after " +
                                   std::to_string(static_cast<std::int64_t>(epochs[0])) + ": the checkpoint '" +
                                   options.checkpoint_path() +
                                   "' must be one file that every rank sees (put --out on a file system every "
                                   "host sees)");
  }
}

}  // namespace

void TrainingTask::set_learning_rate(torch::optim::Optimizer&, const TrainingBatch&) {}

void TrainingLoopOptions::check() const {
  RL_CHECK(epochs >= 1, owner, ".epochs must be >= 1, got ", epochs);
  RL_CHECK(batch_size >= 1, owner, ".batch_size must be >= 1, got ", batch_size);
}

std::string TrainingLoopOptions::checkpoint_path() const {
  return (std::filesystem::path(out_dir) / "checkpoint.pt").string();
}

TrainingLog run_training(TrainingTask& task, torch::optim::Optimizer& optimizer, std::int64_t samples,
                         const TrainingLoopOptions& options, const ProgressCallback& progress,
                         const std::function<void(const nlohmann::json&)>& on_epoch) {
  options.check();
  RL_CHECK(samples >= 1, options.what, ": no training samples");
  TrainingLog log;
  if (!options.out_dir.empty() && options.resume) {
    // A checkpoint bad on one host only is reported once, before the ranks train in lockstep.
    distributed::agree("loading the checkpoint", [&] { log = load_checkpoint(task, optimizer, options); });
  }
  check_ranks_resume_alike(log.resumed_after_epoch, options);

  const std::int64_t steps_per_epoch = (samples + options.batch_size - 1) / options.batch_size;
  for (std::int64_t epoch = log.resumed_after_epoch; epoch < options.epochs; ++epoch) {
    const auto start_time = std::chrono::steady_clock::now();
    at::Generator generator = make_generator(derive_seed(options.seed, static_cast<std::uint64_t>(epoch)));
    const at::Tensor order = task.begin_epoch(epoch, generator);
    RL_CHECK(order.numel() == samples, options.what, ": the epoch's order has ", order.numel(), " samples, expected ",
             samples);
    const std::string name = "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(options.epochs);
    double loss_sum = 0;
    std::int64_t seen = 0;
    for (std::int64_t step = 0; step < steps_per_epoch; ++step) {
      const std::int64_t begin = step * options.batch_size;
      const std::int64_t end = std::min(begin + options.batch_size, samples);
      const distributed::BatchShare share = distributed::batch_share(end - begin);
      const TrainingBatch batch{epoch,
                                step,
                                steps_per_epoch,
                                options.epochs,
                                order.slice(0, begin + share.offset, begin + share.offset + share.rows),
                                share.counts};
      task.set_learning_rate(optimizer, batch);
      optimizer.zero_grad();
      const double value = batch_gradients(task, optimizer, batch, share, generator);
      RL_CHECK(std::isfinite(value), options.what, " diverged at epoch ", epoch + 1, ", step ", step + 1,
               " (loss is not finite); lower ", options.owner, ".lr (now ", options.lr, ")");
      optimizer.step();
      loss_sum += value * static_cast<double>(end - begin);
      seen += end - begin;
      report(progress,
             {name, seen, samples, "loss " + std::to_string(loss_sum / static_cast<double>(seen)).substr(0, 6)});
    }
    nlohmann::json record = task.finish_epoch(epoch, loss_sum / static_cast<double>(seen));
    record["epoch"] = epoch + 1;
    record["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
    log.epochs.push_back(record);
    if (!options.out_dir.empty() && distributed::is_main_process()) save_checkpoint(task, optimizer, options, log);
    if (on_epoch) on_epoch(record);
  }
  return log;
}

TrainingCheckpointState parse_training_checkpoint_state(const std::string& text, const std::string& path) {
  const std::string where = "checkpoint '" + path + "': trainer state";
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& error) {
    RL_CHECK(false, where, " is not valid JSON (", error.what(), "); delete it or start afresh");
  }
  TrainingCheckpointState state{required_field<nlohmann::json>(json, "recipe", where),
                                optional_field<nlohmann::json>(json, "inputs", nullptr, where),
                                required_field<std::vector<nlohmann::json>>(json, "log", where)};
  for (std::size_t i = 0; i < state.log.size(); ++i) {
    const std::string entry = where + ": log[" + std::to_string(i) + "]";
    const auto epoch = required_field<std::int64_t>(state.log[i], "epoch", entry);
    RL_CHECK(epoch == static_cast<std::int64_t>(i + 1), where, ": log[", i, "] is epoch ", epoch, ", expected ", i + 1);
  }
  return state;
}

}  // namespace robustlens
