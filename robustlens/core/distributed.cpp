#include "robustlens/core/distributed.h"

#include "robustlens/core/batches.h"
#include "robustlens/core/port_probe.h"

#include <c10/util/Exception.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef ROBUSTLENS_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif

#include <chrono>
#include <cstdlib>
#include <memory>

namespace robustlens::distributed {
namespace {

#ifdef ROBUSTLENS_WITH_GLOO
using Collectives = c10d::ProcessGroupGloo;
#else
using Collectives = c10d::ProcessGroup;  // never made: without Gloo, join() refuses a world of more than one
#endif

struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<Collectives> gloo;
  int rank = 0, world_size = 1, local_rank = 0;
  double timeout_seconds = 60;
  std::int64_t agreements = 0;  ///< agree() calls so far: each one's keys in the store are its own
  std::int64_t row_queues = 0;  ///< shard_rows calls so far: each one's queue in the store is its own
};

Group& group() {
  static Group instance;
  return instance;
}

thread_local bool local_only = false;
thread_local bool solo = false;

std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

int integer_from_environment(const char* name, int fallback) {
  const std::string text = environment(name);
  if (text.empty()) return fallback;
  try {
    std::size_t used = 0;
    const int value = std::stoi(text, &used);
    if (used == text.size()) return value;
  } catch (const std::exception&) {
  }
  RL_CHECK(false, "environment variable ", name, "='", text, "' is not an integer");
  return fallback;
}

/// Runs `step` (a collective, or a request to the store), turning its failure (a rank died, a timeout) into an
/// Error every rank can report.
template <typename Step>
auto with_group_failures(const std::string& what, const Step& step) -> decltype(step()) {
  try {
    return step();
  } catch (const std::exception& error) {  // c10::Error, and Gloo's own (a peer's connection reset)
    const Group& g = group();
    throw Error(detail::concat("rank ", g.rank, " of ", g.world_size, ": the process group failed during ", what, " (",
                               first_line(error.what()), "); another rank has died or did not answer within ",
                               g.timeout_seconds, " s (--dist-timeout)"));
  }
}

void run_collective(const std::string& what, const std::function<c10::intrusive_ptr<c10d::Work>()>& start) {
  with_group_failures(what, [&] { start()->wait(); });
}

/// The next chunk of shard_rows' `queue` for this rank: chunks 0..world-1 are handed out at the start, one per rank.
std::int64_t taken_from_queue(const std::string& queue) {
  const Group& g = group();
  return g.world_size + with_group_failures("the sharing out of rows", [&] { return g.store->add(queue, 1); }) - 1;
}

/// Gloo reduces and gathers numbers, not booleans: those travel as bytes.
at::Tensor to_wire(const at::Tensor& tensor) {
  const at::Tensor cpu = tensor.detach().to(at::kCPU);
  return (cpu.scalar_type() == at::kBool ? cpu.to(at::kByte) : cpu).contiguous();
}

/// Every rank's rows of `local` (same shape after the first dimension on every rank), concatenated in rank order.
at::Tensor gather_rows(const at::Tensor& local) {
  Group& g = group();
  std::vector<at::Tensor> counts_in{at::tensor({local.size(0)}, at::kLong)};
  std::vector<std::vector<at::Tensor>> counts_out(1);
  for (int r = 0; r < g.world_size; ++r) counts_out[0].push_back(at::empty({1}, at::kLong));
  run_collective("a gather of row counts", [&] { return g.gloo->allgather(counts_out, counts_in); });
  std::int64_t most = 0;
  for (const at::Tensor& count : counts_out[0]) most = std::max(most, count.item<std::int64_t>());
  // allgather wants equal shapes: pad every share to the longest.
  at::Tensor wire = to_wire(local);
  std::vector<std::int64_t> padded_shape = wire.sizes().vec();
  padded_shape[0] = most;
  at::Tensor padded = at::zeros(padded_shape, wire.options());
  padded.narrow(0, 0, wire.size(0)).copy_(wire);
  std::vector<at::Tensor> in{padded};
  std::vector<std::vector<at::Tensor>> out(1);
  for (int r = 0; r < g.world_size; ++r) out[0].push_back(at::empty_like(padded));
  run_collective("a gather of results", [&] { return g.gloo->allgather(out, in); });
  std::vector<at::Tensor> shares;
  for (int r = 0; r < g.world_size; ++r)
    shares.push_back(out[0][r].narrow(0, 0, counts_out[0][r].item<std::int64_t>()));
  return at::cat(shares).to(local.scalar_type());
}

/// Each of this rank's tensors with every rank's rows, in rank order, on the device of this rank's.
std::vector<at::Tensor> gather_each(const std::vector<at::Tensor>& local) {
  std::vector<at::Tensor> all;
  for (const at::Tensor& t : local) all.push_back(active() ? gather_rows(t).to(t.device()) : t);
  return all;
}

}  // namespace

