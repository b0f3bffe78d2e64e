#include "robustlens/spectral/dct.h"

#include "robustlens/core/error.h"

#include <gtest/gtest.h>

#include <cmath>

namespace robustlens {
namespace {

/// The 2-D DCT-II straight from its definition (quadruple loop, float64).
at::Tensor naive_dct2(const at::Tensor& x) {
  const std::int64_t h = x.size(0), w = x.size(1);
  at::Tensor out = at::zeros({h, w}, at::kDouble);
  const auto a = [](std::int64_t k, std::int64_t n) {
    return std::sqrt((k == 0 ? 1.0 : 2.0) / static_cast<double>(n));
  };
  for (std::int64_t u = 0; u < h; ++u) {
    for (std::int64_t v = 0; v < w; ++v) {
      double sum = 0;
      for (std::int64_t i = 0; i < h; ++i) {
        for (std::int64_t j = 0; j < w; ++j) {
          sum += x[i][j].item<double>() * std::cos(M_PI * (2 * i + 1) * u / (2.0 * h)) *
                 std::cos(M_PI * (2 * j + 1) * v / (2.0 * w));
        }
      }
      out[u][v] = a(u, h) * a(v, w) * sum;
    }
  }
  return out;
}

TEST(Dct, MatchesTheDefinitionAndIsOrthonormal) {
  const at::Tensor x = at::randn({5, 7}, at::kDouble);
  EXPECT_TRUE(at::allclose(dct2(x), naive_dct2(x), 1e-10, 1e-12));
  EXPECT_TRUE(at::allclose(idct2(dct2(x)), x, 1e-10, 1e-12));
  const at::Tensor d = dct_matrix(9, at::TensorOptions().dtype(at::kDouble));
  EXPECT_TRUE(at::allclose(d.matmul(d.t()), at::eye(9, at::kDouble), 1e-12, 1e-12));
  const at::Tensor batch = at::randn({2, 3, 6, 4});  // leading dimensions pass through
  EXPECT_TRUE(at::allclose(dct2(batch)[1][2], dct2(batch[1][2])));
}

TEST(DctSubspaces, ReferenceSettingsBySize) {
  EXPECT_EQ(default_dct_subspaces(28, 28).count(), 21);
  EXPECT_EQ(default_dct_subspaces(28, 28).block, 8);
  EXPECT_EQ(default_dct_subspaces(32, 32).count(), 13);
  EXPECT_EQ(default_dct_subspaces(32, 32).step, 2);
  EXPECT_EQ(default_dct_subspaces(224, 224).count(), 14);
  EXPECT_EQ(default_dct_subspaces(224, 224).block, 16);
  EXPECT_THROW(dct_subspaces(28, 28, 30, 1), Error);
}

TEST(DctSubspaces, ProjectionIsAnOrthogonalProjectorOntoTheBlock) {
  const DctSubspaces subspaces = dct_subspaces(8, 8, 3, 2);  // blocks at 0, 2, 4
  ASSERT_EQ(subspaces.count(), 3);
  const at::Tensor masks = subspaces.masks(at::TensorOptions().dtype(at::kDouble));
  const at::Tensor rows = at::tensor({0, 1, 2, 1}, at::kLong);
  const at::Tensor w = at::randn({4, 2, 8, 8}, at::kDouble), v = at::randn({4, 2, 8, 8}, at::kDouble);
  const at::Tensor pw = project_onto_dct_subspaces(w, masks, rows);
  EXPECT_TRUE(at::allclose(project_onto_dct_subspaces(pw, masks, rows), pw, 1e-10, 1e-12));  // idempotent
  const at::Tensor pv = project_onto_dct_subspaces(v, masks, rows);
  EXPECT_TRUE(at::allclose((pw * v).flatten(1).sum(1), (w * pv).flatten(1).sum(1), 1e-10, 1e-12));  // symmetric
  // The DCT of a projected row is zero outside its block, equal to the row's inside.
  const at::Tensor coefficients = dct2(pw[1]);
  EXPECT_NEAR(coefficients.slice(1, 2, 5)
                  .slice(2, 2, 5)
                  .sub(dct2(w[1]).slice(1, 2, 5).slice(2, 2, 5))
                  .abs()
                  .max()
                  .item<double>(),
              0, 1e-10);
  EXPECT_NEAR(coefficients.abs().sum().item<double>(),
              coefficients.slice(1, 2, 5).slice(2, 2, 5).abs().sum().item<double>(), 1e-9);
}

TEST(DctTransforms, FlipIsAnInvolutionThatMirrorsTheSpectrum) {
  const at::Tensor x = at::rand({3, 1, 6, 6}, at::kDouble);
  EXPECT_TRUE(at::allclose(dct_flip(dct_flip(x)), x, 1e-10, 1e-12));
  EXPECT_TRUE(at::allclose(dct2(dct_flip(x))[0][0][0][0], dct2(x)[0][0][5][5], 1e-10, 1e-12));
}

TEST(DctTransforms, LowPassKeepsOnlyTheLowBlockOfEveryImage) {
  const at::Tensor x = at::rand({4, 3, 8, 8}, at::kDouble);
  const at::Tensor low = dct_low_pass(x, 3);
  EXPECT_TRUE(at::allclose(dct_low_pass(low, 3), low, 1e-10, 1e-12));
  const at::Tensor coefficients = dct2(low);
  for (std::int64_t n = 0; n < 4; ++n) {  // every image of the batch, every channel
    EXPECT_NEAR(coefficients[n].slice(1, 3).abs().max().item<double>(), 0, 1e-10);
    EXPECT_NEAR(coefficients[n].slice(2, 3).abs().max().item<double>(), 0, 1e-10);
    EXPECT_TRUE(at::allclose(coefficients[n].slice(1, 0, 3).slice(2, 0, 3), dct2(x[n]).slice(1, 0, 3).slice(2, 0, 3),
                             1e-10, 1e-12));
  }
}

TEST(DctSpecs, SubspaceAndTransformSpecsParseOrNameWhatWasExpected) {
  EXPECT_EQ(parse_dct_subspace_spec("auto").block, 0);
  const DctSubspaceSpec subspaces = parse_dct_subspace_spec("dct:8:2");
  EXPECT_EQ(subspaces.block, 8);
  EXPECT_EQ(subspaces.step, 2);
  for (const std::string bad : {"dct:8", "dct:0:2", "dct:8:-1", "dct::", "DCT:8:2", ""}) {
    EXPECT_THROW(parse_dct_subspace_spec(bad), Error) << bad;
  }
  EXPECT_EQ(parse_dct_transform("low-pass:4").bandwidth, 4);
  EXPECT_EQ(parse_dct_transform("dct-flip").kind, "dct-flip");
  EXPECT_THROW(parse_dct_transform("low-pass:0"), Error);
  EXPECT_THROW(parse_dct_transform("high-pass:3"), Error);
  // The bandwidth must fit the images it is applied to.
  EXPECT_THROW(apply_dct_transform("low-pass:9", at::rand({1, 1, 8, 8})), Error);
}

}  // namespace
}  // namespace robustlens
