// Minimal adversarial perturbations that a stronger attack cannot overturn:
// per sample the smallest perturbation that any of several attacks found
// (AutoAttack's lesson: an ensemble, the minimum per sample), in L2 or Linf,
// counted against the true label as robust accuracy counts it.
//
// Attacks, in this order (found_by indexes MinimalPerturbationResult::attacks):
//   clean          the model already misclassifies the image: norm 0
//   deepfool       DeepFool's perturbation (L2 only; it follows the predicted label)
//   (given)        perturbations the caller already has, under their own names,
//                  e.g. PGD at each of the attack's radii
//   fmn            Fast Minimum-Norm (attacks/fmn.h), warm-started from the
//                  smallest adversarial found so far
//   pgd-bisection  PGD at radii bisected per sample below the smallest found so far
//   fmn-long       FMN with the paper's settings (100 steps, γ 0.05) from the image, only
//                  on the correctly classified images no member has fooled yet
//                  (AutoAttack's lesson again: the costly attack on what is left)
// DeepFool's and the given perturbations are first scaled down along their own
// ray to the boundary (bisection over the scale, forward passes only).
// Every candidate is checked with one forward pass in the image domain ([0,1]
// unless clip is off): only perturbations that do make the model misclassify
// count, with the norm of what was checked. DeepFool's own estimate exceeding
// the minimum by more than `overestimate_factor` on more than `warning_share`
// of the correctly classified samples is reported: DeepFool's linearisation
// then misleads on this model (gradient masking or strong curvature), and so
// would any verdict that rests on it alone.
#pragma once

#include "robustlens/attacks/deepfool.h"
#include "robustlens/attacks/fmn.h"
#include "robustlens/attacks/pgd.h"
#include "robustlens/core/options.h"
#include "robustlens/core/progress.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace robustlens {

struct MinimalPerturbationOptions {
  Norm norm = Norm::l2;
  /// Keep every attack's perturbation in the image domain [0,1].
  bool clip = true;
  /// DeepFool as a member (L2 only), with its own options (its clip included: its estimate is reported as it is).
  bool deepfool = true;
  DeepFoolOptions deepfool_options;
  /// FMN as a member; its norm and clip are set from this struct's. Warm-started from the smallest
  /// adversarial so far (DeepFool's, mostly), FMN must shrink its radius fast: with the paper's γ = 0.05 it can shrink
  /// by at most exp(−Σγ) ≈ 0.53 in 25 steps, too little where DeepFool overestimates 2× or more (measured in
  /// docs/attacks-and-attributions.md: γ = 0.2 and 20 steps come closer to a 100-step reference at less cost).
  bool fmn = true;
  FmnOptions fmn_options = FmnOptions().set_steps(20).set_gamma_init(0.2);
  /// The long FMN run on the images nothing else fooled (0 steps = none). The short warm-started FMN,
  /// started from the image where no adversarial is known, left 6% of a BinEnc LeNet's images unfooled
  /// that this run fools (docs/attacks-and-attributions.md); elsewhere it finds few left and costs little.
  std::int64_t long_fmn_steps = 100;
  /// PGD bisection: rounds per sample and PGD steps per round (0 rounds = none).
  std::int64_t bisection_rounds = 1;
  std::int64_t bisection_steps = 5;
  /// Forward passes of the ray search that scales DeepFool's and the given perturbations down to the boundary.
  std::int64_t ray_search_steps = 10;
  /// The gradient-masking warning: DeepFool's estimate above factor × the minimum on more than share of samples.
  double overestimate_factor = 1.5;
  double warning_share = 0.1;
  std::int64_t batch_size = 256;

  RL_SETTER(norm)
  RL_SETTER(clip)
  RL_SETTER(deepfool)
  RL_SETTER(deepfool_options)
  RL_SETTER(fmn)
  RL_SETTER(fmn_options)
  RL_SETTER(long_fmn_steps)
  RL_SETTER(bisection_rounds)
  RL_SETTER(bisection_steps)
  RL_SETTER(ray_search_steps)
  RL_SETTER(overestimate_factor)
  RL_SETTER(warning_share)
  RL_SETTER(batch_size)

  /// The options DeepFool runs with: deepfool_options with this struct's batch size.
  DeepFoolOptions deepfool_member_options() const;
  /// The options FMN and the long FMN run with: fmn_options (or the paper's defaults with long_fmn_steps)
  /// with this struct's norm, clip and batch size.
  FmnOptions fmn_member_options() const;
  FmnOptions long_fmn_member_options() const;
  void check() const;
  nlohmann::json to_json() const;
};

/// Perturbations an attack already found (adversarial or not: each is checked).
struct CandidatePerturbations {
  std::string name;          ///< the attack, as found_by will name it
  at::Tensor perturbations;  ///< N×C×H×W
};

struct MinimalPerturbationResult {
  std::vector<std::string> attacks;  ///< the members that ran, in order; found_by and per_attack_norms index them
  at::Tensor perturbations;          ///< N×C×H×W, the smallest checked perturbation (zeros where none)
  at::Tensor norms;                  ///< N, double: its norm; 0 when misclassified clean, +inf when none found
  at::Tensor found_by;               ///< N, int64: index into attacks, −1 when none found
  at::Tensor per_attack_norms;       ///< N×attacks, double: each member's checked norm (+inf: it failed; 0 for every
                                ///< member on an image misclassified clean, where FMN and the bisection do not run)
  DeepFoolResult deepfool;  ///< DeepFool's own result, when it ran
  /// Among correctly classified samples with a finite minimum that DeepFool flipped: the share whose
  /// DeepFool norm exceeds overestimate_factor × the minimum (NaN when DeepFool did not run or none compare).
  double deepfool_overestimate_share = 0;
  std::int64_t deepfool_compared = 0;
  bool gradient_masking_warning = false;

  /// Per sample (bool, on norms' device): the minimal perturbation is <= eps (misclassified ones are, at 0),
  /// allowing float rounding (a relative 1e-5).
  at::Tensor within(double eps) const;
  /// The share of samples within eps.
  double share_within(double eps) const;
  /// The warning as one sentence; empty when there is none.
  std::string warning(const MinimalPerturbationOptions& options) const;
  /// How many samples each attack was the first to reach the minimum for, by name ("none": not found).
  nlohmann::json found_by_counts() const;
  /// Moves perturbations, norms, found_by and per_attack_norms to the CPU (not DeepFool's result).
  void to_cpu();
  /// The per-sample record: attacks, who found each minimum, the overestimate check with `warning`
  /// (warning(options), passed since this struct does not keep its options), and the norms.
  nlohmann::json to_json(const std::string& warning) const;
};

/// Runs the model in its current mode (use evaluation mode); results on the input's device.
MinimalPerturbationResult minimal_perturbations(Model& model, const at::Tensor& images, const at::Tensor& labels,
                                                const MinimalPerturbationOptions& options,
                                                const std::vector<CandidatePerturbations>& given = {},
                                                const ProgressCallback& progress = {});

}  // namespace robustlens
