#include "robustlens/analyses/alignment.h"

#include "robustlens/analyses/statistics.h"
#include "robustlens/core/distributed.h"
#include "robustlens/core/error.h"
#include "robustlens/explain/map_metrics.h"

#include <torch/autograd.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace robustlens {

std::string alignment_pairing_name(AlignmentPairing pairing) {
  switch (pairing) {
    case AlignmentPairing::conditional:
      return "conditional";
    case AlignmentPairing::bayes:
      return "bayes";
    case AlignmentPairing::summed_logits:
      return "summed-logits";
  }
  return "";
}

AlignmentPairing parse_alignment_pairing(const std::string& name) {
  for (const AlignmentPairing pairing :
       {AlignmentPairing::conditional, AlignmentPairing::bayes, AlignmentPairing::summed_logits}) {
    if (alignment_pairing_name(pairing) == name) return pairing;
  }
  RL_CHECK(false, "alignment pairing must be conditional, bayes or summed-logits, got '", name, "'");
  return AlignmentPairing::conditional;
}

std::string alignment_pairing_description(AlignmentPairing pairing) {
  switch (pairing) {
    case AlignmentPairing::conditional:
      return "grad of log softmax(f(x))_y vs the class-conditional score s(x, y)";
    case AlignmentPairing::bayes:
      return "grad of log softmax(f(x))_y vs s(x, y) - s(x), the Bayes classifier's gradient";
    case AlignmentPairing::summed_logits:
      return "grad of the summed logits vs the unconditional score s(x) (the reference's CIFAR script; its direction "
             "is "
             "left where initialisation put it, so it does not measure alignment)";
  }
  return "";
}

bool pairing_needs_class_scores(AlignmentPairing pairing) { return pairing != AlignmentPairing::summed_logits; }
bool pairing_needs_unconditional_scores(AlignmentPairing pairing) { return pairing != AlignmentPairing::conditional; }

void AlignmentOptions::check() const {
  RL_CHECK(batch_size >= 1, "alignment: batch size must be >= 1, got ", batch_size);
  RL_CHECK(!sigmas.empty(), "alignment: at least one noise level sigma is needed");
  for (std::size_t i = 0; i < sigmas.size(); ++i) {
    RL_CHECK(std::isfinite(sigmas[i]) && sigmas[i] > 0, "alignment: noise levels must be finite and > 0, got ",
             sigmas[i]);
    for (std::size_t j = 0; j < i; ++j)
      RL_CHECK(sigmas[j] != sigmas[i], "alignment: noise level ", sigmas[i], " given twice");
  }
  RL_CHECK(std::find(sigmas.begin(), sigmas.end(), summary_sigma) != sigmas.end(),
           "alignment: the summary noise level ", summary_sigma, " is not one of the noise levels ",
           nlohmann::json(sigmas).dump());
}

nlohmann::json AlignmentOptions::to_json() const {
  return {{"pairing", alignment_pairing_name(pairing)},
          {"pairing_description", alignment_pairing_description(pairing)},
          {"label", pairing == AlignmentPairing::summed_logits ? "none"
                    : predicted_label                          ? "predicted"
                                                               : "true"},
          {"sigmas", sigmas},
          {"summary_sigma", summary_sigma},
          {"batch_size", batch_size},
          {"metrics", {"cosine similarity", "SSIM of max-abs-normalised maps (Gaussian window 11, sigma 1.5)"}}};
}

std::pair<at::Tensor, at::Tensor> alignment_gradient(Model& model, const at::Tensor& images, const at::Tensor& labels,
                                                     AlignmentPairing pairing) {
  const at::Tensor x = images.detach().requires_grad_(true);
  const at::Tensor logits = model.forward(x);
  check_logits(logits, x.size(0), "the model");
  const at::Tensor y = labels.defined() ? labels.to(logits.device(), at::kLong) : logits.argmax(1).detach();
  // Rows do not interact, so the gradient of the sum is each row's own gradient.
  const at::Tensor objective = pairing == AlignmentPairing::summed_logits
                                   ? logits.sum()
                                   : at::log_softmax(logits.to(at::kDouble), 1).gather(1, y.view({-1, 1})).sum();
  return {torch::autograd::grad({objective}, {x})[0].detach(), y};
}

at::Tensor paired_score(const ScoreFunction& score, const at::Tensor& images, const at::Tensor& labels,
                        AlignmentPairing pairing, double sigma) {
  const auto checked = [&](const at::Tensor& s) {
    RL_CHECK(s.sizes() == images.sizes(), "the score function returned ", s.sizes(), " for images ", images.sizes());
    return s.to(images.device(), at::kDouble);
  };
  switch (pairing) {
    case AlignmentPairing::conditional:
      return checked(score(images, labels, sigma));
    case AlignmentPairing::bayes:
      return checked(score(images, labels, sigma)) - checked(score(images, {}, sigma));
    case AlignmentPairing::summed_logits:
      return checked(score(images, {}, sigma));
  }
  return {};
}

