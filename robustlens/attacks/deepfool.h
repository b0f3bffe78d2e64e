// DeepFool (Moosavi-Dezfooli et al.), batched over samples, optionally
// constrained to a subspace: the minimal L2 perturbation that changes the
// predicted label, found by linearising the model around the current iterate.
//
// Per sample, as the reference implementation (LTS4 hold-me-tight,
// subspace_deepfool): candidate classes I = the top-k classes of the clean
// logits, c = I[0] (the predicted label, not the true one). Starting from r = 0,
// while argmax F(x0 + (1+overshoot)·r) = c and fewer than max_iterations: at
// x = x0 + r, for k in I\{c}: w_k = ∇F_k − ∇F_c, f_k = F_k − F_c,
// d_k = |f_k| / ‖P w_k‖; step max(d_k*, 1e-4)·P w_k*/‖P w_k*‖ for the smallest.
// The result is delta = (1+overshoot)·r. Samples stop costing compute as soon
// as their label flips. No clipping to [0,1] by default (the margin is a
// property of the function); with clip, the iterates and the result are
// clipped to the image domain.
#pragma once

#include "robustlens/core/model.h"
#include "robustlens/core/options.h"
#include "robustlens/core/progress.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>

namespace robustlens {

/// An orthogonal projector P applied to perturbation-shaped rows: `directions`
/// is M×C×H×W, `rows` (int64, M) says which sample of the batch each row
/// belongs to, so that a caller can constrain different samples to different
/// subspaces. Must be linear, symmetric and idempotent.
using Projector = std::function<at::Tensor(const at::Tensor& directions, const at::Tensor& rows)>;

struct DeepFoolOptions {
  /// Candidate classes: the top-k of the clean logits (all classes if fewer).
  std::int64_t candidates = 10;
  double overshoot = 0.02;
  std::int64_t max_iterations = 100;
  /// Keep iterates and result in [0,1].
  bool clip = false;
  /// Samples per model pass (chunks of the input).
  std::int64_t batch_size = 256;
  /// Optional subspace constraint (empty = full space).
  Projector projector;

  RL_SETTER(candidates)
  RL_SETTER(overshoot)
  RL_SETTER(max_iterations)
  RL_SETTER(clip)
  RL_SETTER(batch_size)
  RL_SETTER(projector)

  void check() const;
  nlohmann::json to_json() const;
};

struct DeepFoolResult {
  at::Tensor perturbations;       ///< N×C×H×W, delta = (1+overshoot)·r (clipped domain difference with clip)
  at::Tensor norms;               ///< N, ‖delta‖₂
  at::Tensor iterations;          ///< N, int64
  at::Tensor flipped;             ///< N, bool: the label changed within max_iterations
  at::Tensor original_labels;     ///< N, predicted label of the clean input
  at::Tensor adversarial_labels;  ///< N, predicted label at x0 + delta
};

/// Runs the model in its current mode (use evaluation mode); results on the input's device.
DeepFoolResult deepfool(Model& model, const at::Tensor& images, const DeepFoolOptions& options,
                        const ProgressCallback& progress = {});

}  // namespace robustlens
