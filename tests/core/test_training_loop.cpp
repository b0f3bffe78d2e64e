#include "robustlens/core/training_loop.h"

#include "robustlens/core/error.h"
#include "robustlens/core/json_fields.h"
#include "robustlens/core/random.h"
#include "test_support.h"

#include <gtest/gtest.h>
#include <torch/optim/sgd.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <limits>

namespace robustlens {
namespace {

struct SimulatedKill {};

/// Least squares y ≈ X·w on fixed data, with `noise`·N(0,1) from the epoch's generator added to the residuals
/// (so that a resumed run must continue the generator's stream to end where an uninterrupted one does).
class LeastSquaresTask final : public TrainingTask {
 public:
  explicit LeastSquaresTask(double noise = 0) : noise_(noise) {
    at::Generator generator = make_generator(1);
    x_ = random_normal({24, 3}, generator, at::kDouble);
    y_ = x_.matmul(at::tensor({1.0, -2.0, 0.5}, at::kDouble));
    w_ = at::zeros({3}, at::kDouble).requires_grad_(true);
  }
  at::Tensor begin_epoch(std::int64_t, at::Generator& generator) override { return random_permutation(24, generator); }
  at::Tensor batch_loss(const TrainingBatch& batch, at::Generator& generator) override {
    at::Tensor residual = x_.index_select(0, batch.index).matmul(w_) - y_.index_select(0, batch.index);
    if (noise_ > 0) residual = residual + noise_ * random_normal(residual.sizes().vec(), generator, at::kDouble);
    return residual.square().mean() * scale_;
  }
  nlohmann::json finish_epoch(std::int64_t, double mean_loss) override { return {{"train_loss", mean_loss}}; }
  void check_record(const nlohmann::json& record, const std::string& where) const override {
    required_field<double>(record, "train_loss", where);
  }
  void save_weights(torch::serialize::OutputArchive& archive) override { archive.write("w", w_); }
  void load_weights(torch::serialize::InputArchive& archive, const std::string&) override { archive.read("w", w_); }