GroupOptions GroupOptions::resolved() const {
  GroupOptions o = *this;
  if (o.world_size == 0) o.world_size = integer_from_environment("WORLD_SIZE", 1);
  if (o.rank < 0) o.rank = integer_from_environment("RANK", 0);
  if (o.master_address.empty()) o.master_address = environment("MASTER_ADDR");
  if (o.master_address.empty()) o.master_address = "127.0.0.1";
  if (o.master_port == 0) o.master_port = integer_from_environment("MASTER_PORT", 29500);
  RL_CHECK(o.world_size >= 1, "world size (--world-size or WORLD_SIZE) must be >= 1, got ", o.world_size);
  RL_CHECK(o.rank >= 0 && o.rank < o.world_size, "rank (--rank or RANK) must lie in [0, ", o.world_size, "), got ",
           o.rank);
  RL_CHECK(o.master_port >= 1 && o.master_port <= 65535,
           "master port (--master-port or MASTER_PORT) must lie in [1, 65535], got ", o.master_port);
  RL_CHECK(o.timeout_seconds > 0, "GroupOptions.timeout_seconds must be > 0, got ", o.timeout_seconds);
  return o;
}

void join(const GroupOptions& options) {
  Group& g = group();
  if (g.gloo) return;
  const GroupOptions o = options.resolved();
  if (o.world_size == 1) return;
#ifdef ROBUSTLENS_WITH_GLOO
  const auto timeout = std::chrono::milliseconds(static_cast<std::int64_t>(o.timeout_seconds * 1000));
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<std::uint16_t>(o.master_port);
  // torchrun's agent hosts the store already: every rank, rank 0 included, is its client.
  store_options.isServer = o.rank == 0 && environment("TORCHELASTIC_USE_AGENT_STORE") != "True";
  store_options.numWorkers = o.world_size;
  store_options.waitWorkers = false;
  store_options.timeout = timeout;
  RL_CHECK(store_options.isServer || listening_within(o.master_address, o.master_port, timeout), "rank ", o.rank,
           " of ", o.world_size, " cannot join the process group: nothing accepted connections at ", o.master_address,
           ":", o.master_port, " within ", o.timeout_seconds,
           " s; is rank 0 (or torchrun's agent) running there, and is the address reachable (--master-addr, "
           "--master-port, --dist-timeout)?");
  try {
    auto tcp = c10::make_intrusive<c10d::TCPStore>(o.master_address, store_options);
    // torchrun's agent keeps its store across the restarts of failed workers (--max_restarts): each attempt's keys
    // (Gloo's rendezvous, shard_rows' queues) must be its own, as in torch.distributed's env:// rendezvous.
    const std::string attempt = environment("TORCHELASTIC_RESTART_COUNT");
    g.store = c10::make_intrusive<c10d::PrefixStore>("robustlens/attempt_" + (attempt.empty() ? "0" : attempt), tcp);
    auto gloo_options = c10d::ProcessGroupGloo::Options::create(timeout);
    const std::string interface = environment("GLOO_SOCKET_IFNAME");
    gloo_options->devices.push_back(interface.empty() ? c10d::ProcessGroupGloo::createDefaultDevice()
                                                      : c10d::ProcessGroupGloo::createDeviceForInterface(interface));
    g.gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(g.store, o.rank, o.world_size, gloo_options);
  } catch (const std::exception& error) {
    RL_CHECK(false, "rank ", o.rank, " of ", o.world_size, " cannot join the process group at ", o.master_address, ":",
             o.master_port, " (", first_line(error.what()),
             "); are the other ranks running, and is the address "
             "reachable (--master-addr, --master-port, --dist-timeout ",
             o.timeout_seconds, " s)?");
  }
#else
  RL_CHECK(false,
           "this robustlens was built without c10d's Gloo headers (Debian: libgloo-dev), so it runs in one "
           "process only, not as rank ",
           o.rank, " of ", o.world_size, ": install them and rebuild");
#endif
  g.rank = o.rank;
  g.world_size = o.world_size;
  g.local_rank = integer_from_environment("LOCAL_RANK", 0);
  g.timeout_seconds = o.timeout_seconds;
}

