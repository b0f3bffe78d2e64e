// The latent-code analyses of Sbailò & Ghiringhelli, "Emergence of Latent
// Binary Encoding in Deep Neural Network Classifiers" (arXiv 2310.08224), on
// any model that exposes latent() (built-in models; a TorchScript module with
// a `latent` method):
//   binarity     per latent unit, a two-component 1-D Gaussian mixture (EM) of
//                the unit standardised over the training images: mean
//                log-likelihood, mean component std, separation |mu1 − mu2| /
//                mean std
//   encoding     same-encoding fraction: code(x) = sign pattern of z; per
//                predicted class the count of its most frequent code, summed,
//                over N
//   collapse     with predicted labels: NC1 = tr(Σ_W Σ_B⁺)/C, within-class
//                variance tr(Σ_W)/P, equiangularity (std of pairwise cosines of
//                the centred class means), equinorm (std/mean of their norms)
//   robustness   DeepFool (top-10 candidates, overshoot 0.02, ≤ 50 iterations)
//                ‖r‖₂ / ‖x‖₂ per test image (the predicted label's boundary),
//                and the same ratio for the minimal perturbation over the
//                attack ensemble (attacks/minimal_perturbation.h; counted
//                against the true label, 0 for a misclassified image), which a
//                stronger attack cannot lower the way it lowers DeepFool's
//   reliability  misclassification-detection AUROC from ranks (ties half) of
//                the Mahalanobis distance of z to the predicted class's
//                Gaussian (fitted to the correctly predicted training images,
//                z standardised with training statistics), of ODIN (minus the
//                largest softmax of logits / T, T = 100; no input
//                preprocessing) and of the plain largest softmax (T = 1)
#pragma once

#include "robustlens/analyses/statistics.h"
#include "robustlens/analyses/two_gaussians.h"
#include "robustlens/attacks/deepfool.h"
#include "robustlens/attacks/minimal_perturbation.h"
#include "robustlens/core/model.h"
#include "robustlens/core/options.h"
#include "robustlens/core/progress.h"
#include "robustlens/data/dataset.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

namespace robustlens {

struct LatentOptions {
  /// Images per model pass.
  std::int64_t batch_size = 256;
  /// DeepFool runs on the first this many test images (0 = not at all).
  std::int64_t deepfool_samples = 1000;
  DeepFoolOptions deepfool = DeepFoolOptions().set_candidates(10).set_overshoot(0.02).set_max_iterations(50);
  /// The ensemble's minimal perturbation on the same images (its DeepFool member is the DeepFool above).
  bool ensemble = true;
  MinimalPerturbationOptions ensemble_options;
  double odin_temperature = 100;
  /// EM stops after this many iterations or when no unit's mean log-likelihood moves by more than the
  /// tolerance: scikit-learn's defaults, which the reference uses.
  std::int64_t gmm_iterations = 100;
  double gmm_tolerance = 1e-3;
  /// Added to every variance (mixture components, class covariances), as scikit-learn's reg_covar.
  double covariance_regularisation = 1e-6;

  RL_SETTER(batch_size)
  RL_SETTER(deepfool_samples)
  RL_SETTER(deepfool)
  RL_SETTER(ensemble)
  RL_SETTER(odin_temperature)
  RL_SETTER(gmm_iterations)
  RL_SETTER(gmm_tolerance)
  RL_SETTER(covariance_regularisation)