  at::Tensor x_, y_, w_;
  double noise_ = 0, scale_ = 1;
};

TrainingLoopOptions loop_options(const std::string& out_dir = "") {
  return TrainingLoopOptions()
      .set_owner("ToyOptions")
      .set_what("toy training")
      .set_epochs(3)
      .set_batch_size(5)
      .set_seed(4)
      .set_lr(0.05)
      .set_out_dir(out_dir)
      .set_recipe({{"lr", 0.05}})
      .set_inputs({{"data", "toy"}});
}

TEST(TrainingLoop, AFullBatchEpochIsOneGradientStepInClosedForm) {
  LeastSquaresTask task;
  torch::optim::SGD optimizer({task.w_}, torch::optim::SGDOptions(0.1));
  const at::Tensor w0 = task.w_.detach().clone();
  const TrainingLog log = run_training(task, optimizer, 24, loop_options().set_epochs(1).set_batch_size(24));
  // ∇ mean((Xw − y)²) = (2/N)·Xᵀ(Xw − y).
  const at::Tensor gradient = 2.0 / 24 * task.x_.t().matmul(task.x_.matmul(w0) - task.y_);
  EXPECT_TRUE(at::allclose(task.w_.detach(), w0 - 0.1 * gradient, 1e-12, 1e-14));
  ASSERT_EQ(log.epochs.size(), 1u);
  EXPECT_EQ(log.epochs[0].at("epoch"), 1);
  EXPECT_DOUBLE_EQ(log.epochs[0].at("train_loss").get<double>(),
                   (task.x_.matmul(w0) - task.y_).square().mean().item<double>());
  EXPECT_GE(log.epochs[0].at("seconds").get<double>(), 0);
}

TEST(TrainingLoop, KilledAndResumedRunEndsWithTheSameWeightsAndLog) {
  testing::TemporaryDirectory whole, interrupted;
  LeastSquaresTask reference(0.3);
  torch::optim::SGD reference_optimizer({reference.w_}, torch::optim::SGDOptions(0.05).momentum(0.9));
  const TrainingLog expected = run_training(reference, reference_optimizer, 24, loop_options(whole.path()));

  LeastSquaresTask first(0.3);
  torch::optim::SGD first_optimizer({first.w_}, torch::optim::SGDOptions(0.05).momentum(0.9));
  const auto kill_in_epoch_two = [](const ProgressUpdate& update) {
    if (update.task == "epoch 2/3" && update.done >= 10) throw SimulatedKill{};
  };
  EXPECT_THROW(run_training(first, first_optimizer, 24, loop_options(interrupted.path()), kill_in_epoch_two),
               SimulatedKill);

  LeastSquaresTask resumed(0.3);  // fresh weights and momentum: the checkpoint must replace both
  torch::optim::SGD resumed_optimizer({resumed.w_}, torch::optim::SGDOptions(0.05).momentum(0.9));
  std::vector<std::int64_t> seen;
  const TrainingLog log = run_training(resumed, resumed_optimizer, 24, loop_options(interrupted.path()), {},
                                       [&](const nlohmann::json& record) { seen.push_back(record.at("epoch")); });
  EXPECT_EQ(log.resumed_after_epoch, 1);
  EXPECT_EQ(seen, (std::vector<std::int64_t>{2, 3}));
  ASSERT_EQ(log.epochs.size(), 3u);
  EXPECT_TRUE(at::equal(resumed.w_, reference.w_));
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(log.epochs[i].at("train_loss"), expected.epochs[i].at("train_loss"));

  // Resuming a finished run trains nothing; another recipe or other inputs are refused.
  EXPECT_EQ(run_training(resumed, resumed_optimizer, 24, loop_options(interrupted.path())).resumed_after_epoch, 3);
  testing::expect_error(
      [&] {
        run_training(resumed, resumed_optimizer, 24, loop_options(interrupted.path()).set_recipe({{"lr", 1}}));
      },
      "was made with a different recipe");
  testing::expect_error(
      [&] {
        run_training(resumed, resumed_optimizer, 24, loop_options(interrupted.path()).set_inputs({{"data", 2}}));
      },
      "another architecture or other training data");
  EXPECT_EQ(run_training(resumed, resumed_optimizer, 24, loop_options(interrupted.path()).set_resume(false))
                .resumed_after_epoch,
            0);
}

TEST(TrainingLoop, ANonFiniteLossStopsTheRunNamingTheLearningRate) {
  LeastSquaresTask task;
  task.scale_ = std::numeric_limits<double>::infinity();
  torch::optim::SGD optimizer({task.w_}, torch::optim::SGDOptions(0.05));
  testing::expect_error(
      [&] { run_training(task, optimizer, 24, loop_options()); },
      "toy training diverged at epoch 1, step 1 (loss is not finite); lower ToyOptions.lr (now 0.05)");
  testing::expect_error([&] { run_training(task, optimizer, 0, loop_options()); }, "toy training: no training samples");
  testing::expect_error([&] { run_training(task, optimizer, 24, loop_options().set_batch_size(0)); },
                        "ToyOptions.batch_size must be >= 1, got 0");
}

TEST(TrainingLoop, AMalformedCheckpointStateIsAnErrorNamingTheCheckpoint) {
  const nlohmann::json epoch = {{"epoch", 1}, {"train_loss", 0.5}, {"seconds", 2.5}};
  const nlohmann::json valid = {{"recipe", {{"epochs", 2}}}, {"log", {epoch}}};
  const TrainingCheckpointState state = parse_training_checkpoint_state(valid.dump(), "c.pt");
  ASSERT_EQ(state.log.size(), 1u);
  EXPECT_EQ(state.log[0], epoch);
  EXPECT_TRUE(state.inputs.is_null());
  const std::string where = "checkpoint 'c.pt': trainer state";
  testing::expect_error([] { parse_training_checkpoint_state("{\"recipe\"", "c.pt"); }, where + " is not valid JSON");
  testing::expect_error([] { parse_training_checkpoint_state("[]", "c.pt"); }, where + ": key 'recipe' is missing");
  nlohmann::json not_a_list = valid;
  not_a_list["log"] = "epochs";
  testing::expect_error([&] { parse_training_checkpoint_state(not_a_list.dump(), "c.pt"); },
                        "key 'log' holds a value of the wrong type");
  nlohmann::json skipped = valid;
  skipped["log"][0]["epoch"] = 2;
  testing::expect_error([&] { parse_training_checkpoint_state(skipped.dump(), "c.pt"); },
                        "log[0] is epoch 2, expected 1");
}

TEST(TrainingLoop, ACheckpointRecordTheTaskRefusesIsAnErrorNamingIt) {
  testing::TemporaryDirectory dir;
  LeastSquaresTask task;
  torch::optim::SGD optimizer({task.w_}, torch::optim::SGDOptions(0.05));
  run_training(task, optimizer, 24, loop_options(dir.path()).set_epochs(1));
  // The same checkpoint, read by a task whose records have another field.
  class OtherRecords final : public TrainingTask {
   public:
    explicit OtherRecords(LeastSquaresTask& inner) : inner_(inner) {}
    at::Tensor begin_epoch(std::int64_t e, at::Generator& g) override { return inner_.begin_epoch(e, g); }
    at::Tensor batch_loss(const TrainingBatch& b, at::Generator& g) override { return inner_.batch_loss(b, g); }
    nlohmann::json finish_epoch(std::int64_t e, double loss) override { return inner_.finish_epoch(e, loss); }
    void check_record(const nlohmann::json& record, const std::string& where) const override {
      required_field<double>(record, "test_accuracy", where);
    }
    void save_weights(torch::serialize::OutputArchive& archive) override { inner_.save_weights(archive); }
    void load_weights(torch::serialize::InputArchive& archive, const std::string& path) override {
      inner_.load_weights(archive, path);
    }
    LeastSquaresTask& inner_;
  } other(task);
  const std::string path = dir.file("checkpoint.pt");
  testing::expect_error([&] { run_training(other, optimizer, 24, loop_options(dir.path()).set_epochs(1)); },
                        "checkpoint '" + path + "': trainer state: log[0]: key 'test_accuracy' is missing");
}

}  // namespace
}  // namespace robustlens