bool active() { return group().world_size > 1 && !local_only; }

int rank() { return group().rank; }
int world_size() { return group().world_size; }
int local_rank() { return group().local_rank; }
bool is_main_process() { return group().rank == 0 || solo; }

nlohmann::json describe() {
  const Group& g = group();
  if (g.world_size == 1) return nullptr;
  return {{"world_size", g.world_size}, {"rank", g.rank}, {"backend", "gloo"}, {"timeout_seconds", g.timeout_seconds}};
}

void agree(const std::string& what, const std::function<void()>& step) {
  if (!active()) return step();
  Group& g = group();
  const std::string key = "error/" + std::to_string(g.agreements++) + "/";
  std::string message;
  try {
    step();
  } catch (const Error& error) {
    message = error.what();
    g.store->set(key + std::to_string(g.rank), std::vector<std::uint8_t>(message.begin(), message.end()));
  }
  std::vector<at::Tensor> flags{at::zeros({g.world_size}, at::kLong)};
  flags[0][g.rank].fill_(message.empty() ? 0 : 1);
  run_collective(what, [&] { return g.gloo->allreduce(flags); });
  for (int r = 0; r < g.world_size; ++r) {
    if (flags[0][r].item<std::int64_t>() == 0) continue;
    const std::vector<std::uint8_t> bytes = g.store->get(key + std::to_string(r));
    throw SharedError("rank " + std::to_string(r) + ": " + std::string(bytes.begin(), bytes.end()));
  }
}

void all_reduce_sum(at::Tensor& tensor) {
  std::vector<at::Tensor> one{tensor};
  all_reduce_sum(one);
}

void all_reduce_sum(std::vector<at::Tensor>& tensors) {
  if (!active() || tensors.empty()) return;
  std::vector<at::Tensor> flat;
  for (const at::Tensor& t : tensors) flat.push_back(to_wire(t).to(tensors.front().scalar_type()).reshape(-1));
  std::vector<at::Tensor> wire{at::cat(flat)};
  run_collective("an all-reduce", [&] { return group().gloo->allreduce(wire); });
  std::int64_t offset = 0;
  for (at::Tensor& t : tensors) {
    t.copy_(wire[0].narrow(0, offset, t.numel()).view(t.sizes()));
    offset += t.numel();
  }
}

bool main_process_says(bool value) {
  if (!active()) return value;
  std::vector<at::Tensor> flag{at::tensor({value ? 1 : 0}, at::kLong)};
  run_collective("a broadcast of a decision", [&] { return group().gloo->broadcast(flag); });
  return flag[0].item<std::int64_t>() != 0;
}

void barrier() {
  if (!active()) return;
  run_collective("a barrier", [&] { return group().gloo->barrier(); });
}

