// Projected gradient descent (Madry et al.) on the cross-entropy, in L2 or Linf,
// with random start and restarts. Domain: iterates stay in the eps-ball around
// the input and, unless clip is off, in [0,1]. Used by `attack` and by PGD
// adversarial training.
#pragma once

#include "robustlens/core/model.h"
#include "robustlens/core/options.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace robustlens {

enum class Norm { l2, linf };
Norm parse_norm(const std::string& name);
std::string to_string(Norm norm);

struct PgdOptions {
  Norm norm = Norm::l2;
  /// Radius of the ball, in [0,1] pixel units.
  double eps = 0.5;
  std::int64_t steps = 10;
  /// Step length; 0 = 2.5·eps/steps (Madry et al.).
  double step_size = 0.0;
  /// Start from a uniform point of the ball (else from the input).
  bool random_start = true;
  /// Independent runs; per sample the one with the highest final loss is kept.
  std::int64_t restarts = 1;
  /// Keep iterates in [0,1].
  bool clip = true;

  RL_SETTER(norm)
  RL_SETTER(eps)
  RL_SETTER(steps)
  RL_SETTER(step_size)
  RL_SETTER(random_start)
  RL_SETTER(restarts)
  RL_SETTER(clip)

  /// Checked, with step_size filled in.
  PgdOptions resolved() const;
  nlohmann::json to_json() const;
};

/// Adversarial images (detached, same device as `images`) maximising the
/// cross-entropy of `labels`. Runs the model in whatever mode it is in. The
/// random starts draw from `generator` (core/random.h), which a random start
/// needs; without one only random_start = false runs.
at::Tensor pgd_attack(Model& model, const at::Tensor& images, const at::Tensor& labels, const PgdOptions& options,
                      const at::Generator& generator = {});

/// The same with one radius per sample (`radii`, N; options.eps is ignored); a step size of 0
/// becomes 2.5·radius/steps per sample. Used to bisect each sample's minimal perturbation.
at::Tensor pgd_attack(Model& model, const at::Tensor& images, const at::Tensor& labels, const PgdOptions& options,
                      const at::Tensor& radii, const at::Generator& generator = {});

/// Projects each sample's perturbation onto the `norm` ball of radius eps.
at::Tensor project_to_ball(const at::Tensor& delta, Norm norm, double eps);
/// The same with one radius per sample (`radii`, N).
at::Tensor project_to_ball(const at::Tensor& delta, Norm norm, const at::Tensor& radii);

/// Per-sample `norm` of an N×... tensor, shaped N.
at::Tensor perturbation_norms(const at::Tensor& delta, Norm norm);
/// One value per sample (N) shaped N×1×...×1 to broadcast over `like` (N×...).
at::Tensor per_sample_view(const at::Tensor& values, const at::Tensor& like);

}  // namespace robustlens
