// Off-manifold robustness (Srinivas, Bordt & Lakkaraju, "Which Models have
// Perceptually-Aligned Gradients? An Explanation via Off-Manifold Robustness",
// NeurIPS 2023): how much a classifier's prediction moves under noise along
// the data manifold and off it.
//   Known manifold (distractor data, data/distractor.h): Gaussian noise on the
//     item half (mostly on the manifold), on the glyph half (off it: the data
//     do not vary there) and on the whole image; relative robustness
//     R(s) = change(item half) / change(glyph half); the share of the input
//     gradient's energy on the item half.
//   Learned manifold: an orthonormal tangent basis at each image (the decoder
//     Jacobian of a VAE, generative/vae.h, or local PCA of the image's nearest
//     training neighbours of its class); random unit directions split into
//     their tangent part and the rest, the model evaluated at x + eps·u; the
//     tangent fraction ‖P∇f‖/‖∇f‖ against its random baseline √(k/d).
// The change of a prediction is ‖softmax(f(x + n)) − softmax(f(x))‖₁ (the
// reference code's metric); perturbed images are not clipped to [0,1] (nor are
// they in the reference). ∇f of the tangent fraction and the gradient share is
// the gradient of the predicted class's logit (the reference's input_gradient).
// First-order sensitivities (ours): per direction, from g = ∇ log softmax(f(x))_ŷ,
// which no shift of all logits changes, ‖Pg‖²/k along a k-dimensional subspace
// and ‖(I−P)g‖²/(D−k) across it; unlike the change at a large eps they do not
// saturate, so they rank models whose predictions an eps-step already flips.
#pragma once

#include "robustlens/core/model.h"
#include "robustlens/core/options.h"
#include "robustlens/core/progress.h"
#include "robustlens/data/dataset.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace robustlens {

/// ‖softmax(logits) − softmax(reference_logits)‖₁ per row.
at::Tensor softmax_l1_change(const at::Tensor& logits, const at::Tensor& reference_logits);

/// ∇_x of the predicted class's logit, N×C×H×W (detached).
at::Tensor predicted_logit_gradient(Model& model, const at::Tensor& images);

/// `count` values log-spaced from 10^first_exponent to 10^last_exponent (numpy's logspace).
std::vector<double> log_spaced(double first_exponent, double last_exponent, std::int64_t count);

/// Mean over images of a per-image quantity, with its standard error.
struct MeanCurve {
  std::vector<double> mean, standard_error;
  nlohmann::json to_json() const;
};

/// Per-direction first-order sensitivity of log softmax(f(x))_ŷ along a
/// subspace (on) and across it (off): means over images of ‖Pg‖²/k and
/// ‖(I−P)g‖²/(D−k), E[(uᵀg)²] for a random unit direction u of each.
struct FirstOrderSensitivity {
  double on_manifold = 0, on_manifold_standard_error = 0, off_manifold = 0, off_manifold_standard_error = 0;
  /// off_manifold / on_manifold: below 1 when a model moves less per direction off the manifold than on it.
  double off_to_on_ratio() const { return off_manifold / on_manifold; }
  nlohmann::json to_json() const;
};

struct DistractorOptions {
  /// Noise standard deviations s (pixel units); the spec's {0} ∪ logspace(−2, 1, 30).
  std::vector<double> noise_levels = default_noise_levels();
  /// Noise draws per image and level (averaged per image).
  std::int64_t draws = 1;
  /// Images per chunk; each model pass holds 3·draws·batch_size rows.
  std::int64_t batch_size = 64;

  RL_SETTER(noise_levels)
  RL_SETTER(draws)
  RL_SETTER(batch_size)

  static std::vector<double> default_noise_levels();
  void check() const;
  nlohmann::json to_json() const;
};

struct DistractorResult {
  std::vector<double> noise_levels;
  /// Prediction change under noise on the item half, the glyph half, the whole image.
  MeanCurve item_half, distractor_half, whole_image;
  /// item_half.mean / distractor_half.mean per level; NaN at level 0 (no noise: both changes are rounding) and
  /// where the latter is 0.
  std::vector<double> relative_robustness;
  /// Mean over images of ‖∇f on the item half‖² / ‖∇f‖² (images with ∇f = 0 left out).
  double item_gradient_share = 0;
  /// Per pixel: on = the item half, off = the glyph half.
  FirstOrderSensitivity first_order;
  std::int64_t images = 0;
  nlohmann::json to_json() const;
};

