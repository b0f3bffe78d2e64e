// Data parallelism over PyTorch's c10d: the process group of a run started by `torchrun` (or by hand with
// WORLD_SIZE, RANK, MASTER_ADDR and MASTER_PORT), and the few collectives robustlens needs.
//
// One process group per process, like torch.distributed's default group: join() once at the start of a
// command; without it (or with a world of one) every function here is the identity of a single process, so
// code written for many processes runs unchanged in one. The collectives run on Gloo over host copies of the
// tensors (any device); a rank that dies or cannot be reached makes every other rank's next collective fail
// within the timeout with an Error naming the failure.
//
// What is sharded how:
// - shard_rows: a computation whose rows are independent (an attack's per-sample search) runs on chunks of rows
//   that the ranks take from a queue as they finish the last, and every rank gets all rows back in order: the
//   same numbers as one process.
// - batch_share: work done batch by batch (training steps, an analysis's sums) splits each batch's rows, the random
//   draws being the whole batch's; gradients and sums are then all-reduced (all_reduce_sum, sum_over_ranks), and
//   rows gathered (gather_batch_shares).
// - SoloScope: independent units (a sweep's models) done by one rank each, as one process does them.
// - all_reduce_sum: gradients and counts (data-parallel training, reductions over samples).
// - Only the main process (rank 0, or a rank inside a SoloScope) writes files (core/files.h) and commits runs
//   (core/run_folder.h).
#pragma once

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "robustlens/core/error.h"
#include "robustlens/core/options.h"
#include "robustlens/core/progress.h"
#include "robustlens/core/random.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace robustlens::distributed {

/// Where the process group meets. Fields left at their defaults come from torchrun's environment (WORLD_SIZE,
/// RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT); without it the world is this process alone.
struct GroupOptions {
  int world_size = 0;          ///< 0: WORLD_SIZE, else 1
  int rank = -1;               ///< -1: RANK, else 0
  std::string master_address;  ///< "": MASTER_ADDR, else 127.0.0.1
  int master_port = 0;         ///< 0: MASTER_PORT, else 29500
  /// How long a collective (or the rendezvous) waits for the other ranks before it fails.
  double timeout_seconds = 60;

  RL_SETTER(world_size)
  RL_SETTER(rank)
  RL_SETTER(master_address)
  RL_SETTER(master_port)
  RL_SETTER(timeout_seconds)

  /// The options with the environment's values filled in; an Error names a malformed variable or value.
  GroupOptions resolved() const;
};

/// Joins the process group (a no-op for a world of one). Rank 0 hosts the store unless torchrun's agent already
/// does (TORCHELASTIC_USE_AGENT_STORE). The first call joins; later ones (an audit's steps) keep that group.
void join(const GroupOptions& options);

/// The process group's rank and size (0 and 1 for one process; a LocalScope does not change them).
int rank();
int world_size();
/// Whether collectives here reach other processes: a world of more than one, outside a LocalScope.
bool active();
/// torchrun's LOCAL_RANK (the process's index on its host), 0 without it: which GPU a rank uses.
int local_rank();
/// Rank 0, or any rank inside a SoloScope: the process that writes outputs.
bool is_main_process();
/// {"world_size", "rank", "backend", "timeout_seconds"} for every output's record; null for one process.
nlohmann::json describe();

/// An error that every rank raised together (a bad option or file found by agree()): the main process alone
/// reports it.
class SharedError : public Error {
 public:
  using Error::Error;
};

/// Runs `step` on every rank and agrees on the outcome before anyone goes on: when it throws an Error on some
/// rank, every rank throws a SharedError with the first failing rank's message (naming the rank), so that bad
/// input on one host is reported once instead of leaving the others waiting in a collective.
void agree(const std::string& what, const std::function<void()>& step);

/// Sums `tensor` over the ranks, in place (any device and dtype Gloo reduces).
void all_reduce_sum(at::Tensor& tensor);
/// Sums a group of tensors in one collective (e.g. a model's gradients), in place.
void all_reduce_sum(std::vector<at::Tensor>& tensors);

/// Rank 0's `value` on every rank: for a decision that must be the same everywhere (e.g. whether a step in the
/// output folder is finished, which only rank 0 may have written).
bool main_process_says(bool value);
/// Waits until every rank is here: before the others read what rank 0 wrote.
void barrier();

/// The sums of `values` over the ranks (counts, loss sums), in double precision.
std::vector<double> sum_over_ranks(std::vector<double> values);

/// The rows [begin, end) of 0..rows-1 that this rank computes: contiguous, in rank order, sizes differing by at
/// most one (the first ranks take the extra rows); all of them outside active().
std::pair<std::int64_t, std::int64_t> row_share(std::int64_t rows);