std::vector<double> sum_over_ranks(std::vector<double> values) {
  if (!active() || values.empty()) return values;
  at::Tensor wire = at::tensor(values, at::kDouble);
  all_reduce_sum(wire);
  return std::vector<double>(wire.data_ptr<double>(), wire.data_ptr<double>() + wire.numel());
}

std::pair<std::int64_t, std::int64_t> row_share(std::int64_t rows) {
  if (!active()) return {0, rows};
  // The first rows % w ranks take one row more: rank 0 always has rows when there are any.
  const std::int64_t w = world_size(), r = rank(), base = rows / w, extra = rows % w;
  const std::int64_t begin = r * base + std::min(r, extra);
  return {begin, begin + base + (r < extra ? 1 : 0)};
}

at::Tensor share_of_rows(const at::Tensor& all) {
  const auto [begin, end] = row_share(all.size(0));
  return all.slice(0, begin, end);
}

std::vector<std::pair<std::int64_t, std::int64_t>> row_chunks(std::int64_t rows, int world) {
  RL_CHECK(rows >= 0 && world >= 1, "row_chunks: ", rows, " rows among ", world, " ranks");
  // Each chunk a 1/(2·world) of the rows left, down to a 1/(32·world) of them all: big chunks while there are many
  // rows to share, small ones at the end, where a rank that finishes first would otherwise wait for the others.
  const std::int64_t smallest = std::max<std::int64_t>(1, rows / (32 * std::int64_t{world}));
  std::vector<std::pair<std::int64_t, std::int64_t>> chunks;
  for (std::int64_t first = 0; first < rows;) {
    const std::int64_t left = rows - first;
    const std::int64_t size = std::min(left, std::max(smallest, (left + 2 * world - 1) / (2 * world)));
    chunks.emplace_back(first, first + size);
    first += size;
  }
  return chunks;
}

std::vector<at::Tensor> shard_rows(std::int64_t rows, const ProgressCallback& progress, const RowsCompute& compute) {
  if (!active()) return compute(0, rows, progress);
  if (rows < world_size()) {  // a rank would have no rows: every rank computes them all alike
    LocalScope alone;
    return compute(0, rows, progress);
  }
  Group& g = group();
  const std::vector<std::pair<std::int64_t, std::int64_t>> chunks = row_chunks(rows, g.world_size);
  const std::string queue = "rows/" + std::to_string(g.row_queues++);
  // Rank r starts with chunk r (there are at least as many chunks as ranks, so every rank has rows and knows the
  // results' shapes); the others go to whoever asks first.
  std::int64_t next = g.rank;
  std::vector<std::vector<at::Tensor>> parts;
  std::vector<at::Tensor> indices;
  std::int64_t done = 0;
  std::string task;  // the task compute last reported, whose line the end of the queue finishes
  const std::int64_t expected = (rows + g.world_size - 1) / g.world_size;
  {
    LocalScope alone;
    while (next < static_cast<std::int64_t>(chunks.size())) {
      const auto [first, last] = chunks[next];
      // This rank's rows so far against its expected share, as far as the queue lets one rank know.
      const ProgressCallback chunk_progress = [&, first = first, last = last](const ProgressUpdate& update) {
        const std::int64_t within = update.total > 0 ? (last - first) * update.done / update.total : 0;
        task = update.task;
        report(progress, {update.task, std::min(done + within, expected - 1), expected, update.status});
      };
      std::vector<at::Tensor> part = compute(first, last, chunk_progress);
      for (const at::Tensor& t : part) {
        RL_CHECK(t.dim() >= 1 && t.size(0) == last - first, "shard_rows: a result of shape ", t.sizes(),
                 " does not have the chunk's ", last - first, " rows first");
      }
      if (parts.empty()) parts.resize(part.size());
      RL_CHECK(part.size() == parts.size(), "shard_rows: a chunk returned ", part.size(), " tensors, the first ",
               parts.size());
      for (std::size_t i = 0; i < part.size(); ++i) parts[i].push_back(std::move(part[i]));
      indices.push_back(at::arange(first, last, at::kLong));
      done += last - first;
      next = taken_from_queue(queue);
    }
  }
  std::vector<at::Tensor> local{at::cat(indices)};
  for (const std::vector<at::Tensor>& part : parts) local.push_back(at::cat(part));
  const std::vector<at::Tensor> gathered = gather_each(local);
  if (!task.empty()) report(progress, {task, expected, expected, ""});
  std::vector<at::Tensor> in_order;
  for (std::size_t i = 1; i < gathered.size(); ++i) {
    const at::Tensor order = gathered[0].to(gathered[i].device());
    in_order.push_back(at::empty_like(gathered[i]).index_copy_(0, order, gathered[i]));
  }
  return in_order;
}

