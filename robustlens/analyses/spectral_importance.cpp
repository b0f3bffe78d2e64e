#include "robustlens/analyses/spectral_importance.h"

#include "robustlens/core/distributed.h"

#include "robustlens/attacks/fgsm.h"
#include "robustlens/core/batches.h"
#include "robustlens/core/error.h"
#include "robustlens/core/random.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace robustlens {

std::vector<double> shapley_values(const std::vector<double>& v, std::int64_t m) {
  RL_CHECK(m >= 1 && m <= 20 && v.size() == (std::size_t{1} << m), "Shapley values: need 2^", m,
           " coalition values, got ", v.size());
  // weight[s] = s!(m−s−1)!/m! = 1/(m·C(m−1, s))
  std::vector<double> weight(static_cast<std::size_t>(m));
  for (std::int64_t s = 0; s < m; ++s) {
    double binomial = 1;
    for (std::int64_t j = 1; j <= s; ++j)
      binomial = binomial * static_cast<double>(m - 1 - s + j) / static_cast<double>(j);
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

double signed_spectral_score(const std::vector<double>& psi, double beta) {
  const auto m = static_cast<std::int64_t>(psi.size());
  double l2 = 0, inner = 0;
  for (std::int64_t k = 0; k < m; ++k) l2 += std::pow(beta, 2 * k);
  for (std::int64_t k = 0; k < m; ++k) inner += std::pow(beta, k) / std::sqrt(l2) * psi[k];
  const double eta = spectral_score_baseline(m, beta);
  return (inner - eta) / (1 - eta);
}

double spectral_robustness_score(const std::vector<double>& psi, double beta) {
  return std::abs(signed_spectral_score(psi, beta));
}

void SpectralImportanceOptions::check() const {
  RL_CHECK(bands >= 2 && bands <= 12,
           "SpectralImportanceOptions.bands must lie in [2, 12] (2^M coalitions are evaluated), got ", bands);
  RL_CHECK(beta > 0 && beta < 1, "SpectralImportanceOptions.beta must lie in (0,1), got ", beta);
  parse_coalition_fill(fill);
  parse_coalition_output(output);
  RL_CHECK(batch_size >= 1, "SpectralImportanceOptions.batch_size must be >= 1, got ", batch_size);
  RL_CHECK(example_images >= 0, "example images must be >= 0, got ", example_images);
  for (const std::uint32_t members : example_coalitions) {
    RL_CHECK(members < (1u << bands), "example coalition ", members, " is not a subset of ", bands, " bands");
  }
}

nlohmann::json SpectralImportanceOptions::to_json() const {
  nlohmann::json json = {{"bands", bands},          {"beta", beta},         {"fill", fill},
                         {"output", output},        {"circular", circular}, {"per_class", per_class},
                         {"batch_size", batch_size}};
  if (fill == "noise") json["seed"] = seed;
  return json;
}

SpectralImportance SpectralImportance::from_values(std::vector<double> coalition_values, std::int64_t bands,
                                                   double beta) {
  SpectralImportance importance;
  importance.coalition_values = std::move(coalition_values);
  importance.phi = shapley_values(importance.coalition_values, bands);
  importance.psi = importance_distribution(importance.phi);
  importance.signed_score = signed_spectral_score(importance.psi, beta);
  importance.score = std::abs(importance.signed_score);
  return importance;
}

nlohmann::json SpectralImportance::to_json() const {
  return {{"phi", phi},
          {"psi", psi},
          {"score", score},
          {"signed_score", signed_score},
          {"v_empty", coalition_values.front()},
          {"v_full", coalition_values.back()},
          {"coalition_values", coalition_values}};
}

nlohmann::json SpectralImportanceResult::to_json() const {
  nlohmann::json json = overall.to_json();
  json["eta"] = eta;
  if (!per_class.empty()) {
    json["per_class"] = nlohmann::json::array();
    for (const ClassSpectralImportance& c : per_class) {
      nlohmann::json entry = c.importance.to_json();
      entry.erase("coalition_values");
      entry.update({{"label", c.label}, {"name", c.name}, {"images", c.images}});
      json["per_class"].push_back(entry);
    }
  }
  return json;
}

SpectralImportanceResult analyse_spectral_importance(Model& model, const Dataset& dataset,
                                                     const SpectralImportanceOptions& options,
                                                     const ProgressCallback& progress) {
  options.check();
  dataset.validate();
  model.set_training(false);
  at::NoGradGuard no_grad;
  const std::vector<std::int64_t> shape = dataset.image_shape();
  const at::Tensor masks = fourier_band_masks(shape[1], shape[2], options.bands, options.circular);
  const at::Tensor labels = dataset.labels.to(model.device());
  // The only FFTs of the analysis: band images (and noise bands) once per image.
  const at::Tensor bands = band_images(dataset.images.to(model.device()), masks);
  CoalitionEnumerator coalitions(
      bands, fill_band_images(bands, masks, parse_coalition_fill(options.fill), make_generator(options.seed)),
      parse_coalition_output(options.output));
  const std::int64_t images = dataset.size();
  const auto classes = static_cast<std::int64_t>(dataset.class_names.size());

  // A data-parallel run splits the images; their sums per coalition and class add up (core/distributed.h).
  const auto [first, last] = distributed::row_share(images);
  const at::Tensor share_labels = dataset.labels.slice(0, first, last);
  // Coalitions are stacked so that every forward pass holds about batch_size images.
  const std::int64_t coalition_count = std::int64_t{1} << options.bands;
  const std::int64_t group = std::max<std::int64_t>(1, options.batch_size / std::max<std::int64_t>(last - first, 1));
  at::Tensor class_sums = at::zeros({coalition_count, classes}, at::kDouble);  // Σ log p(y|x_S) per class, by mask
  std::vector<at::Tensor> examples(options.example_coalitions.size());
  for (std::int64_t done = 0; done < coalition_count;) {
    std::vector<at::Tensor> stacked;
    std::vector<std::int64_t> members;
    for (; done < coalition_count && static_cast<std::int64_t>(members.size()) < group; ++done, coalitions.advance()) {
      members.push_back(coalitions.members());
      const at::Tensor coalition_images = coalitions.images();
      stacked.push_back(coalition_images.slice(0, first, last));
      for (std::size_t e = 0; e < options.example_coalitions.size(); ++e) {
        if (options.example_coalitions[e] == members.back())
          examples[e] = coalition_images.slice(0, 0, options.example_images).to(at::kCPU);
      }
    }
    report(progress, {"coalitions", done, coalition_count, ""});
    if (last == first) continue;  // a rank without images (fewer images than ranks) only follows the enumeration
    const at::Tensor x = at::cat(stacked);
    const at::Tensor y = labels.slice(0, first, last).repeat({static_cast<std::int64_t>(members.size())});
    std::vector<at::Tensor> log_p;
    for (const auto [start, end] : batches(x.size(0), options.batch_size)) {
      log_p.push_back(
          model.forward(x.slice(0, start, end)).log_softmax(1).gather(1, y.slice(0, start, end).unsqueeze(1)));
    }
    const at::Tensor per_image =
        at::cat(log_p).view({static_cast<std::int64_t>(members.size()), last - first}).to(at::kCPU).to(at::kDouble);
    class_sums.index_copy_(0, at::tensor(members, at::kLong),
                           at::zeros({static_cast<std::int64_t>(members.size()), classes}, at::kDouble)
                               .index_add_(1, share_labels, per_image));
  }
  distributed::all_reduce_sum(class_sums);

  const auto values = [&](const at::Tensor& sums, double count) {
    const at::Tensor mean = (sums / count).contiguous();
    return std::vector<double>(mean.data_ptr<double>(), mean.data_ptr<double>() + coalition_count);
  };
  SpectralImportanceResult result;
  result.overall = SpectralImportance::from_values(values(class_sums.sum(1), static_cast<double>(images)),
                                                   options.bands, options.beta);
  result.eta = spectral_score_baseline(options.bands, options.beta);
  if (!examples.empty() && options.example_images > 0) result.examples = at::stack(examples, 1);
  if (options.per_class) {
    const at::Tensor counts = at::bincount(dataset.labels, {}, classes);
    for (std::int64_t c = 0; c < classes; ++c) {
      const std::int64_t count = counts[c].item<std::int64_t>();
      if (count == 0) continue;
      result.per_class.push_back(
          {c, dataset.class_names[c], count,
           SpectralImportance::from_values(values(class_sums.select(1, c), static_cast<double>(count)), options.bands,
                                           options.beta)});
    }
  }
  return result;
}

std::vector<double> spectral_snr_db(const at::Tensor& images, const at::Tensor& perturbations, const at::Tensor& masks,
                                    std::vector<std::int64_t>* excluded) {
  RL_CHECK(images.sizes() == perturbations.sizes(), "spectral SNR: images ", images.sizes(), " and perturbations ",
           perturbations.sizes(), " differ in shape");
  const at::Tensor signal = band_energies(images, masks), noise = band_energies(perturbations, masks);  // N×M
  const at::Tensor usable = signal.gt(0).logical_and(noise.gt(0));
  const at::Tensor db = at::where(usable, 10 * (signal / noise).log10(), at::zeros_like(signal));
  const at::Tensor counts = usable.sum(0);
  const at::Tensor mean = (db.sum(0) / counts.to(at::kDouble)).to(at::kCPU).contiguous();  // NaN where no image counts
  if (excluded != nullptr) {
    const at::Tensor left_out = (images.size(0) - counts).to(at::kCPU).to(at::kLong).contiguous();
    excluded->assign(left_out.data_ptr<std::int64_t>(), left_out.data_ptr<std::int64_t>() + left_out.numel());
  }
  return {mean.data_ptr<double>(), mean.data_ptr<double>() + mean.numel()};
}

SnrPerturbation SnrPerturbation::parse(const std::string& text) {
  const auto colon = text.find(':');
  const std::string kind = text.substr(0, colon);
  SnrPerturbation p;
  char* end = nullptr;
  if (colon != std::string::npos) p.size = std::strtod(text.c_str() + colon + 1, &end);
  const bool number = colon != std::string::npos && end != text.c_str() + colon + 1 && *end == '\0' &&
                      std::isfinite(p.size) && p.size > 0;
  const bool known =
      kind == "gaussian" || kind == "fgsm-l2" || kind == "fgsm-linf" || kind == "pgd-l2" || kind == "pgd-linf";
  RL_CHECK(
      known && number,
      "SNR perturbation spec: expected gaussian:SIGMA, fgsm-l2:EPS, fgsm-linf:EPS, pgd-l2:EPS or pgd-linf:EPS with a "
      "positive number, got '",
      text, "'");
  p.kind = kind.substr(0, kind.find('-'));
  if (p.kind != "gaussian") p.norm = parse_norm(kind.substr(kind.find('-') + 1));
  return p;
}

std::string SnrPerturbation::name() const {
  std::ostringstream text;
  text << kind << (kind == "gaussian" ? "" : "-" + to_string(norm)) << ':' << size;
  return text.str();
}

void SpectralSnrOptions::check() const {
  RL_CHECK(bands >= 1, "SpectralSnrOptions.bands must be >= 1, got ", bands);
  RL_CHECK(pgd_steps >= 1, "SpectralSnrOptions.pgd_steps must be >= 1, got ", pgd_steps);
  RL_CHECK(batch_size >= 1, "SpectralSnrOptions.batch_size must be >= 1, got ", batch_size);
}

nlohmann::json SpectralSnrOptions::to_json() const {
  std::vector<std::string> names;
  for (const SnrPerturbation& p : perturbations) names.push_back(p.name());
  return {{"perturbations", names}, {"bands", bands},           {"circular", circular},
          {"pgd_steps", pgd_steps}, {"batch_size", batch_size}, {"seed", seed}};
}

nlohmann::json SpectralSnrCurve::to_json() const {
  nlohmann::json db = nlohmann::json::array();
  for (const double v : snr_db) db.push_back(std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr));
  return {{"perturbation", perturbation}, {"snr_db", db}, {"excluded", excluded}, {"mean_l2", mean_l2}};
}

std::vector<SpectralSnrCurve> analyse_spectral_snr(Model& model, const Dataset& dataset,
                                                   const SpectralSnrOptions& options,
                                                   const ProgressCallback& progress) {
  options.check();
  dataset.validate();
  model.set_training(false);
  const std::vector<std::int64_t> shape = dataset.image_shape();
  const at::Tensor masks = fourier_band_masks(shape[1], shape[2], options.bands, options.circular);
  const at::Device device = model.device();
  const std::int64_t n = dataset.size();
  std::vector<SpectralSnrCurve> curves;
  const at::Generator generator = make_generator(options.seed);
  for (const SnrPerturbation& p : options.perturbations) {
    const PgdOptions pgd = PgdOptions().set_norm(p.norm).set_eps(p.size).set_steps(options.pgd_steps);
    // A data-parallel run splits each batch's rows; the random draws are the whole batch's (core/distributed.h).
    const at::Tensor delta = distributed::gather_batch_shares(
                                 n, options.batch_size,
                                 [&](std::int64_t first, std::int64_t last) {
                                   const at::Tensor x = dataset.images.slice(0, first, last).to(device);
                                   const at::Tensor y = dataset.labels.slice(0, first, last).to(device);
                                   at::Tensor perturbed;
                                   if (p.kind == "gaussian") {
                                     perturbed = x + p.size * random_normal(x.sizes(), generator, x.options());
                                   } else if (p.kind == "fgsm") {
                                     perturbed = fgsm_attack(model, x, y, p.norm, p.size);
                                   } else {
                                     perturbed = pgd_attack(model, x, y, pgd, generator);
                                   }
                                   return std::vector<at::Tensor>{(perturbed - x).to(at::kCPU)};
                                 },
                                 progress, "SNR " + p.name())
                                 .front();
    SpectralSnrCurve curve;
    curve.perturbation = p.name();
    curve.snr_db = spectral_snr_db(dataset.images, delta, masks, &curve.excluded);
    curve.mean_l2 = delta.flatten(1).norm(2, 1).mean().item<double>();
    curves.push_back(std::move(curve));
  }
  return curves;
}

}  // namespace robustlens