/// Needs data with a signal mask (distractor:SPEC). The noise is drawn from
/// `generator` (core/random.h): a caller that takes several measures passes
/// one stream through them all.
DistractorResult analyse_distractor_robustness(Model& model, const Dataset& data, const DistractorOptions& options,
                                               const at::Generator& generator, const ProgressCallback& progress = {});

/// Orthonormal tangent bases N×D×k (D = C·H·W) for a batch of images N×C×H×W,
/// on the images' device.
using TangentBasis = std::function<at::Tensor(const at::Tensor& images, const at::Tensor& labels)>;

/// Local PCA: for each image, the top k principal directions (N×D×k) of its
/// `neighbours` nearest (L2) images of the same class in `reference`
/// (centred on their mean). An image that is itself in `reference` (analysing
/// the training split) is one of its own neighbours. Errors when a class has
/// fewer than `neighbours` images, k exceeds the pixels, or a label is not a reference class.
at::Tensor local_pca_basis(const at::Tensor& images, const at::Tensor& labels, const Dataset& reference,
                           std::int64_t neighbours, std::int64_t k);

/// Mean over images of ‖AᵢᵀBᵢ‖²_F / k for orthonormal bases N×D×k: 1 when the
/// subspaces agree, k/D on average for unrelated random ones.
double subspace_agreement(const at::Tensor& basis_a, const at::Tensor& basis_b);

struct TangentOptions {
  /// L2 lengths of the perturbations (pixel units). The reference's 2.64 on
  /// CIFAR-10 (D = 3072) is ≈ 1.33 on 28×28 at the same per-pixel scale.
  std::vector<double> eps = log_spaced(-1, 1, 9);
  /// Random directions per image (averaged per image).
  std::int64_t draws = 4;
  /// Images per chunk; each model pass holds 2·batch_size rows.
  std::int64_t batch_size = 64;

  RL_SETTER(eps)
  RL_SETTER(draws)
  RL_SETTER(batch_size)

  void check() const;
  nlohmann::json to_json() const;
};

struct TangentResult {
  std::vector<double> eps;
  /// Prediction change along tangent (on-manifold) and normal (off-manifold) unit directions.
  MeanCurve on_manifold, off_manifold;
  /// Mean and standard error over images of ‖P∇f‖/‖∇f‖ (images with ∇f = 0 left out).
  double tangent_fraction = 0, tangent_fraction_standard_error = 0;
  /// Along the tangent space (on) and its complement (off).
  FirstOrderSensitivity first_order;
  std::int64_t tangent_dim = 0, input_dim = 0, images = 0;
  /// √(k/D): the expected tangent fraction of a random direction.
  double random_baseline() const;
  nlohmann::json to_json() const;
};

/// The random directions are drawn from `generator` (core/random.h).
TangentResult analyse_tangent_sensitivity(Model& model, const Dataset& data, const TangentBasis& basis,
                                          const TangentOptions& options, const at::Generator& generator,
                                          const ProgressCallback& progress = {});

/// Several tangent-space estimates of the same images (e.g. "vae" and
/// "local-pca"), measured in one pass over the data: each chunk's bases and
/// input gradients are computed once, for every measure and for the
/// agreement of the two estimates.
struct TangentComparison {
  std::map<std::string, TangentResult> results;  ///< per basis name
  /// subspace_agreement of the two bases over all images; set when exactly two bases of the same k were given.
  std::optional<double> agreement;
  /// k/D: the expected agreement of unrelated random subspaces.
  double random_agreement() const;
  /// {name: result}, and with the agreement {"subspace_agreement": {"vae_vs_local_pca", "random_expectation"}}.
  nlohmann::json to_json() const;
};

TangentComparison analyse_tangent_spaces(Model& model, const Dataset& data,
                                         const std::map<std::string, TangentBasis>& bases,
                                         const TangentOptions& options, const at::Generator& generator,
                                         const ProgressCallback& progress = {});

}  // namespace robustlens
