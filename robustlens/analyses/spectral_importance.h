// Spectral importance (I-ASIDE, Luo et al., TMLR 2024): exact Shapley values of
// Fourier bands for the model's predictive power, the spectral importance
// distribution psi and the spectral robustness score; and the spectral SNR of
// perturbations (noise, FGSM, PGD) per band.
//
// v(S) = mean over the K evaluated images of log softmax(f(x_S))[y], every
// coalition S of the M bands scored on the same images (the reference draws
// a new subset per coalition, which only adds variance). Band images are
// computed once per image; coalition images are sums of them.
#pragma once

#include "robustlens/attacks/pgd.h"
#include "robustlens/core/model.h"
#include "robustlens/core/options.h"
#include "robustlens/core/progress.h"
#include "robustlens/data/dataset.h"
#include "robustlens/spectral/fourier_bands.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace robustlens {

/// Exact Shapley values of a game on m players given v for every coalition
/// (index = bit mask): phi_i = Σ_{S ⊆ N\{i}} |S|!(m−|S|−1)!/m! · (v(S ∪ {i}) − v(S)).
std::vector<double> shapley_values(const std::vector<double>& coalition_values, std::int64_t players);
/// psi_i = (phi_i − min phi) / Σ_k (phi_k − min phi); uniform when all phi are equal.
std::vector<double> importance_distribution(const std::vector<double>& phi);
/// eta = ‖b‖₁ / (M·‖b‖₂) with b_k = beta^k.
double spectral_score_baseline(std::int64_t bands, double beta);
/// (⟨b/‖b‖₂, psi⟩ − eta) / (1 − eta): positive when the predictive power leans to the low bands (0.52 with
/// all of it on the lowest of 8 bands, beta 0.75), 0 when it is spread evenly, negative when it leans to
/// the high bands (−0.30 with all of it on the highest).
double signed_spectral_score(const std::vector<double>& psi, double beta);
/// The paper's unsigned score, |signed_spectral_score|: mass on the high bands also scores above 0.
double spectral_robustness_score(const std::vector<double>& psi, double beta);

struct SpectralImportanceOptions {
  std::int64_t bands = 8;
  double beta = 0.75;
  /// "donor" (the reference default), "zero" or "noise".
  std::string fill = "donor";
  /// "reference" (modulus + min–max over the evaluated images) or "real" (real part, clipped).
  std::string output = "reference";
  bool circular = false;
  /// Also the Shapley values of each class's images alone.
  bool per_class = false;
  /// Images per forward pass; coalitions are stacked to fill it.
  std::int64_t batch_size = 512;
  /// Keep the coalition images of the first `example_images` images for these
  /// coalitions (bit masks), exactly as the model saw them.
  std::vector<std::uint32_t> example_coalitions;
  std::int64_t example_images = 0;
  /// The noise fill draws from a generator of this seed alone (core/random.h).
  std::uint64_t seed = 0;

  RL_SETTER(bands)
  RL_SETTER(beta)
  RL_SETTER(fill)
  RL_SETTER(output)
  RL_SETTER(circular)
  RL_SETTER(per_class)
  SpectralImportanceOptions& set_examples(std::vector<std::uint32_t> coalitions, std::int64_t images) {
    example_coalitions = std::move(coalitions);
    example_images = images;
    return *this;
  }
  RL_SETTER(batch_size)
  RL_SETTER(seed)

  void check() const;
  nlohmann::json to_json() const;
};

/// The game of one set of images: v(S) for every coalition and what follows from it.
struct SpectralImportance {
  std::vector<double> coalition_values;  ///< v(S) by bit mask, 2^M entries
  std::vector<double> phi, psi;
  double score = 0, signed_score = 0;
  /// phi, psi and the scores from the coalition values.
  static SpectralImportance from_values(std::vector<double> coalition_values, std::int64_t bands, double beta);
  nlohmann::json to_json() const;
};

struct ClassSpectralImportance {
  std::int64_t label = 0;
  std::string name;
  std::int64_t images = 0;
  SpectralImportance importance;
};

struct SpectralImportanceResult {
  SpectralImportance overall;
  double eta = 0;
  /// When per_class: one entry per class present among the images.
  std::vector<ClassSpectralImportance> per_class;
  /// example_images × example_coalitions × C×H×W, on the CPU (when asked for).
  at::Tensor examples;
  nlohmann::json to_json() const;
};

SpectralImportanceResult analyse_spectral_importance(Model& model, const Dataset& dataset,
                                                     const SpectralImportanceOptions& options,
                                                     const ProgressCallback& progress = {});

/// Per band, the mean over images of 20·log10(‖X_i‖/‖Δ_i‖), X and Δ the centred
/// spectra of image and perturbation restricted to band i (our definition: the
/// paper's formula is not public). Images with zero energy in a band (either
/// side) are left out of that band's mean and counted in `excluded`.
std::vector<double> spectral_snr_db(const at::Tensor& images, const at::Tensor& perturbations, const at::Tensor& masks,
                                    std::vector<std::int64_t>* excluded = nullptr);

/// A perturbation whose spectral SNR is measured: "gaussian:SIGMA" (i.i.d. noise,
/// not clipped), "fgsm-l2:EPS", "fgsm-linf:EPS", "pgd-l2:EPS", "pgd-linf:EPS"
/// (the attack's change to the clipped image).
struct SnrPerturbation {
  std::string kind;  ///< gaussian, fgsm or pgd
  Norm norm = Norm::l2;
  double size = 0;  ///< sigma or eps, [0,1] pixel units
  static SnrPerturbation parse(const std::string& text);
  std::string name() const;
};

struct SpectralSnrOptions {
  std::vector<SnrPerturbation> perturbations;
  std::int64_t bands = 8;
  bool circular = false;
  std::int64_t pgd_steps = 10;
  std::int64_t batch_size = 256;
  /// Gaussian noise and PGD's random starts draw from a generator of this seed alone (core/random.h).
  std::uint64_t seed = 0;

  RL_SETTER(perturbations)
  RL_SETTER(bands)
  RL_SETTER(circular)
  RL_SETTER(pgd_steps)
  RL_SETTER(batch_size)
  RL_SETTER(seed)

  void check() const;
  nlohmann::json to_json() const;
};

struct SpectralSnrCurve {
  std::string perturbation;
  std::vector<double> snr_db;          ///< per band
  std::vector<std::int64_t> excluded;  ///< per band, images left out of the mean
  double mean_l2 = 0;                  ///< mean ‖Δ‖₂ over the images
  nlohmann::json to_json() const;
};

/// The SNR curve of each perturbation on the dataset's images (the attacks use
/// the dataset's labels).
std::vector<SpectralSnrCurve> analyse_spectral_snr(Model& model, const Dataset& dataset,
                                                   const SpectralSnrOptions& options,
                                                   const ProgressCallback& progress = {});

}  // namespace robustlens
