// Perceptually aligned gradients (Srinivas, Bordt & Lakkaraju, NeurIPS 2023):
// how closely a classifier's input gradient follows the score of the data
// distribution. The paper compares with a pretrained EDM diffusion model under
// LPIPS; neither exists offline, so the score here comes from robustlens's own
// denoiser (generative/denoiser.h, Tweedie's formula at each noise level σ) and
// the comparison is the cosine similarity of the two maps (primary) and the
// SSIM of the max-|value|-normalised maps (secondary).
//
// Pairings (the classifier's side, the score's side):
//   conditional    ∇ₓ log softmax(f(x))_y   against s_σ(x, y)
//   bayes          ∇ₓ log softmax(f(x))_y   against s_σ(x, y) − s_σ(x): for a
//                  Bayes-optimal classifier of σ-smoothed data the two are equal
//   summed-logits  ∇ₓ Σ_k f(x)_k            against s_σ(x) (the reference's
//                  CIFAR script). Not a measure of alignment: every softmax loss
//                  is unchanged when the same c(x) is added to all logits, so
//                  training never moves the direction of Σ_k f_k; kept to compare
//                  with the reference, never a default.
// log softmax is unchanged by that shift (gauge invariance), so the first two
// measure what the classifier learned. y is the true label (or the predicted one).
// SSIM does not tell a map from its negative everywhere (where both the local
// mean and the local structure flip sign its two factors stay positive), which
// is one reason the cosine is the primary metric.
#pragma once

#include "robustlens/core/model.h"
#include "robustlens/core/options.h"
#include "robustlens/core/progress.h"
#include "robustlens/data/dataset.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace robustlens {

/// The score of the σ-smoothed data density at images N×C×H×W in [0,1]:
/// s_σ(x, y) for labels N, s_σ(x) for undefined labels; same shape as the images.
using ScoreFunction = std::function<at::Tensor(const at::Tensor& images, const at::Tensor& labels, double sigma)>;

enum class AlignmentPairing { conditional, bayes, summed_logits };

/// "conditional", "bayes", "summed-logits".
std::string alignment_pairing_name(AlignmentPairing pairing);
/// The inverse of alignment_pairing_name; errors name the valid values.
AlignmentPairing parse_alignment_pairing(const std::string& name);
/// What the pairing compares, in one line.
std::string alignment_pairing_description(AlignmentPairing pairing);
/// Whether the pairing needs s(x, y) and s(x) (bayes needs both).
bool pairing_needs_class_scores(AlignmentPairing pairing);
bool pairing_needs_unconditional_scores(AlignmentPairing pairing);

struct AlignmentOptions {
  AlignmentPairing pairing = AlignmentPairing::conditional;
  /// y: the model's predicted class instead of the true label (conditional, bayes).
  bool predicted_label = false;
  /// Noise levels of the score, [−1, 1] pixel units; each is reported.
  std::vector<double> sigmas{0.1, 0.25, 0.5, 1.0};
  /// The noise level whose numbers are the summary (one of sigmas).
  double summary_sigma = 0.5;
  /// Images per chunk.
  std::int64_t batch_size = 64;

  RL_SETTER(pairing)
  RL_SETTER(predicted_label)
  RL_SETTER(sigmas)
  RL_SETTER(summary_sigma)
  RL_SETTER(batch_size)

  void check() const;
  nlohmann::json to_json() const;
};

/// The classifier's side of a pairing, detached, and the labels y it used:
/// `labels` (N) or, when undefined, the predicted classes (ignored by summed-logits).
std::pair<at::Tensor, at::Tensor> alignment_gradient(Model& model, const at::Tensor& images, const at::Tensor& labels,
                                                     AlignmentPairing pairing);

/// The score's side of a pairing at noise level sigma for labels y (N).
at::Tensor paired_score(const ScoreFunction& score, const at::Tensor& images, const at::Tensor& labels,
                        AlignmentPairing pairing, double sigma);

struct AlignmentAtSigma {
  double sigma = 0;
  /// Per image (CPU, float64): cosine similarity and SSIM (data range 2).
  at::Tensor cosine, ssim;
  double mean_cosine = 0, cosine_standard_error = 0, mean_ssim = 0, ssim_standard_error = 0;
  /// Mean cosine over the images of each label y (NaN for a class without images).
  std::vector<double> class_mean_cosine;
  nlohmann::json to_json(bool per_image) const;
};

struct AlignmentResult {
  AlignmentPairing pairing = AlignmentPairing::conditional;
  std::vector<AlignmentAtSigma> per_sigma;
  double summary_sigma = 0;
  std::int64_t images = 0;
  /// The entry of per_sigma at summary_sigma.
  const AlignmentAtSigma& summary() const;
  /// The summary's numbers at top level (mean_cosine, ...), then every sigma.
  nlohmann::json to_json(bool per_image = false) const;
};

AlignmentResult analyse_alignment(Model& model, const Dataset& data, const ScoreFunction& score,
                                  const AlignmentOptions& options, const ProgressCallback& progress = {});

}  // namespace robustlens
