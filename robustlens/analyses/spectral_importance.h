// Spectral importance (I-ASIDE, Luo et al., TMLR 2024): exact Shapley values of
// Fourier bands for the model's predictive power, the spectral importance
// distribution psi and the spectral robustness score.
//
// v(S) = mean over the K evaluated images of log softmax(f(x_S))[y], every
// coalition S of the M bands scored on the same images (the reference draws
// a new subset per coalition, which only adds variance). Band images are
// computed once per image; coalition images are sums of them.
#pragma once

#include "robustlens/core/model.h"
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
/// |⟨b/‖b‖₂, psi⟩ − eta| / |1 − eta|.
double spectral_robustness_score(const std::vector<double>& psi, double beta);

struct SpectralImportanceOptions {
  std::int64_t bands = 8;
  double beta = 0.75;
  /// "donor" (the reference default), "zero" or "noise".
  std::string fill = "donor";
  /// "reference" (modulus + min–max over the evaluated images) or "real" (real part, clipped).
  std::string output = "reference";
  bool circular = false;
  std::int64_t batch_size = 512;

  SpectralImportanceOptions& set_bands(std::int64_t v) { bands = v; return *this; }
  SpectralImportanceOptions& set_beta(double v) { beta = v; return *this; }
  SpectralImportanceOptions& set_fill(std::string v) { fill = std::move(v); return *this; }
  SpectralImportanceOptions& set_output(std::string v) { output = std::move(v); return *this; }
  SpectralImportanceOptions& set_circular(bool v) { circular = v; return *this; }
  SpectralImportanceOptions& set_batch_size(std::int64_t v) { batch_size = v; return *this; }

  void check() const;
  nlohmann::json to_json() const;
};

struct SpectralImportanceResult {
  std::vector<double> coalition_values;  ///< v(S) by bit mask, 2^M entries
  std::vector<double> phi, psi;
  double score = 0, eta = 0;
  nlohmann::json to_json() const;
};

SpectralImportanceResult analyse_spectral_importance(Model& model, const Dataset& dataset,
                                                     const SpectralImportanceOptions& options,
                                                     const ProgressCallback& progress = {});

}  // namespace robustlens
