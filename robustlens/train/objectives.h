// Training objectives, all per example: standard cross-entropy; L2 / Linf PGD
// adversarial training (attack code shared with attacks/pgd.h); Gaussian noise
// augmentation; input-gradient-norm penalty CE + lambda·mean_i ‖∇_x CE_i‖².
// Any of them can carry the latent-binary-encoding penalty gamma·mean z².
#pragma once

#include "robustlens/core/model.h"
#include "robustlens/core/options.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace robustlens {

struct ObjectiveOptions {
  /// "standard", "pgd-l2", "pgd-linf", "noise" or "gradnorm".
  std::string kind = "standard";
  /// PGD radius (pixel units in [0,1]).
  double eps = 0.0;
  std::int64_t pgd_steps = 10;
  /// 0 = 2.5·eps/steps.
  double pgd_step_size = 0.0;
  /// Standard deviation of the Gaussian noise added to training images (noise).
  double sigma = 0.0;
  /// Weight of the input-gradient-norm penalty (gradnorm).
  double lambda = 0.0;

  RL_SETTER(kind)
  RL_SETTER(eps)
  RL_SETTER(pgd_steps)
  RL_SETTER(pgd_step_size)
  RL_SETTER(sigma)
  RL_SETTER(lambda)

  void check() const;
  /// Only the fields the chosen objective uses.
  nlohmann::json to_json() const;
};

/// The latent penalty of the binenc and wide heads: gamma · mean over batch and
/// units of z² (the paper's gamma divided by P), with gamma growing per epoch,
/// gamma(e) = min(gamma0 · factor^(e−1), gamma_max) in epoch e = 1, 2, …
struct LatentPenaltyOptions {
  /// Set from the architecture (ArchitectureSpec::penalised), not by hand.
  bool enabled = false;
  double gamma0 = 0.01;
  double factor = 1.05;
  double gamma_max = 1e6;

  RL_SETTER(enabled)
  RL_SETTER(gamma0)
  RL_SETTER(factor)
  RL_SETTER(gamma_max)

  /// 0 when not enabled.
  double gamma_at(std::int64_t epoch) const;
  void check() const;
  nlohmann::json to_json() const;
};

struct BatchLoss {
  at::Tensor loss;    ///< scalar to minimise
  at::Tensor logits;  ///< logits on the images the loss was computed on (for accuracy)
};

/// The objective's loss on one batch; the model must be in training mode. PGD
/// runs its attack with the model in evaluation mode (batch-norm statistics
/// are not updated by attack passes) and switches back. With latent_gamma > 0
/// the loss adds latent_gamma · mean z² of the inputs the loss is computed on.
/// `clip_to_pixels`: the PGD objectives keep their attacked images in [0,1]; off for images that are not
/// pixels in [0,1] (a --transform), which clipping would move farther than eps. The noise objective and PGD's
/// random starts draw from `generator` (core/random.h), which they need.
BatchLoss objective_loss(Model& model, const at::Tensor& images, const at::Tensor& labels,
                         const ObjectiveOptions& options, const at::Generator& generator = {}, double latent_gamma = 0,
                         bool clip_to_pixels = true);

/// mean_i ‖∇_x CE(f(x_i), y_i)‖², differentiable with respect to the parameters.
/// Per-example exactly when the model has no cross-example coupling (no batch
/// norm in training mode).
at::Tensor input_gradient_penalty(Model& model, const at::Tensor& images, const at::Tensor& labels);

/// `base` with objective `kind` at `strength`, the one number a robust-training sweep varies: gradnorm's
/// lambda, noise's sigma, or pgd-l2's eps (with steps of 2·eps/steps from a random start). Errors for another
/// kind or a strength that is not finite and > 0.
ObjectiveOptions objective_at_strength(ObjectiveOptions base, const std::string& kind, double strength);

}  // namespace robustlens
