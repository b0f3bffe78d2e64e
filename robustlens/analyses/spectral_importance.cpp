#include "robustlens/analyses/spectral_importance.h"

#include "robustlens/core/error.h"

#include <cmath>

namespace robustlens {

std::vector<double> shapley_values(const std::vector<double>& v, std::int64_t m) {
  RL_CHECK(m >= 1 && m <= 20 && v.size() == (std::size_t{1} << m), "Shapley values: need 2^", m,
           " coalition values, got ", v.size());
  // weight[s] = s!(m−s−1)!/m! = 1/(m·C(m−1, s))
  std::vector<double> weight(static_cast<std::size_t>(m));
  for (std::int64_t s = 0; s < m; ++s) {
    double binomial = 1;
    for (std::int64_t j = 1; j <= s; ++j) binomial = binomial * static_cast<double>(m - 1 - s + j) / static_cast<double>(j);
    weight[s] = 1.0 / (static_cast<double>(m) * binomial);
  }
  std::vector<double> phi(static_cast<std::size_t>(m), 0.0);
  for (std::uint32_t coalition = 0; coalition < v.size(); ++coalition) {
    const int size = __builtin_popcount(coalition);
    for (std::int64_t i = 0; i < m; ++i) {
      if ((coalition >> i) & 1u) continue;
      phi[i] += weight[size] * (v[coalition | (1u << i)] - v[coalition]);
    }
  }
  return phi;
}

std::vector<double> importance_distribution(const std::vector<double>& phi) {
  const double low = *std::min_element(phi.begin(), phi.end());
  double total = 0;
  for (const double p : phi) total += p - low;
  std::vector<double> psi;
  for (const double p : phi) psi.push_back(total > 0 ? (p - low) / total : 1.0 / static_cast<double>(phi.size()));
  return psi;
}

double spectral_score_baseline(std::int64_t bands, double beta) {
  double l1 = 0, l2 = 0;
  for (std::int64_t k = 0; k < bands; ++k) {
    l1 += std::pow(beta, k);
    l2 += std::pow(beta, 2 * k);
  }
  return l1 / (static_cast<double>(bands) * std::sqrt(l2));
}

double spectral_robustness_score(const std::vector<double>& psi, double beta) {
  const auto m = static_cast<std::int64_t>(psi.size());
  double l2 = 0, inner = 0;
  for (std::int64_t k = 0; k < m; ++k) l2 += std::pow(beta, 2 * k);
  for (std::int64_t k = 0; k < m; ++k) inner += std::pow(beta, k) / std::sqrt(l2) * psi[k];
  const double eta = spectral_score_baseline(m, beta);
  return std::abs(inner - eta) / std::abs(1 - eta);
}

void SpectralImportanceOptions::check() const {
  RL_CHECK(bands >= 2 && bands <= 12, "--bands must lie in [2, 12] (2^M coalitions are evaluated), got ", bands);
  RL_CHECK(beta > 0 && beta < 1, "--beta must lie in (0,1), got ", beta);
  parse_coalition_fill(fill);
  parse_coalition_output(output);
  RL_CHECK(batch_size >= 1, "--batch-size must be >= 1, got ", batch_size);
}

nlohmann::json SpectralImportanceOptions::to_json() const {
  return {{"bands", bands},       {"beta", beta},         {"fill", fill},
          {"output", output},     {"circular", circular}, {"batch_size", batch_size}};
}

nlohmann::json SpectralImportanceResult::to_json() const {
  return {{"phi", phi}, {"psi", psi}, {"score", score}, {"eta", eta},
          {"v_empty", coalition_values.front()}, {"v_full", coalition_values.back()},
          {"coalition_values", coalition_values}};
}

SpectralImportanceResult analyse_spectral_importance(Model& model, const Dataset& dataset,
                                                     const SpectralImportanceOptions& options,
                                                     const ProgressCallback& progress) {
  options.check();
  model.set_training(false);
  at::NoGradGuard no_grad;
  const std::vector<std::int64_t> shape = dataset.image_shape();
  const at::Tensor masks = fourier_band_masks(shape[1], shape[2], options.bands, options.circular);
  const at::Tensor images = dataset.images.to(model.device());
  const at::Tensor labels = dataset.labels.to(model.device());
  const at::Tensor bands = band_images(images, masks);  // the only FFTs of the analysis
  const CoalitionFill fill = parse_coalition_fill(options.fill);
  const CoalitionOutput output = parse_coalition_output(options.output);

  const std::uint32_t coalitions = 1u << options.bands;
  SpectralImportanceResult result;
  for (std::uint32_t members = 0; members < coalitions; ++members) {
    const at::Tensor x = coalition_images(bands, masks, members, fill, output);
    double total = 0;
    for (std::int64_t start = 0; start < x.size(0); start += options.batch_size) {
      const std::int64_t end = std::min(start + options.batch_size, x.size(0));
      const at::Tensor log_p = model.forward(x.slice(0, start, end)).log_softmax(1);
      total += log_p.gather(1, labels.slice(0, start, end).unsqueeze(1)).sum().item<double>();
    }
    result.coalition_values.push_back(total / static_cast<double>(x.size(0)));
    report(progress, {"coalitions", members + 1, coalitions, ""});
  }
  result.phi = shapley_values(result.coalition_values, options.bands);
  result.psi = importance_distribution(result.phi);
  result.eta = spectral_score_baseline(options.bands, options.beta);
  result.score = spectral_robustness_score(result.psi, options.beta);
  return result;
}

}  // namespace robustlens