nlohmann::json AlignmentAtSigma::to_json(bool per_image) const {
  nlohmann::json classes = nlohmann::json::array();
  for (const double v : class_mean_cosine) classes.push_back(std::isfinite(v) ? nlohmann::json(v) : nlohmann::json());
  nlohmann::json json = {{"sigma", sigma},
                         {"mean_cosine", mean_cosine},
                         {"cosine_standard_error", cosine_standard_error},
                         {"mean_ssim", mean_ssim},
                         {"ssim_standard_error", ssim_standard_error},
                         {"class_mean_cosine", classes}};
  if (per_image) {
    json["cosine_per_image"] =
        std::vector<double>(cosine.data_ptr<double>(), cosine.data_ptr<double>() + cosine.numel());
    json["ssim_per_image"] = std::vector<double>(ssim.data_ptr<double>(), ssim.data_ptr<double>() + ssim.numel());
  }
  return json;
}

const AlignmentAtSigma& AlignmentResult::summary() const {
  for (const AlignmentAtSigma& entry : per_sigma) {
    if (entry.sigma == summary_sigma) return entry;
  }
  RL_CHECK(false, "alignment result has no entry at its summary noise level ", summary_sigma);
  return per_sigma.front();
}

nlohmann::json AlignmentResult::to_json(bool per_image) const {
  const AlignmentAtSigma& chosen = summary();
  nlohmann::json levels = nlohmann::json::array();
  for (const AlignmentAtSigma& entry : per_sigma) levels.push_back(entry.to_json(per_image));
  return {{"pairing", alignment_pairing_name(pairing)},
          {"summary_sigma", summary_sigma},
          {"mean_cosine", chosen.mean_cosine},
          {"cosine_standard_error", chosen.cosine_standard_error},
          {"mean_ssim", chosen.mean_ssim},
          {"ssim_standard_error", chosen.ssim_standard_error},
          {"images", images},
          {"per_sigma", levels}};
}

AlignmentResult analyse_alignment(Model& model, const Dataset& data, const ScoreFunction& score,
                                  const AlignmentOptions& options, const ProgressCallback& progress) {
  options.check();
  RL_CHECK(data.size() > 0, "alignment: dataset '", data.name, "' is empty");
  const std::size_t levels = options.sigmas.size();
  // Each image's numbers are its own: a data-parallel run splits every batch (core/distributed.h). Per batch: the
  // labels used, then each sigma's cosines, then each sigma's SSIMs.
  const std::vector<at::Tensor> per_image = distributed::gather_batch_shares(
      data.size(), options.batch_size,
      [&](std::int64_t first, std::int64_t last) {
        const at::Tensor images = data.images.slice(0, first, last).to(model.device());
        const at::Tensor labels = options.predicted_label ? at::Tensor() : data.labels.slice(0, first, last);
        const auto [gradient, y] = alignment_gradient(model, images, labels, options.pairing);
        const at::Tensor gradient64 = gradient.to(at::kDouble);
        const at::Tensor normalised_gradient = max_abs_normalise(gradient);
        std::vector<at::Tensor> cosines, ssims;
        for (std::size_t s = 0; s < levels; ++s) {
          const at::Tensor data_score =
              paired_score(score, images, y, options.pairing, options.sigmas[s]).to(gradient.device());
          cosines.push_back(map_cosine(gradient64, data_score).cpu());
          ssims.push_back(
              structural_similarity(normalised_gradient, max_abs_normalise(data_score.to(gradient.scalar_type())), 2.0)
                  .to(at::kDouble)
                  .cpu());
        }
        std::vector<at::Tensor> columns{y.cpu()};
        columns.insert(columns.end(), cosines.begin(), cosines.end());
        columns.insert(columns.end(), ssims.begin(), ssims.end());
        return columns;
      },
      progress, "alignment");
  const at::Tensor labels = per_image[0];
  AlignmentResult result;
  result.pairing = options.pairing;
  result.summary_sigma = options.summary_sigma;
  result.images = data.size();
  for (std::size_t s = 0; s < levels; ++s) {
    AlignmentAtSigma entry;
    entry.sigma = options.sigmas[s];
    entry.cosine = per_image[1 + s];
    entry.ssim = per_image[1 + levels + s];
    std::tie(entry.mean_cosine, entry.cosine_standard_error) = mean_and_standard_error(entry.cosine);
    std::tie(entry.mean_ssim, entry.ssim_standard_error) = mean_and_standard_error(entry.ssim);
    for (std::int64_t k = 0; k < data.num_classes(); ++k) {
      const at::Tensor members = entry.cosine.masked_select(labels == k);
      entry.class_mean_cosine.push_back(members.numel() > 0 ? members.mean().item<double>()
                                                            : std::numeric_limits<double>::quiet_NaN());
    }
    result.per_sigma.push_back(entry);
  }
  return result;
}

}  // namespace robustlens
