#include "robustlens/data/synthetic_subspace.h"

#include "robustlens/data/dataset_source.h"
#include "robustlens/spectral/dct.h"
#include "test_support.h"

#include <gtest/gtest.h>

#include <cmath>

namespace robustlens {
namespace {

using testing::expect_error;

TEST(SyntheticSubspace, TheDirectionIsAUnitImageWhoseDctLiesInTheBlock) {
  const SyntheticSubspaceSpec spec = parse_synthetic_subspace_spec("10:6");
  const at::Tensor u = synthetic_direction(spec);
  ASSERT_EQ(u.sizes(), (at::IntArrayRef{1, 28, 28}));
  EXPECT_NEAR(u.norm().item<double>(), 1.0, 1e-5);
  const at::Tensor coefficients = dct2(u)[0];
  const at::Tensor block = coefficients.slice(0, 10, 16).slice(1, 10, 16);
  EXPECT_NEAR(block.norm().item<double>(), 1.0, 1e-5);
  EXPECT_LT((coefficients.norm().pow(2) - block.norm().pow(2)).abs().item<double>(), 1e-6);
  EXPECT_GT(block.abs().min().item<double>(), 0.0);  // a random direction uses the whole block
  EXPECT_TRUE(synthetic_direction(spec).equal(u));
  EXPECT_FALSE(synthetic_direction(parse_synthetic_subspace_spec("11:6")).equal(u));
}

TEST(SyntheticSubspace, OnlyTheComponentAlongTheDirectionTellsTheClassesApart) {
  const SyntheticSubspaceSpec spec = parse_synthetic_subspace_spec("0:8:0.5:0.05");
  const Dataset train = make_synthetic_subspace_dataset(spec, Split::train);
  const Dataset test = make_synthetic_subspace_dataset(spec, Split::test);
  EXPECT_EQ(train.size(), SyntheticSubspaceSpec::kTrainSize);
  EXPECT_EQ(test.size(), SyntheticSubspaceSpec::kTestSize);
  train.validate();
  EXPECT_NEAR(train.labels.to(at::kDouble).mean().item<double>(), 0.5, 0.02);
  const at::Tensor u = synthetic_direction(spec).flatten();
  const at::Tensor centred = train.images.flatten(1).to(at::kDouble) - 0.5;
  // Along u: +eps for "plus", −eps for "minus", noise sigma (4σ from the bounds: clipping is negligible).
  const at::Tensor along = at::matmul(centred, u.to(at::kDouble));
  const at::Tensor plus = train.labels == 1;
  EXPECT_NEAR(along.index({plus}).mean().item<double>(), 0.5, 0.005);
  EXPECT_NEAR(along.index({~plus}).mean().item<double>(), -0.5, 0.005);
  EXPECT_NEAR(along.index({plus}).std().item<double>(), 0.05, 0.003);
  // Across u the class means agree: their difference is 2·eps·u, nothing else, up to the noise of the means.
  const at::Tensor difference = centred.index({plus}).mean(0) - centred.index({~plus}).mean(0);
  const at::Tensor rest = difference - 1.0 * u.to(at::kDouble);
  const double noise_of_means = 0.05 * std::sqrt(4.0 / SyntheticSubspaceSpec::kTrainSize) * std::sqrt(784.0);
  EXPECT_LT(rest.norm().item<double>(), 1.5 * noise_of_means);
  // Fixed draws per split, different between splits, the same direction in both.
  EXPECT_TRUE(make_synthetic_subspace_dataset(spec, Split::test).images.equal(test.images));
  EXPECT_FALSE(test.images.equal(train.images.slice(0, 0, test.size())));
  EXPECT_TRUE(load_dataset("synthetic-subspace:0:8:0.5:0.05", Split::test).images.equal(test.images));
}

TEST(SyntheticSubspace, SpecsAreChecked) {
  EXPECT_EQ(parse_synthetic_subspace_spec("20").size, 8);
  EXPECT_EQ(parse_synthetic_subspace_spec("3:4:1:0.1").sigma, 0.1);
  expect_error([] { parse_synthetic_subspace_spec("21"); }, "the block 21..28 must lie within the 28");
  expect_error([] { parse_synthetic_subspace_spec("x"); }, "'x' is not a number");
  expect_error([] { parse_synthetic_subspace_spec("1.5"); }, "START and SIZE must be integers");
  expect_error([] { parse_synthetic_subspace_spec("0:8:0"); }, "eps must be in (0, 5], got 0");
  expect_error([] { parse_synthetic_subspace_spec("0:8:1:0.5"); }, "sigma must be in [0, 0.2], got 0.5");
  expect_error([] { parse_synthetic_subspace_spec("0:8:1:0.1:3"); }, "expected START[:SIZE[:EPS[:SIGMA]]]");
  expect_error([] { parse_dataset_spec("synthetic-subspace"); }, "synthetic-subspace:START");
  expect_error([] { parse_dataset_spec("synthetic-subspace:40"); }, "dataset spec 'synthetic-subspace:40': synthetic");
}

}  // namespace
}  // namespace robustlens
