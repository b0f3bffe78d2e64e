#include "robustlens/attacks/universal_perturbation.h"

#include "robustlens/core/random.h"
#include "test_support.h"

#include <gtest/gtest.h>

namespace robustlens {
namespace {

using testing::expect_error;

TEST(UniversalPerturbation, OnALinearModelItIsTheRadiusAlongTheNormalAndFoolsTheImagesCloserThanThat) {
  // Class 1 iff w·x > 0.5; every image is on the class-0 side, at distance d = (0.5 − w·x)/‖w‖ from the boundary.
  // The best universal perturbation of radius eps is eps·w/‖w‖: it fools exactly the images with d < eps.
  const at::Generator generator = make_generator(5);
  const at::Tensor w = random_normal({16}, generator, at::kDouble);
  testing::LinearModel model(at::stack({at::zeros({16}, at::kDouble), w}), at::tensor({0.0, -0.5}));
  const at::Tensor unit = w / w.norm();
  const at::Tensor distances = random_uniform({200}, generator, at::kDouble) * 2 + 0.05;
  const at::Tensor across = random_normal({200, 16}, generator, at::kDouble);
  const at::Tensor along = across - at::outer(at::matmul(across, unit), unit);  // orthogonal to w
  const at::Tensor images =
      ((0.5 / w.norm() - distances).unsqueeze(1) * unit + along).to(at::kFloat).view({200, 1, 4, 4});
  for (const double eps : {0.6, 1.3}) {
    const UniversalPerturbation result = universal_adversarial_perturbation(
        model, images, UniversalPerturbationOptions().set_eps(eps).set_batch_size(64));
    const at::Tensor v = result.delta.flatten().to(at::kDouble);
    EXPECT_NEAR(v.norm().item<double>(), eps, 1e-5);
    EXPECT_NEAR(at::dot(v, unit).item<double>() / v.norm().item<double>(), 1.0, 1e-6);
    // d < eps up to float rounding of the images.
    const double expected = (distances < eps).to(at::kDouble).mean().item<double>();
    EXPECT_NEAR(result.fooling_rate, expected, 0.011) << "eps " << eps;
    EXPECT_EQ(result.passes, 3);  // fewer than 80% fooled: every pass runs
  }
  // A radius beyond every distance fools every image, and the passes stop once they are all fooled.
  const UniversalPerturbation all = universal_adversarial_perturbation(
      model, images, UniversalPerturbationOptions().set_eps(3).set_target_fooling_rate(1).set_passes(10));
  EXPECT_EQ(all.fooling_rate, 1.0);
  EXPECT_LT(all.passes, 10);
  EXPECT_LE(all.delta.norm().item<double>(), 3 + 1e-5);
  expect_error([&] { universal_adversarial_perturbation(model, images, UniversalPerturbationOptions().set_eps(0)); },
               "UniversalPerturbationOptions.eps must be > 0, got 0");
}

}  // namespace
}  // namespace robustlens
