// Universal perturbations of interpretations (Ehsani Oskouie & Farnia, ICASSP
// 2023): one perturbation delta, ‖delta‖₂ ≤ eps, built on an attack split,
// that moves a gradient-based interpretation map on unseen test images.
//   UPI-Grad: projected stochastic gradient ascent of the mean map
//             dissimilarity, through the map (double backprop).
//   UPI-PCA:  the top right singular vector of the per-image map-attack
//             directions (power iteration, matrix–vector products only).
// Baselines at the same eps: universal random noise, per-image random noise
// (each averaged over several draws, with their spread), a per-image map
// attack (an upper reference), and a classification universal adversarial
// perturbation (the paper's comparison: a perturbation built to change the
// answer, not the explanation). Only correctly classified images are attacked
// and scored.
//
// A map change at a radius that flips labels mixes "the explanation moved"
// with "the answer changed", and on max-pooling networks any noise at all
// moves a map (ties on the black background). So the summary is read at a
// radius no larger than the model's median minimal perturbation, with the
// fooling rate, the change over the images whose prediction stayed, and the
// floor: random noise at a radius near 0.
#pragma once

#include "robustlens/analyses/statistics.h"
#include "robustlens/core/model.h"
#include "robustlens/core/options.h"
#include "robustlens/core/progress.h"
#include "robustlens/data/dataset.h"
#include "robustlens/explain/attributions.h"
#include "robustlens/models/accuracy.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace robustlens {

struct UpiOptions {
  /// The interpretation under attack (any method of explain/attributions.h);
  /// default: simple gradient of the softmax probability of the true class.
  AttributionOptions attribution = AttributionOptions().set_softmax(true);
  /// Radii (L2, [0,1] pixel units).
  std::vector<double> eps{0.5, 1.0, 2.0};
  /// "grad", "pca" or "both".
  std::string method = "both";
  /// UPI-Grad: passes over the attack split, first step length as a fraction
  /// of eps (step t of pass p is step_fraction·eps/√(1+p)), starting norm of
  /// the random delta as a fraction of eps.
  std::int64_t passes = 20;
  double step_fraction = 0.1;
  double start_fraction = 0.01;
  /// UPI-PCA: L2 norm of the noise that moves each attack image off the
  /// point itself (where the dissimilarity's gradient vanishes); power iterations.
  double pca_noise = 0.1;
  std::int64_t power_iterations = 200;
  /// Per-image map attack (baseline): steps of length 2.5·eps/steps.
  std::int64_t per_image_steps = 10;
  /// The classification baseline: a universal adversarial perturbation of the same radius built on the attack
  /// split (attacks/universal_perturbation.h), with at most this many passes; 0 = skip it.
  std::int64_t uap_passes = 3;
  /// The radius of the summary; 0 = the median minimal perturbation (attack ensemble, L2, this struct's
  /// clip) of the correctly classified test images. It joins the eps list.
  double summary_eps = 0;
  /// The floor: random noise at this radius (ε → 0).
  double floor_eps = 1e-3;
  /// Draws of each random baseline, averaged; their standard deviation is the spread.
  std::int64_t random_draws = 5;
  /// softplus beta of a smooth surrogate used only for the attack gradients of
  /// a ReLU built-in model (maps are always evaluated on the real model); 0 = off.
  double surrogate_beta = 0;
  /// Top-k intersection: k; 0 = scaled with the image area (1000 on 224×224,
  /// at least 10: 16 on 28×28).
  std::int64_t top_k = 0;
  /// Keep x + delta in [0,1].
  bool clip = false;
  std::int64_t batch_size = 128;
  /// analyse_upi's random starts, noise, shuffles, baselines and SmoothGrad draw from one generator of this
  /// seed alone (core/random.h); the functions below it take that generator.
  std::uint64_t seed = 0;

  RL_SETTER(attribution)
  RL_SETTER(eps)
  RL_SETTER(method)
  RL_SETTER(passes)
  RL_SETTER(step_fraction)
  RL_SETTER(start_fraction)
  RL_SETTER(pca_noise)
  RL_SETTER(power_iterations)
  RL_SETTER(per_image_steps)
  RL_SETTER(uap_passes)
  RL_SETTER(summary_eps)
  RL_SETTER(floor_eps)
  RL_SETTER(random_draws)
  RL_SETTER(surrogate_beta)
  RL_SETTER(top_k)
  RL_SETTER(clip)
  RL_SETTER(batch_size)
  RL_SETTER(seed)

  void check() const;
  /// k for images of H×W pixels.
  std::int64_t resolved_top_k(std::int64_t height, std::int64_t width) const;
  nlohmann::json to_json() const;
};

/// Interpretation maps N×H×W (each sums to 1) of the images for their labels.
at::Tensor interpretation_maps(Model& model, const at::Tensor& images, const at::Tensor& labels,
                               const AttributionOptions& options, const at::Generator& generator = {});