BatchShare batch_share(std::int64_t total) {
  if (!active() || total >= world_size()) {
    const auto [begin, end] = row_share(total);
    return {begin, end - begin, total, true};
  }
  return {0, total, total, is_main_process()};
}

BatchShareScope::BatchShareScope(const BatchShare& share) {
  if (share.split()) rows_.emplace(share.offset, share.rows, share.total);
}

void for_each_batch_share(
    std::int64_t rows, std::int64_t batch_size,
    const std::function<void(std::int64_t first, std::int64_t last, const BatchShare& share)>& compute,
    const ProgressCallback& progress, const std::string& task) {
  for (const auto [start, end] : batches(rows, batch_size)) {
    const BatchShare share = batch_share(end - start);
    {
      const BatchShareScope scope(share);
      compute(start + share.offset, start + share.offset + share.rows, share);
    }
    report(progress, {task, end, rows, ""});
  }
}

std::vector<at::Tensor> gather_batch_shares(
    std::int64_t rows, std::int64_t batch_size,
    const std::function<std::vector<at::Tensor>(std::int64_t first, std::int64_t last)>& compute,
    const ProgressCallback& progress, const std::string& task) {
  RL_CHECK(rows >= 1, "gather_batch_shares: no rows to compute (", task, ")");
  std::vector<std::vector<at::Tensor>> parts;
  for (const auto [start, end] : batches(rows, batch_size)) {
    const BatchShare share = batch_share(end - start);
    std::vector<at::Tensor> local;
    {
      const BatchShareScope scope(share);
      local = compute(start + share.offset, start + share.offset + share.rows);
    }
    if (share.split()) local = gather_each(local);  // an unsplit batch is whole on every rank
    if (parts.empty()) parts.resize(local.size());
    for (std::size_t i = 0; i < local.size(); ++i) parts[i].push_back(local[i]);
    report(progress, {task, end, rows, ""});
  }
  std::vector<at::Tensor> whole;
  for (const std::vector<at::Tensor>& part : parts) whole.push_back(at::cat(part));
  return whole;
}

std::vector<double> sum_batch_shares(
    std::int64_t rows, std::int64_t batch_size,
    const std::function<std::vector<double>(std::int64_t first, std::int64_t last)>& compute) {
  RL_CHECK(rows >= 1, "sum_batch_shares: no rows to sum over");
  std::vector<double> sums;
  for_each_batch_share(rows, batch_size, [&](std::int64_t first, std::int64_t last, const BatchShare& share) {
    const std::vector<double> part = compute(first, last);
    if (sums.empty()) sums.assign(part.size(), 0.0);
    RL_CHECK(part.size() == sums.size(), "sum_batch_shares: a batch returned ", part.size(), " sums, the first ",
             sums.size());
    if (!share.counts) return;
    for (std::size_t i = 0; i < part.size(); ++i) sums[i] += part[i];
  });
  return sum_over_ranks(sums);
}

SoloScope::SoloScope() : previous_(solo) { solo = true; }
SoloScope::~SoloScope() { solo = previous_; }

LocalScope::LocalScope() : previous_(local_only) { local_only = true; }
LocalScope::~LocalScope() { local_only = previous_; }

}  // namespace robustlens::distributed
