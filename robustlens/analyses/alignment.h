// Perceptually aligned gradients (Srinivas, Bordt & Lakkaraju, NeurIPS 2023):
// how closely a classifier's input gradient follows the score of the data
// distribution, ∇_x log p(x | y). The paper compares with a pretrained EDM
// diffusion model under LPIPS; neither exists offline, so the score here comes
// from robustlens's own denoiser (generative/denoiser.h, Tweedie's formula at
// sigma 0.5) and the comparison is the cosine similarity of the two maps
// (primary) and the SSIM of the max-|value|-normalised maps (secondary).
// Pairings: conditional, ∇_x logit_y against the class-conditional score of
// the true class y; unconditional, ∇_x Σ_k logit_k against an unconditional score.
// SSIM does not tell a map from its negative everywhere (where both the local
// mean and the local structure flip sign its two factors stay positive), which
// is one reason the cosine is the primary metric.
#pragma once

#include "robustlens/core/model.h"
#include "robustlens/core/progress.h"
#include "robustlens/data/dataset.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>

namespace robustlens {

/// The data score at images N×C×H×W for labels N (undefined for an
/// unconditional score), same shape as the images.
using ScoreFunction = std::function<at::Tensor(const at::Tensor& images, const at::Tensor& labels)>;

struct AlignmentOptions {
  /// true: ∇ logit_y against the score given y; false: ∇ Σ_k logit_k against the score given no label.
  bool conditional = true;
  /// Images per chunk.
  std::int64_t batch_size = 64;

  AlignmentOptions& set_conditional(bool v) { conditional = v; return *this; }
  AlignmentOptions& set_batch_size(std::int64_t v) { batch_size = v; return *this; }

  void check() const;
  nlohmann::json to_json() const;
};

/// The classifier side of a pairing: ∇_x logit_y (conditional) or ∇_x Σ_k logit_k, detached.
at::Tensor alignment_gradient(Model& model, const at::Tensor& images, const at::Tensor& labels, bool conditional);

struct AlignmentResult {
  /// Per image (CPU, float64): cosine similarity and SSIM (data range 2).
  at::Tensor cosine, ssim;
  double mean_cosine = 0, cosine_standard_error = 0, mean_ssim = 0, ssim_standard_error = 0;
  nlohmann::json to_json() const;
};

AlignmentResult analyse_alignment(Model& model, const Dataset& data, const ScoreFunction& score,
                                  const AlignmentOptions& options, const ProgressCallback& progress = {});

}  // namespace robustlens
