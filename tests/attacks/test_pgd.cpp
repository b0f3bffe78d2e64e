#include "robustlens/attacks/pgd.h"

#include "robustlens/core/error.h"
#include "robustlens/core/random.h"
#include "robustlens/models/builtin_model.h"
#include "test_support.h"

#include <gtest/gtest.h>
#include <torch/utils.h>

namespace robustlens {
namespace {

TEST(Pgd, IteratesStayInTheBallAndInTheDomain) {
  torch::manual_seed(0);
  BuiltinModel model(ArchitectureSpec().set_name("mlp").set_input_shape({1, 8, 8}).set_num_classes(5), {});
  model.set_training(false);
  const at::Tensor x = at::rand({16, 1, 8, 8});
  const at::Tensor y = at::randint(5, {16}, at::kLong);
  for (const Norm norm : {Norm::l2, Norm::linf}) {
    const double eps = norm == Norm::l2 ? 1.0 : 0.1;
    const at::Tensor adv =
        pgd_attack(model, x, y, PgdOptions().set_norm(norm).set_eps(eps).set_restarts(2), make_generator(0));
    const at::Tensor delta = (adv - x).flatten(1);
    const at::Tensor norms = norm == Norm::l2 ? delta.norm(2, 1) : delta.abs().amax(1);
    EXPECT_LE(norms.max().item<double>(), eps * (1 + 1e-5));
    EXPECT_GE(adv.min().item<float>(), 0.0f);
    EXPECT_LE(adv.max().item<float>(), 1.0f);
    at::NoGradGuard no_grad;
    const double clean = at::cross_entropy_loss(model.forward(x), y).item<double>();
    const double attacked = at::cross_entropy_loss(model.forward(adv), y).item<double>();
    EXPECT_GT(attacked, clean) << to_string(norm);
  }
}

/// With steps too small to move, each restart is its random start: the result must be, per image, the restart
/// with the highest loss. Restart 0 draws what a one-restart run with the same seed draws, so eight restarts
/// can only raise each image's loss, and raise most (a last-restart or first-restart result would not).
TEST(Pgd, RestartsKeepTheHighestLossPerImage) {
  torch::manual_seed(4);
  testing::LinearModel model(at::randn({3, 36}, at::kDouble), at::zeros({3}, at::kDouble));
  const at::Tensor x = 0.3 + 0.4 * at::rand({32, 1, 6, 6});
  const at::Tensor y = at::randint(3, {32}, at::kLong);
  const PgdOptions options = PgdOptions().set_eps(0.5).set_steps(1).set_step_size(1e-9);
  const auto losses = [&](std::int64_t restarts) {
    const at::Tensor adversarial =
        pgd_attack(model, x, y, PgdOptions(options).set_restarts(restarts), make_generator(7));
    return at::cross_entropy_loss(model.forward(adversarial), y, {}, at::Reduction::None);
  };
  const at::Tensor one = losses(1), many = losses(8);
  EXPECT_TRUE(many.ge(one - 1e-9).all().item<bool>());
  EXPECT_GT(many.gt(one + 1e-6).sum().item<std::int64_t>(), 24);
}

TEST(Pgd, ProjectionMatchesClosedForm) {
  const at::Tensor delta = at::tensor({3.0f, 4.0f}).view({1, 1, 1, 2});
  EXPECT_TRUE(at::allclose(project_to_ball(delta, Norm::l2, 1.0), delta / 5.0));
  EXPECT_TRUE(at::allclose(project_to_ball(delta, Norm::linf, 1.0), at::ones_like(delta)));
  EXPECT_TRUE(at::allclose(project_to_ball(delta, Norm::l2, 10.0), delta));
}

TEST(Pgd, RejectsNegativeEps) {
  EXPECT_THROW(PgdOptions().set_eps(-0.1).resolved(), Error);
  EXPECT_THROW(PgdOptions().set_steps(0).resolved(), Error);
  EXPECT_DOUBLE_EQ(PgdOptions().set_eps(1.0).set_steps(10).resolved().step_size, 0.25);
}

}  // namespace
}  // namespace robustlens
