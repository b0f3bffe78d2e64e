#include "robustlens/train/trainer.h"

#include "robustlens/core/error.h"
#include "robustlens/core/random.h"
#include "test_support.h"

#include <gtest/gtest.h>
#include <torch/autograd.h>
#include <torch/utils.h>

#include <algorithm>
#include <filesystem>

namespace robustlens {
namespace {

struct SimulatedKill {};

const Dataset& train_data() {
  static const Dataset data = testing::linear_rule_dataset(240, {1, 6, 6}, 3, 11);
  return data;
}
const Dataset& test_data() {
  static const Dataset data = testing::linear_rule_dataset(60, {1, 6, 6}, 3, 12);
  return data;
}

std::unique_ptr<BuiltinModel> fresh_model(const std::string& arch = "mlp", const std::string& activation = "relu") {
  torch::manual_seed(5);
  return std::make_unique<BuiltinModel>(
      ArchitectureSpec().set_name(arch).set_input_shape({1, 6, 6}).set_num_classes(3).set_width(32).set_activation(
          activation),
      std::vector<std::string>{});
}

TrainOptions recipe(const std::string& out_dir) {
  return TrainOptions().set_epochs(3).set_batch_size(32).set_lr(0.05).set_seed(9).set_out_dir(out_dir);
}

void expect_same_parameters(BuiltinModel& a, BuiltinModel& b) {
  const auto pa = a.parameters(), pb = b.parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(at::equal(pa[i], pb[i])) << "parameter " << i;
}

TEST(Trainer, LearnsALinearRule) {
  auto model = fresh_model();
  const TrainResult result = train_model(*model, train_data(), test_data(), recipe("").set_epochs(40));
  EXPECT_GT(result.epochs.back().test_accuracy, 0.8);
  EXPECT_GT(result.epochs.back().train_accuracy, result.epochs.front().train_accuracy);
}

TEST(Trainer, EveryOptimiserAndObjectiveLearns) {
  const std::vector<std::pair<std::string, ObjectiveOptions>> cases = {
      {"adamw", ObjectiveOptions()},
      {"sgd", ObjectiveOptions().set_kind("pgd-l2").set_eps(0.1).set_pgd_steps(3)},
      {"sgd", ObjectiveOptions().set_kind("pgd-linf").set_eps(0.02).set_pgd_steps(3)},
      {"sgd", ObjectiveOptions().set_kind("noise").set_sigma(0.1)},
      {"sgd", ObjectiveOptions().set_kind("gradnorm").set_lambda(0.01)},
  };
  for (const auto& [optimizer, objective] : cases) {
    auto model = fresh_model();
    const TrainOptions options = recipe("")
                                     .set_epochs(40)
                                     .set_optimizer(optimizer)
                                     .set_lr(optimizer == "adamw" ? 0.005 : 0.05)
                                     .set_objective(objective);
    const TrainResult result = train_model(*model, train_data(), test_data(), options);
    EXPECT_GT(result.epochs.back().test_accuracy, 0.7) << optimizer << " " << objective.to_json().dump();
    EXPECT_EQ(model->info().training.at("objective"), objective.to_json());
  }
}

TEST(Trainer, KilledAndResumedRunEndsWithTheSameWeights) {
  testing::TemporaryDirectory whole, interrupted;
  auto reference = fresh_model();
  train_model(*reference, train_data(), test_data(), recipe(whole.path()));

  auto first = fresh_model();
  const auto kill_in_epoch_two = [](const ProgressUpdate& update) {
    if (update.task == "epoch 2/3" && update.done >= 96) throw SimulatedKill{};
  };
  EXPECT_THROW(train_model(*first, train_data(), test_data(), recipe(interrupted.path()), kill_in_epoch_two),
               SimulatedKill);
  ASSERT_TRUE(std::filesystem::exists(interrupted.file("checkpoint.pt")));

  torch::manual_seed(12345);  // a different initialisation: the checkpoint must replace it
  auto resumed = fresh_model();
  torch::manual_seed(999);
  const TrainResult result = train_model(*resumed, train_data(), test_data(), recipe(interrupted.path()));
  EXPECT_EQ(result.resumed_after_epoch, 1);
  ASSERT_EQ(result.epochs.size(), 3u);
  expect_same_parameters(*reference, *resumed);
}

TEST(Trainer, RefusesACheckpointOfAnotherRecipe) {
  testing::TemporaryDirectory dir;
  auto model = fresh_model();
  train_model(*model, train_data(), test_data(), recipe(dir.path()).set_epochs(1));
  auto other = fresh_model();
  EXPECT_THROW(train_model(*other, train_data(), test_data(), recipe(dir.path()).set_epochs(1).set_lr(0.1)), Error);
}

TEST(Trainer, RefusesACheckpointOfAnotherArchitectureOrOtherData) {
  testing::TemporaryDirectory dir;
  auto model = fresh_model();
  train_model(*model, train_data(), test_data(), recipe(dir.path()).set_epochs(1));
  // Same parameter shapes, another activation: the weights would load, but they were trained as ReLU.
  auto softplus = fresh_model("mlp", "softplus");
  testing::expect_error([&] { train_model(*softplus, train_data(), test_data(), recipe(dir.path()).set_epochs(1)); },
                        "another architecture or other training data");
  const Dataset fewer = train_data().subset({0, 1, 2, 3, 4, 5, 6, 7});
  auto same = fresh_model();
  testing::expect_error([&] { train_model(*same, fewer, test_data(), recipe(dir.path()).set_epochs(1)); },
                        "another architecture or other training data");
  // The same inputs resume: nothing left to train.
  EXPECT_EQ(train_model(*same, train_data(), test_data(), recipe(dir.path()).set_epochs(1)).resumed_after_epoch, 1);
}

TEST(Trainer, PgdWithZeroEpsEqualsStandardTraining) {
  auto a = fresh_model();
  auto b = fresh_model();
  train_model(*a, train_data(), test_data(), recipe("").set_epochs(2));
  train_model(*b, train_data(), test_data(),
              recipe("").set_epochs(2).set_objective(ObjectiveOptions().set_kind("pgd-l2").set_eps(0.0)));
  expect_same_parameters(*a, *b);
}

std::unique_ptr<BuiltinModel> binenc_model() {
  torch::manual_seed(5);
  return std::make_unique<BuiltinModel>(
      ArchitectureSpec().set_name("mlp").set_input_shape({1, 6, 6}).set_num_classes(3).set_width(32).set_head("binenc"),
      std::vector<std::string>{});
}

TEST(Trainer, LatentPenaltyGrowsPerEpochUpToItsMaximumAndIsRecordedOnlyForPenalisedHeads) {
  auto model = binenc_model();
  const LatentPenaltyOptions penalty = LatentPenaltyOptions().set_gamma0(0.5).set_factor(3).set_gamma_max(2);
  const TrainResult result =
      train_model(*model, train_data(), test_data(), recipe("").set_epochs(3).set_latent_penalty(penalty));
  ASSERT_EQ(result.epochs.size(), 3u);
  EXPECT_DOUBLE_EQ(result.epochs[0].latent_gamma, 0.5);
  EXPECT_DOUBLE_EQ(result.epochs[1].latent_gamma, 1.5);
  EXPECT_DOUBLE_EQ(result.epochs[2].latent_gamma, 2.0);  // 4.5 capped
  EXPECT_EQ(model->info().training.at("latent_penalty").at("factor"), 3.0);

  auto plain = fresh_model();
  const TrainResult unpenalised =
      train_model(*plain, train_data(), test_data(), recipe("").set_epochs(1).set_latent_penalty(penalty));
  EXPECT_EQ(unpenalised.epochs[0].latent_gamma, 0.0);
  EXPECT_FALSE(plain->info().training.contains("latent_penalty"));
}

TEST(Objectives, LatentPenaltyAddsGammaTimesTheMeanSquaredLatent) {
  auto model = binenc_model();
  const at::Tensor x = train_data().images.slice(0, 0, 16), y = train_data().labels.slice(0, 0, 16);
  const BatchLoss with = objective_loss(*model, x, y, ObjectiveOptions(), {}, 0.7);
  const BatchLoss without = objective_loss(*model, x, y, ObjectiveOptions());
  const double mean_square = model->latent(x).pow(2).mean().item<double>();
  EXPECT_NEAR(with.loss.item<double>(), without.loss.item<double>() + 0.7 * mean_square, 1e-5);
  EXPECT_TRUE(at::allclose(with.logits, without.logits));
}

TEST(Trainer, AHeldOutputLayerKeepsLearningWhileTheScheduleStopsTheRest) {
  // After epoch 1 the step schedule multiplies the learning rate by 1e-9: only a held output layer still moves.
  const auto changes_in_epoch_two = [](bool hold) {
    auto model = fresh_model();
    std::vector<at::Tensor> after_first;
    const auto snapshot = [&](const EpochRecord& record) {
      if (record.epoch != 1) return;
      for (const at::Tensor& p : model->parameters()) after_first.push_back(p.detach().clone());
    };
    const TrainOptions options = recipe("").set_epochs(2).set_hold_output_lr(hold).set_schedule(
        ScheduleOptions().set_kind("step").set_step_epochs(1).set_gamma(1e-9));
    train_model(*model, train_data(), test_data(), options, {}, snapshot);
    const std::vector<at::Tensor> head = model->net().head->parameters();
    double head_change = 0, rest_change = 0;
    const auto parameters = model->parameters();
    for (std::size_t i = 0; i < parameters.size(); ++i) {
      const double change = (parameters[i] - after_first[i]).abs().max().item<double>();
      const bool in_head =
          std::any_of(head.begin(), head.end(), [&](const at::Tensor& h) { return h.is_same(parameters[i]); });
      (in_head ? head_change : rest_change) = std::max(in_head ? head_change : rest_change, change);
    }
    return std::make_pair(head_change, rest_change);
  };
  const auto [held_head, held_rest] = changes_in_epoch_two(true);
  const auto [free_head, free_rest] = changes_in_epoch_two(false);
  EXPECT_GT(held_head, 1e-3);
  EXPECT_LT(held_rest, 1e-6);
  EXPECT_LT(free_head, 1e-6);
  EXPECT_LT(free_rest, 1e-6);
}

/// Each objective's loss on a two-class linear model, in closed form: the objective must train on the inputs it
/// says it does. With margin m = f_y − f_k and Δ = w_y − w_k, CE = softplus(−m); the worst perturbation in an
/// L2 (L∞) ball of radius eps lowers m by eps·‖Δ‖₂ (eps·‖Δ‖₁); ‖∇ₓ CE‖² = σ(−m)²·‖Δ‖².
TEST(Objectives, EachTrainsOnTheInputsItSaysInClosedForm) {
  torch::manual_seed(21);
  const at::Tensor weight = at::randn({2, 36}, at::kDouble);
  const at::Tensor difference = weight[0] - weight[1];
  testing::LinearModel model(weight, at::stack({-0.5 * difference.sum(), at::zeros({}, at::kDouble)}));
  const at::Tensor images = 0.4 + 0.2 * at::rand({16, 1, 6, 6});  // far enough inside [0,1] that clipping never binds
  const at::Tensor labels = at::randint(2, {16}, at::kLong);
  const at::Tensor sign = 1 - 2 * labels.to(at::kDouble);  // Δ = w_y − w_k = ±difference
  const at::Tensor logits = model.forward(images);
  const at::Tensor margins = sign * (logits.select(1, 0) - logits.select(1, 1));
  const auto loss_at = [](const at::Tensor& m) { return at::softplus(-m).mean().item<double>(); };
  const double eps = 0.05;

  const double clean = objective_loss(model, images, labels, ObjectiveOptions()).loss.item<double>();
  EXPECT_NEAR(clean, loss_at(margins), 1e-9);
  const at::Generator generator = make_generator(0);
  const double l2 = objective_loss(model, images, labels,
                                   ObjectiveOptions().set_kind("pgd-l2").set_eps(eps).set_pgd_steps(20), generator)
                        .loss.item<double>();
  EXPECT_NEAR(l2, loss_at(margins - eps * difference.norm().item<double>()),
              1e-2 * l2);  // L2 iterates approach the edge
  const double linf =
      objective_loss(model, images, labels, ObjectiveOptions().set_kind("pgd-linf").set_eps(eps / 10), generator)
          .loss.item<double>();
  EXPECT_NEAR(linf, loss_at(margins - eps / 10 * difference.abs().sum().item<double>()), 1e-6 * linf);
  EXPECT_GT(l2, clean + 0.01);
  // Images that are not pixels in [0,1] (a --transform): unclipped, the PGD objective still finds the worst case
  // (clipped to [0,1], these images would move by about 1.5 per pixel).
  const at::Tensor shifted = images + 2;
  testing::LinearModel shifted_model(weight, at::stack({-2.5 * difference.sum(), at::zeros({}, at::kDouble)}));
  const at::Tensor shifted_logits = shifted_model.forward(shifted);
  const at::Tensor shifted_margins = sign * (shifted_logits.select(1, 0) - shifted_logits.select(1, 1));
  const double unclipped =
      objective_loss(shifted_model, shifted, labels, ObjectiveOptions().set_kind("pgd-linf").set_eps(eps / 10),
                     generator, 0, /*clip_to_pixels=*/false)
          .loss.item<double>();
  // float32 images near 2.5: each pixel moved within an ulp (2.4e-7) of eps/10
  EXPECT_NEAR(unclipped, loss_at(shifted_margins - eps / 10 * difference.abs().sum().item<double>()), 1e-5 * unclipped);

  // Noise: the logits are those of the images plus exactly sigma times the generator's next normal draw.
  const BatchLoss noisy =
      objective_loss(model, images, labels, ObjectiveOptions().set_kind("noise").set_sigma(0.3), make_generator(5));
  const at::Tensor drawn = images + 0.3 * random_normal(images.sizes(), make_generator(5), images.options());
  EXPECT_TRUE(at::allclose(noisy.logits, model.forward(drawn), 1e-12, 1e-12));
  EXPECT_FALSE(at::allclose(noisy.logits, model.forward(images), 1e-3, 1e-3));

  const double lambda = 2.0;
  const double penalised =
      objective_loss(model, images, labels, ObjectiveOptions().set_kind("gradnorm").set_lambda(lambda))
          .loss.item<double>();
  const double penalty = (at::sigmoid(-margins).square() * difference.square().sum()).mean().item<double>();
  EXPECT_NEAR(penalised, clean + lambda * penalty, 1e-6 * penalised);  // the input gradient is float32
}

TEST(Objectives, GradientNormPenaltyGradientMatchesFiniteDifferences) {
  auto model = fresh_model("mlp", "softplus");
  model->net().to(at::kDouble);
  const at::Tensor x = train_data().images.slice(0, 0, 8).to(at::kDouble);
  const at::Tensor y = train_data().labels.slice(0, 0, 8);
  const at::Tensor penalty = input_gradient_penalty(*model, x, y);
  auto parameters = model->parameters();
  const auto grads = torch::autograd::grad({penalty}, parameters);
  const double h = 1e-6;
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    at::Tensor flat = parameters[i].view(-1);
    for (const std::int64_t j : {std::int64_t{0}, flat.numel() / 2, flat.numel() - 1}) {
      const double original = flat[j].item<double>();
      const auto set = [&](double value) {
        at::NoGradGuard no_grad;
        flat[j] = value;
      };
      set(original + h);
      const double plus = input_gradient_penalty(*model, x, y).item<double>();
      set(original - h);
      const double minus = input_gradient_penalty(*model, x, y).item<double>();
      set(original);
      const double numeric = (plus - minus) / (2 * h);
      const double analytic = grads[i].view(-1)[j].item<double>();
      EXPECT_NEAR(analytic, numeric, 1e-6 + 1e-5 * std::abs(numeric)) << "parameter " << i << " entry " << j;
    }
  }
}

TEST(Schedule, ShapesAreAsDocumented) {
  const double base = 1.0;
  const ScheduleOptions onecycle = ScheduleOptions().set_kind("onecycle").set_warmup(0.25);
  EXPECT_NEAR(learning_rate_at(onecycle, base, 0, 101, 10), base / 25, 1e-12);
  EXPECT_NEAR(learning_rate_at(onecycle, base, 25, 101, 10), base, 1e-12);
  EXPECT_NEAR(learning_rate_at(onecycle, base, 100, 101, 10), base / 1e4, 1e-12);
  const ScheduleOptions cosine = ScheduleOptions().set_kind("cosine");
  EXPECT_NEAR(learning_rate_at(cosine, base, 50, 101, 10), 0.5, 1e-12);
  const ScheduleOptions step = ScheduleOptions().set_kind("step").set_gamma(0.1).set_step_epochs(2);
  EXPECT_NEAR(learning_rate_at(step, base, 39, 100, 10), 0.1, 1e-12);
  EXPECT_NEAR(learning_rate_at(step, base, 40, 100, 10), 0.01, 1e-12);
  EXPECT_THROW(ScheduleOptions().set_kind("linear").check(), Error);
}

}  // namespace
}  // namespace robustlens
