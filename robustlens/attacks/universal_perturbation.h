// A universal adversarial perturbation for classification (Moosavi-Dezfooli, Fawzi, Fawzi & Frossard, CVPR 2017):
// one perturbation v with ‖v‖₂ ≤ eps that changes the prediction of as many images as it can. The standard
// iteration: pass over the images; for each image that x + v does not fool yet, the DeepFool perturbation r of
// x + v (the minimal step to its boundary); v ← the projection of v + r onto the ball; stop once the fooling rate
// reaches `target_fooling_rate` or after `passes` passes. Batched here: the DeepFool steps of a batch's unfooled
// images are computed together and added at once (their mean, then one projection), where the paper adds them one
// image at a time. (Their sum, tried first, fooled fewer images: each batch's sum overwrites v.) UPI (analyses/upi.h)
// scores it as the classification baseline of its universal perturbations.
#pragma once

#include "robustlens/attacks/deepfool.h"
#include "robustlens/core/model.h"
#include "robustlens/core/options.h"
#include "robustlens/core/progress.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstdint>

namespace robustlens {

struct UniversalPerturbationOptions {
  /// L2 radius of the perturbation ([0,1] pixel units).
  double eps = 1.0;
  /// Passes over the images at most.
  std::int64_t passes = 3;
  /// Stop once this share of the images is fooled (the paper's 1 − δ, δ = 0.2).
  double target_fooling_rate = 0.8;
  /// Images per DeepFool batch (one update of v per batch).
  std::int64_t batch_size = 128;
  /// Keep x + v in [0,1] when measuring and when DeepFool steps.
  bool clip = false;
  /// DeepFool's candidates, overshoot and iterations (its batch size and clip are this struct's).
  DeepFoolOptions deepfool = DeepFoolOptions().set_max_iterations(50);

  RL_SETTER(eps)
  RL_SETTER(passes)
  RL_SETTER(target_fooling_rate)
  RL_SETTER(batch_size)
  RL_SETTER(clip)
  RL_SETTER(deepfool)

  void check() const;
  nlohmann::json to_json() const;
};

struct UniversalPerturbation {
  at::Tensor delta;         ///< C×H×W, ‖delta‖₂ ≤ eps, on the images' device
  double fooling_rate = 0;  ///< share of the images whose prediction x + delta changes
  std::int64_t passes = 0;  ///< passes made
  nlohmann::json to_json() const;
};

/// The perturbation for `images` (N×C×H×W), fooling measured against the model's clean predictions.
UniversalPerturbation universal_adversarial_perturbation(Model& model, const at::Tensor& images,
                                                         const UniversalPerturbationOptions& options,
                                                         const ProgressCallback& progress = {});

}  // namespace robustlens