/// This rank's share (row_share) of the rows of `all`, a tensor every rank holds alike: for sums over rows that
/// all_reduce_sum then adds up over the ranks. All of it outside active().
at::Tensor share_of_rows(const at::Tensor& all);

/// While it lives, this thread works as a world of one (no collectives): for work every rank repeats alike.
class LocalScope {
 public:
  LocalScope();
  ~LocalScope();
  LocalScope(const LocalScope&) = delete;
  LocalScope& operator=(const LocalScope&) = delete;

 private:
  bool previous_;
};

/// While it lives, this thread does a unit of work alone (a sweep's model) and writes its outputs itself: a world
/// of one (LocalScope) whose process counts as the main one (is_main_process) for files and run folders.
class SoloScope {
 public:
  SoloScope();
  ~SoloScope();
  SoloScope(const SoloScope&) = delete;
  SoloScope& operator=(const SoloScope&) = delete;

 private:
  LocalScope alone_;
  bool previous_;
};

/// This rank's rows [offset, offset + rows) of one batch of `total` rows, for work split row by row inside every
/// batch (data-parallel training, an analysis's sums over a dataset): contiguous, in rank order. A batch of fewer
/// rows than ranks is computed whole by every rank (so that their random streams stay in step) and counts on rank 0
/// alone. One process: the whole batch, counted.
struct BatchShare {
  std::int64_t offset = 0, rows = 0, total = 0;
  bool counts = true;  ///< whether this rank's results of the batch enter sums and gathers
  /// Whether other ranks compute the batch's other rows.
  bool split() const { return rows < total; }
};
BatchShare batch_share(std::int64_t total);

/// While it lives, this thread computes `share` of its batch: as a world of one, with the random draws of the whole
/// batch narrowed to the share's rows (RowShareScope in core/random.h). Nothing changes for an unsplit batch.
class BatchShareScope {
 public:
  explicit BatchShareScope(const BatchShare& share);
  BatchShareScope(const BatchShareScope&) = delete;
  BatchShareScope& operator=(const BatchShareScope&) = delete;

 private:
  LocalScope alone_;
  std::optional<RowShareScope> rows_;
};

/// Walks the batches of rows 0..rows-1 in order and runs `compute(first, last, share)` on this rank's rows
/// [first, last) of each, inside its BatchShareScope: the whole batch [start, end) in one process. After each
/// batch, `progress` hears of `task`'s rows done.
void for_each_batch_share(
    std::int64_t rows, std::int64_t batch_size,
    const std::function<void(std::int64_t first, std::int64_t last, const BatchShare& share)>& compute,
    const ProgressCallback& progress = {}, const std::string& task = "");

/// for_each_batch_share for `compute` returning per-row tensors (rows first): each tensor with every batch's rows,
/// gathered from the ranks in order, on every rank. No rows is an Error.
std::vector<at::Tensor> gather_batch_shares(
    std::int64_t rows, std::int64_t batch_size,
    const std::function<std::vector<at::Tensor>(std::int64_t first, std::int64_t last)>& compute,
    const ProgressCallback& progress = {}, const std::string& task = "");

/// for_each_batch_share for `compute` returning sums over its rows: the sums over all rows (the counted shares',
/// batch by batch in double, then over the ranks), on every rank. No rows is an Error.
std::vector<double> sum_batch_shares(
    std::int64_t rows, std::int64_t batch_size,
    const std::function<std::vector<double>(std::int64_t first, std::int64_t last)>& compute);

/// Per-sample work on rows [first, last) of the input, reporting its progress to `progress`: the tensors it returns
/// have those rows first.
using RowsCompute =
    std::function<std::vector<at::Tensor>(std::int64_t first, std::int64_t last, const ProgressCallback& progress)>;

/// Runs `compute` over rows 0..rows-1 and returns each tensor it returns with all the rows in order, on every rank
/// (on the device of this rank's). One process: compute(0, rows, progress). Ranks take chunks of rows from a queue
/// (a counter in the store) until none are left, so a rank whose samples happen to be slow (DeepFool's iterations
/// vary) takes fewer: the chunks shrink towards the end (guided scheduling) and their bounds depend only on `rows`
/// and the world, so every row is computed in the same chunk whichever rank takes it, and the numbers do not depend
/// on which rank was faster. Inside `compute` the world is this process alone, so that nested sharded code does not
/// shard again; `progress` hears of this rank's rows done. Fewer rows than ranks: every rank computes them all.
std::vector<at::Tensor> shard_rows(std::int64_t rows, const ProgressCallback& progress, const RowsCompute& compute);

/// The chunks [first, last) of rows 0..rows-1 that shard_rows hands out among `world` ranks, in queue order.
std::vector<std::pair<std::int64_t, std::int64_t>> row_chunks(std::int64_t rows, int world);

}  // namespace robustlens::distributed
