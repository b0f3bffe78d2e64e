// Frequency margins (Ortiz-Jimenez et al., "Hold me tight!", NeurIPS 2020): the
// distance to the decision boundary inside each diagonal-block DCT subspace,
// measured by subspace-constrained DeepFool, and in the full space.
//
// All (sample, subspace) pairs run as one batch through the batched DeepFool
// (each row projected onto its own subspace); flipped pairs leave the batch.
// Statistics are over the pairs whose label flipped within max_iterations; the
// others are counted, not hidden (their margin exceeds what was explored), and
// a second set of quartiles counts them at the norm DeepFool reached, a lower
// bound of their margin: a median that such a bound could still raise is marked
// as a lower bound.
//
// The full-space margin is also the minimum per sample over the attack ensemble
// (attacks/minimal_perturbation.h: DeepFool with these options, FMN, PGD
// bisection), unclipped like the margins and against the predicted label (a
// margin is the distance to the boundary of the class the model predicts), so
// that a model on which DeepFool overestimates is reported as such.
#pragma once

#include "robustlens/analyses/statistics.h"
#include "robustlens/attacks/deepfool.h"
#include "robustlens/attacks/minimal_perturbation.h"
#include "robustlens/core/model.h"
#include "robustlens/core/options.h"
#include "robustlens/core/progress.h"
#include "robustlens/data/dataset.h"
#include "robustlens/spectral/dct.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace robustlens {

struct MarginOptions {
  /// K and T of the DCT subspaces; 0 = the reference settings for the image size.
  std::int64_t block = 0;
  std::int64_t step = 0;
  /// Also measure the unconstrained (full-space) margin.
  bool full_space = true;
  /// The full space also by the attack ensemble (its members' options; DeepFool's, clip and norm are these).
  bool ensemble = true;
  MinimalPerturbationOptions ensemble_options;
  /// Reference defaults: top-10 candidates, overshoot 0.02, 100 iterations, no clipping.
  DeepFoolOptions deepfool = DeepFoolOptions().set_candidates(10).set_overshoot(0.02).set_max_iterations(100);
  /// (sample, subspace) pairs per model pass.
  std::int64_t batch_size = 256;

  RL_SETTER(block)
  RL_SETTER(step)
  RL_SETTER(full_space)
  RL_SETTER(ensemble)
  RL_SETTER(ensemble_options)
  RL_SETTER(deepfool)
  RL_SETTER(batch_size)

  /// The ensemble's options as run: L2, unclipped, DeepFool with `deepfool` unconstrained, this batch size.
  MinimalPerturbationOptions resolved_ensemble_options() const;
  /// DeepFool as it runs, in every subspace and in the full space: with this struct's batch size.
  DeepFoolOptions resolved_deepfool() const;
  /// The subspaces these options give for H×W images.
  DctSubspaces subspaces(std::int64_t height, std::int64_t width) const;
  nlohmann::json to_json() const;
};

/// Quartiles over every sample, the ones that did not flip counted at the norm reached (a lower bound of
/// their margin). The median is a lower bound when some sample that did not flip lies at or below it.
struct MarginsWithLowerBounds {
  Quartiles quartiles;
  bool median_is_lower_bound = false;
  double not_flipped_share = 0;
  nlohmann::json to_json() const;
};
MarginsWithLowerBounds margins_with_lower_bounds(const at::Tensor& margins, const at::Tensor& flipped);

struct SubspaceMargins {
  at::Tensor margins;     ///< N, ‖delta‖₂ per sample (also for non-flipped ones)
  at::Tensor flipped;     ///< N, bool
  at::Tensor iterations;  ///< N, int64
  Quartiles quartiles;    ///< over flipped samples
  std::int64_t not_flipped = 0;
  double mean_iterations = 0;
  MarginsWithLowerBounds with_lower_bounds;
  nlohmann::json to_json() const;
};

/// The full-space minimum over the attack ensemble.
struct FullSpaceMinimum {
  MinimalPerturbationResult minimal;  ///< on the CPU; norms undefined when not measured
  Quartiles quartiles;                ///< of minimal.norms over every sample (+inf counts)
  std::string warning;                ///< DeepFool's overestimate warning; empty when none
  nlohmann::json to_json() const;
};

struct MarginResult {
  DctSubspaces subspaces;
  std::vector<SubspaceMargins> per_subspace;  ///< index t = subspace t (low → high frequency)
  SubspaceMargins full_space;                 ///< DeepFool's, when measured
  FullSpaceMinimum full_space_minimum;        ///< the ensemble's, when measured (minimal.norms defined)
  nlohmann::json to_json() const;
};

MarginResult analyse_margins(Model& model, const Dataset& dataset, const MarginOptions& options,
                             const ProgressCallback& progress = {});

}  // namespace robustlens
