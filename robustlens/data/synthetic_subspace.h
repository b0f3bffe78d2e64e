// Synthetic data whose class information lies in a chosen DCT subspace only, after the synthetic experiments of
// Hold me tight! (Ortiz-Jiménez et al., NeurIPS 2020, §3): two classes, each image
//   x = 0.5 + (±eps)·u + sigma·n,   clipped to [0,1],
// with u a fixed unit-norm image whose DCT lies in the size×size diagonal block of coefficients
// (start..start+size−1 on both axes), the sign the label's, and n white Gaussian noise in every pixel. Only the
// component along u tells the classes apart; every other direction, inside the block or outside, is noise. A
// network trained on it should then have small margins in that subspace (about eps along u) and large ones,
// invariance, in the subspaces that do not overlap it. The paper's exact sizes are not public in its code; these
// are ours (docs/frequency-margins.md).
#pragma once

#include "robustlens/data/dataset.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace robustlens {

struct SyntheticSubspaceSpec {
  std::int64_t start = 0;  ///< first DCT coefficient of the block on both axes
  std::int64_t size = 8;   ///< block side (8: one subspace of the margins' default 28×28 grid)
  double eps = 0.5;        ///< each class's offset along u (pixel L2 units): the classes are 2·eps apart
  double sigma = 0.05;     ///< noise per pixel
  static constexpr std::int64_t kSide = 28;  ///< images 1×28×28
  static constexpr std::int64_t kTrainSize = 10000, kTestSize = 2000;

  void check() const;
  nlohmann::json to_json() const;
};

/// "START[:SIZE[:EPS[:SIGMA]]]", the part after synthetic-subspace: in a dataset spec.
SyntheticSubspaceSpec parse_synthetic_subspace_spec(const std::string& text);

/// u: 1×28×28, unit L2 norm, its DCT zero outside the block; the same for every split (drawn from a seed of the
/// block alone).
at::Tensor synthetic_direction(const SyntheticSubspaceSpec& spec);

/// One split: kTrainSize or kTestSize images, labels 0 ("minus") and 1 ("plus") drawn with probability 1/2, from a
/// fixed seed per split.
Dataset make_synthetic_subspace_dataset(const SyntheticSubspaceSpec& spec, Split split);

}  // namespace robustlens