  void check() const;
  /// DeepFool as it runs, alone or as the ensemble's first member: with this struct's batch size.
  DeepFoolOptions resolved_deepfool() const;
  nlohmann::json to_json() const;
};

struct BinarityResult {
  /// One per unit; constant units (no spread to standardise) are left out of the means and counted.
  std::vector<TwoGaussians> units;
  std::vector<bool> constant;
  double mean_log_likelihood = 0, mean_std = 0, separation = 0, separation_std = 0;
  /// The median over units: a ReLU unit that is zero but for a few images has one component of the
  /// regularised std (1e-3) and a separation in the hundreds, which moves the mean but not the median.
  double separation_median = 0;
  std::int64_t constant_units = 0;
  nlohmann::json to_json() const;
};

/// Standardises each column of `latent` and fits two Gaussians to it (the same on every rank: two_gaussians.h).
BinarityResult latent_binarity(const at::Tensor& latent, const LatentOptions& options);

struct EncodingResult {
  double same_encoding_fraction = 0;
  std::int64_t distinct_codes = 0;
  nlohmann::json to_json() const;
};
EncodingResult same_encoding(const at::Tensor& latent, const at::Tensor& predicted);

struct CollapseResult {
  double nc1 = 0, within_class_variance = 0, equiangularity = 0, equinorm = 0;
  /// Predicted classes with at least two images (the others have no covariance).
  std::int64_t classes = 0;
  nlohmann::json to_json() const;
};
/// In a data-parallel run (here and in mahalanobis_scores) every rank passes the same latents and sums the class
/// means and scatter matrices of its share of the rows; they are added up over the ranks (core/distributed.h).
CollapseResult neural_collapse(const at::Tensor& latent, const at::Tensor& predicted);

/// Mahalanobis distance of each test latent to the Gaussian of its predicted
/// class; the Gaussians (mean, covariance + regularisation·I) are fitted to the
/// training latents predicted correctly as that class, all latents
/// standardised with the training mean and std. NaN for a test image whose
/// predicted class has fewer than two such training images.
at::Tensor mahalanobis_scores(const at::Tensor& train_latent, const at::Tensor& train_labels,
                              const at::Tensor& train_predicted, const at::Tensor& test_latent,
                              const at::Tensor& test_predicted, double regularisation);

/// Minus the largest softmax of logits / temperature: larger = less confident.
at::Tensor odin_scores(const at::Tensor& logits, double temperature);

/// The logits and latents of every image (batched, no gradients), checked: N×K logits, N×P finite latents.
struct LatentPass {
  at::Tensor logits, latent;  ///< CPU float32
};
LatentPass latent_pass(Model& model, const Dataset& data, std::int64_t batch_size, const std::string& task,
                       const ProgressCallback& progress = {});

/// rank_auroc over the finite scores only (a Mahalanobis score is NaN where the class has no Gaussian).
double auroc_or_nan(const at::Tensor& scores, const at::Tensor& positives);

struct LatentResult {
  LatentOptions options;
  std::int64_t latent_dim = 0, train_images = 0, test_images = 0;
  double test_accuracy = 0;
  BinarityResult binarity;  ///< of the training latents
  EncodingResult train_encoding, test_encoding;
  CollapseResult train_collapse, test_collapse;
  /// DeepFool ‖r‖/‖x‖ over the first deepfool_samples test images (NaN when 0).
  double robustness_ratio = 0, robustness_ratio_standard_error = 0;
  std::int64_t deepfool_images = 0, deepfool_not_flipped = 0;
  /// The ensemble's ‖δ_min‖/‖x‖: mean and standard error over the images where an adversarial was found,
  /// their median, how many had none, and DeepFool's overestimate share and warning (NaN / empty when not run).
  double ensemble_ratio = 0, ensemble_ratio_standard_error = 0, ensemble_ratio_median = 0;
  std::int64_t ensemble_not_found = 0;
  double deepfool_overestimate_share = 0;
  std::string ensemble_warning;
  double mahalanobis_auroc = 0, odin_auroc = 0, max_softmax_auroc = 0;
  std::int64_t misclassified = 0, mahalanobis_left_out = 0;
  /// The latents, logits and predictions themselves (CPU; not serialised): for charts and export.
  at::Tensor train_latent, train_predicted, test_latent, test_logits, test_predicted;
  nlohmann::json to_json() const;
};

/// Every measure above; binarity and the Mahalanobis Gaussians from `train`,
/// the rest on `test`. The model must expose latent().
LatentResult analyse_latent(Model& model, const Dataset& train, const Dataset& test, const LatentOptions& options,
                            const ProgressCallback& progress = {});

}  // namespace robustlens
