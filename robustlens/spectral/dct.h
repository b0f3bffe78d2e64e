// The orthonormal 2-D DCT-II and what is built on it: diagonal-block DCT
// subspaces (Ortiz-Jimenez et al., "Hold me tight!") with their projections,
// and the dct-flip and low-pass image transforms. Everything is separable
// matrix products on the last two dimensions (D_H · x · D_Wᵀ), with the DCT
// matrices cached per size, dtype and device; no dense (HW)×(HW) matrix is formed.
#pragma once

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace robustlens {

/// Orthonormal DCT-II matrix D (n×n): D[k][i] = a_k·cos(π(2i+1)k/(2n)),
/// a_0 = √(1/n), a_k = √(2/n). Cached.
at::Tensor dct_matrix(std::int64_t n, const at::TensorOptions& options);

/// DCT of the last two dimensions (any leading shape) and its inverse.
at::Tensor dct2(const at::Tensor& x);
at::Tensor idct2(const at::Tensor& coefficients);

/// The diagonal-block DCT subspaces of H×W images: subspace t holds the K×K
/// coefficients (tT + i, tT + j), 0 ≤ i, j < K, for t = 0, 1, … while tT + K fits
/// both sides; with C channels it is block-diagonal over channels (dim C·K²).
struct DctSubspaces {
  std::int64_t height = 0, width = 0;
  std::int64_t block = 0;  ///< K
  std::int64_t step = 0;   ///< T
  std::int64_t count() const;
  /// t×H×W float masks of the coefficient blocks, on `options`' device.
  at::Tensor masks(const at::TensorOptions& options) const;
  nlohmann::json to_json() const;
};

/// The reference settings by image size: 28×28 → K 8, T 1 (21 subspaces);
/// 32×32 → K 8, T 2 (13); 224×224 → K 16, T 16 (14). Other sizes: K 8, T 1 up to
/// side 28, K 8, T 2 up to 64, else K = T = side/14 (about 14 subspaces).
DctSubspaces default_dct_subspaces(std::int64_t height, std::int64_t width);
/// K and T given explicitly (checked against the image size).
DctSubspaces dct_subspaces(std::int64_t height, std::int64_t width, std::int64_t block, std::int64_t step);

/// --subspaces: "auto" (block and step 0: default_dct_subspaces) or "dct:K:T" with positive K and T.
struct DctSubspaceSpec {
  std::int64_t block = 0;
  std::int64_t step = 0;
};
DctSubspaceSpec parse_dct_subspace_spec(const std::string& text);

/// P_S w = IDCT(mask ⊙ DCT(w)) for rows w (M×C×H×W), mask chosen per row
/// from `masks` (t×H×W) by `subspace_of_row` (int64 M). Orthogonal projection.
at::Tensor project_onto_dct_subspaces(const at::Tensor& w, const at::Tensor& masks, const at::Tensor& subspace_of_row);

/// x ↦ IDCT(flip(DCT(x))): coefficient (u, v) moves to (H−1−u, W−1−v), per channel.
at::Tensor dct_flip(const at::Tensor& images);
/// --transform: "none", "dct-flip" or "low-pass:B" (bandwidth B >= 1; 0 for the others).
struct DctTransformSpec {
  std::string kind;  ///< none, dct-flip or low-pass
  std::int64_t bandwidth = 0;
};
DctTransformSpec parse_dct_transform(const std::string& spec);
/// The transform of `spec` applied to every image (the invariance experiments of Hold me tight!); the
/// bandwidth must fit the images. The result may leave [0,1].
at::Tensor apply_dct_transform(const std::string& spec, const at::Tensor& images);

/// Keeps the DCT coefficients u < bandwidth and v < bandwidth of every image (a true 2-D low-pass).
at::Tensor dct_low_pass(const at::Tensor& images, std::int64_t bandwidth);

}  // namespace robustlens
