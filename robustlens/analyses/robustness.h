// Adversarial robustness of a model on a dataset: clean accuracy, robust
// accuracy under PGD or FGSM at each eps, DeepFool's minimal perturbation
// norms, and the minimal perturbation per sample over an ensemble of attacks
// (DeepFool, FMN, the PGD/FGSM adversarials of the eps list, PGD bisection;
// attacks/minimal_perturbation.h). `robustlens attack` prints and writes it.
#pragma once

#include "robustlens/analyses/statistics.h"
#include "robustlens/attacks/deepfool.h"
#include "robustlens/attacks/minimal_perturbation.h"
#include "robustlens/attacks/pgd.h"
#include "robustlens/core/model.h"
#include "robustlens/core/options.h"
#include "robustlens/core/progress.h"
#include "robustlens/data/dataset.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace robustlens {

struct RobustnessOptions {
  /// "pgd" or "fgsm".
  std::string attack = "pgd";
  Norm norm = Norm::l2;
  /// Radii in [0,1] pixel units; empty = the norm's default list
  /// (L2: 0.25, 0.5, 1, 2; Linf: 1/255, 2/255, 4/255, 8/255).
  std::vector<double> eps;
  /// PGD: steps, step size (0 = 2.5·eps/steps), restarts.
  std::int64_t steps = 10;
  double step_size = 0.0;
  std::int64_t restarts = 1;
  /// PGD's random starts draw from a generator of this seed alone (core/random.h).
  std::uint64_t seed = 0;
  /// Also measure DeepFool minimal perturbations.
  bool deepfool = true;
  DeepFoolOptions deepfool_options;
  /// The minimal perturbation per sample over the attack ensemble, in `norm` (DeepFool a member with L2).
  bool ensemble = true;
  /// The ensemble's FMN, bisection and warning settings (its norm, clip, DeepFool and batch size come from here).
  MinimalPerturbationOptions ensemble_options;
  std::int64_t batch_size = 256;
  /// Keep attacked images in [0,1] (PGD, FGSM and the ensemble). Off for data that are not pixels in [0,1]
  /// (e.g. DCT-transformed images), whose values lie outside it: clipping them would move them farther than eps.
  bool clip = true;
  /// Keep the adversarial examples in the result (memory: one copy of the data per eps).
  bool keep_examples = false;

  RL_SETTER(attack)
  RL_SETTER(norm)
  RL_SETTER(eps)
  RL_SETTER(steps)
  RL_SETTER(step_size)
  RL_SETTER(restarts)
  RL_SETTER(seed)
  RL_SETTER(deepfool)
  RL_SETTER(deepfool_options)
  RL_SETTER(ensemble)
  RL_SETTER(ensemble_options)
  RL_SETTER(batch_size)
  RL_SETTER(keep_examples)
  RL_SETTER(clip)

  /// Checked, with the eps list filled in and the ensemble's options set from this struct's.
  RobustnessOptions resolved() const;
  nlohmann::json to_json() const;
};

struct RobustnessResult {
  double clean_accuracy = 0;
  std::vector<double> eps;
  /// Share of samples classified correctly both clean and under the attack at each eps.
  std::vector<double> robust_accuracy;
  std::vector<at::Tensor> adversarial_examples;  ///< per eps, when kept
  /// DeepFool (when run): norms of all samples, statistics over the flipped ones.
  DeepFoolResult deepfool;
  Quartiles deepfool_quartiles;
  double deepfool_mean_iterations = 0;
  std::int64_t deepfool_not_flipped = 0;
  /// The ensemble (when run): per sample the smallest checked adversarial perturbation.
  std::optional<MinimalPerturbationResult> minimal;
  /// Its quartiles over the clean-correct samples (+inf counts where no attack succeeded), and over all
  /// samples (misclassified ones at 0: the median is the eps at which robust accuracy would be 50%).
  Quartiles minimal_quartiles_correct, minimal_quartiles_all;
  /// Per eps of the list: the share of samples whose minimal perturbation is <= eps (float rounding allowed);
  /// at least 1 − robust accuracy up to float ties, since the list's adversarials are members.
  std::vector<double> minimal_share_within_eps;
  /// Per eps of the list: the share correctly classified, robust to the attack at eps and with no member's
  /// checked perturbation within eps; at most robust_accuracy and 1 − minimal_share_within_eps.
  std::vector<double> ensemble_robust_accuracy;
  std::string minimal_warning;
  nlohmann::json to_json() const;
};

RobustnessResult analyse_robustness(Model& model, const Dataset& dataset, const RobustnessOptions& options,
                                    const ProgressCallback& progress = {});

}  // namespace robustlens