/// The per-sample gradients g_i of D(I(x̃_i), I(x_i)) at x̃_i, batched: one
/// backward pass per batch (samples do not interact in evaluation mode).
at::Tensor map_attack_gradients(Model& model, const at::Tensor& perturbed, const at::Tensor& clean_maps,
                                const at::Tensor& labels, const AttributionOptions& attribution,
                                const at::Generator& generator = {});

/// UPI-Grad's perturbation for radius eps (C×H×W).
at::Tensor upi_grad(Model& model, const Dataset& attack, double eps, const UpiOptions& options,
                    const at::Generator& generator, const ProgressCallback& progress = {});
/// UPI-PCA's direction (C×H×W, unit norm): it does not depend on eps.
at::Tensor upi_pca_direction(Model& model, const Dataset& attack, const UpiOptions& options,
                             const at::Generator& generator, const ProgressCallback& progress = {});
/// ±eps·direction, the sign with the larger mean dissimilarity on `attack`.
at::Tensor upi_pca(Model& model, const Dataset& attack, const at::Tensor& direction, double eps,
                   const UpiOptions& options, const at::Generator& generator = {});
/// Per-image map attack (N×C×H×W, each of norm ≤ eps): the baseline UPIs are measured against.
at::Tensor per_image_map_attack(Model& model, const Dataset& images, double eps, const UpiOptions& options,
                                const at::Generator& generator);

struct UpiMetrics {
  double dissimilarity = 0;  ///< mean relative L2 of the maps
  /// The same over the images whose prediction did not change (NaN when every prediction changed).
  double dissimilarity_unchanged = 0;
  double topk_intersection = 0;  ///< mean share of the top-k pixels kept
  double spearman = 0;           ///< mean rank correlation of the maps
  double fooling_rate = 0;       ///< share of images whose prediction changes
  /// Random baselines: the number of draws averaged, and the standard deviation over them (0 for one draw).
  std::int64_t draws = 1;
  double dissimilarity_spread = 0, dissimilarity_unchanged_spread = 0, fooling_rate_spread = 0;
  nlohmann::json to_json() const;
};

/// The metrics of a perturbation (C×H×W universal or N×C×H×W per image) on `test`.
UpiMetrics evaluate_perturbation(Model& model, const Dataset& test, const at::Tensor& delta, const UpiOptions& options,
                                 const at::Generator& generator = {});

/// The mean of each metric over draws (dissimilarity_unchanged over the draws where it is defined) and the
/// standard deviation (n − 1) of the three that the spread reports.
UpiMetrics average_draws(const std::vector<UpiMetrics>& draws);

/// Random noise of L2 norm eps on `test`, averaged over options.random_draws draws from `generator`:
/// one universal C×H×W perturbation per draw, or one per image. `first` (optional) receives the first
/// universal draw.
UpiMetrics random_baseline(Model& model, const Dataset& test, double eps, bool universal, const UpiOptions& options,
                           const at::Generator& generator, at::Tensor* first = nullptr);

/// The summary radius: options.summary_eps when set, else the median of the minimal perturbations that the
/// attack ensemble finds on `correct` (correctly classified images); `source` says which.
double resolve_summary_eps(Model& model, const Dataset& correct, const UpiOptions& options, std::string& source,
                           const ProgressCallback& progress = {});

struct UpiResult {
  std::int64_t attack_images = 0, test_images = 0;  ///< correctly classified, used
  std::int64_t top_k = 0;
  /// The radii measured, ascending: the options' and the summary's.
  std::vector<double> eps;
  /// Per eps: metrics by perturbation name (upi-grad, upi-pca, classification-uap,
  /// universal-random, per-image-random, per-image-attack).
  std::vector<std::map<std::string, UpiMetrics>> metrics;
  /// Per eps: the universal perturbations (C×H×W) by name (universal-random: its first draw).
  std::vector<std::map<std::string, at::Tensor>> perturbations;
  /// The summary: its radius, how it was chosen, its index in eps, and the method it reads
  /// (upi-grad, or upi-pca when only that ran).
  double summary_eps = 0;
  std::string summary_eps_source;
  std::size_t summary_index = 0;
  std::string summary_method;
  /// The random baselines at options.floor_eps.
  double floor_eps = 0;
  std::map<std::string, UpiMetrics> floor;
  nlohmann::json to_json() const;
};

/// Runs the chosen methods and the baselines for every eps and the summary
/// radius, and the floor: attack on the correctly classified images of
/// `attack`, metrics on those of `test`.
UpiResult analyse_upi(Model& model, const Dataset& attack, const Dataset& test, const UpiOptions& options,
                      const ProgressCallback& progress = {});

}  // namespace robustlens
