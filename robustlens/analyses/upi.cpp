#include "robustlens/analyses/upi.h"

#include "robustlens/analyses/statistics.h"
#include "robustlens/attacks/minimal_perturbation.h"
#include "robustlens/attacks/pgd.h"
#include "robustlens/attacks/universal_perturbation.h"
#include "robustlens/core/batches.h"
#include "robustlens/core/error.h"
#include "robustlens/core/random.h"
#include "robustlens/explain/map_metrics.h"

#include <torch/autograd.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <memory>
#include <tuple>
#include <utility>

namespace robustlens {
namespace {

/// The model whose gradients drive an attack: the model itself, or its
/// softplus surrogate when asked for.
class AttackModel {
 public:
  AttackModel(Model& model, const UpiOptions& options) : model_(&model) {
    if (options.surrogate_beta <= 0) return;
    surrogate_ = model.softplus_surrogate(options.surrogate_beta);
    surrogate_->set_training(false);
    model_ = surrogate_.get();
  }
  Model& operator*() const { return *model_; }

 private:
  std::unique_ptr<Model> surrogate_;
  Model* model_;
};

/// Unit-norm rows (the flattened samples of a N×… tensor); zero rows stay zero.
at::Tensor unit_rows(const at::Tensor& t) {
  const at::Tensor norms = t.flatten(1).norm(2, 1).clamp_min(1e-30);
  return t / norms.view({-1, 1, 1, 1});
}

/// Random N×C×H×W perturbations of L2 norm `norm` each.
at::Tensor random_of_norm(const std::vector<std::int64_t>& shape, double norm, const at::Device& device,
                          const at::Generator& generator) {
  return unit_rows(random_normal(shape, generator)).mul(norm).to(device);
}

at::Tensor perturb(const at::Tensor& images, const at::Tensor& delta, bool clip) {
  const at::Tensor x = images + delta;
  return clip ? x.clamp(0, 1) : x;
}

/// The slice of a universal (C×H×W) or per-image (N×C×H×W) perturbation for samples [start, end).
at::Tensor delta_for(const at::Tensor& delta, std::int64_t start, std::int64_t end) {
  return delta.dim() == 3 ? delta.unsqueeze(0) : delta.slice(0, start, end);
}

}  // namespace

void UpiOptions::check() const {
  attribution.check();
  RL_CHECK(!eps.empty(), "UpiOptions.eps: need at least one radius");
  for (const double e : eps) RL_CHECK(std::isfinite(e) && e > 0, "UpiOptions.eps: radii must be > 0, got ", e);
  RL_CHECK(method == "grad" || method == "pca" || method == "both",
           "UpiOptions.method: expected grad, pca or both, got '", method, "'");
  RL_CHECK(passes >= 1, "UpiOptions.passes must be >= 1, got ", passes);
  RL_CHECK(step_fraction > 0, "UPI-Grad step fraction must be > 0, got ", step_fraction);
  RL_CHECK(start_fraction > 0 && start_fraction <= 1, "UPI-Grad start fraction must lie in (0, 1], got ",
           start_fraction);
  RL_CHECK(pca_noise > 0, "UPI-PCA noise must be > 0, got ", pca_noise);
  RL_CHECK(power_iterations >= 1, "power iterations must be >= 1, got ", power_iterations);
  RL_CHECK(per_image_steps >= 1, "per-image attack steps must be >= 1, got ", per_image_steps);
  RL_CHECK(uap_passes >= 0, "UpiOptions.uap_passes must be >= 0 (0 = no classification baseline), got ", uap_passes);
  RL_CHECK(std::isfinite(summary_eps) && summary_eps >= 0,
           "UpiOptions.summary_eps must be >= 0 (0 = the median minimal perturbation), got ", summary_eps);
  RL_CHECK(std::isfinite(floor_eps) && floor_eps > 0, "UpiOptions.floor_eps must be > 0, got ", floor_eps);
  RL_CHECK(random_draws >= 1, "UpiOptions.random_draws must be >= 1, got ", random_draws);
  RL_CHECK(surrogate_beta >= 0, "UpiOptions.surrogate_beta must be >= 0 (0 = off), got ", surrogate_beta);
  RL_CHECK(top_k >= 0, "UpiOptions.top_k must be >= 0 (0 = scaled with the image area), got ", top_k);
  RL_CHECK(batch_size >= 1, "UpiOptions.batch_size must be >= 1, got ", batch_size);
}

std::int64_t UpiOptions::resolved_top_k(std::int64_t height, std::int64_t width) const {
  const std::int64_t k =
      top_k > 0
          ? top_k
          : std::max<std::int64_t>(10, std::llround(1000.0 * static_cast<double>(height * width) / (224.0 * 224.0)));
  RL_CHECK(k <= height * width, "UpiOptions.top_k ", k, " exceeds the ", height * width, " pixels of a map");
  return k;
}

nlohmann::json UpiOptions::to_json() const {
  return {{"attribution", attribution.to_json()},
          {"eps", eps},
          {"method", method},
          {"passes", passes},
          {"step_fraction", step_fraction},
          {"step_schedule", "step_fraction·eps/sqrt(1+pass), along the normalised gradient"},
          {"start_fraction", start_fraction},
          {"pca_noise", pca_noise},
          {"power_iterations", power_iterations},
          {"per_image_steps", per_image_steps},
          {"uap_passes", uap_passes},
          {"summary_eps", summary_eps},
          {"floor_eps", floor_eps},
          {"random_draws", random_draws},
          {"surrogate_beta", surrogate_beta},
          {"top_k", top_k},
          {"clip", clip},
          {"batch_size", batch_size},
          {"seed", seed}};
}

at::Tensor interpretation_maps(Model& model, const at::Tensor& images, const at::Tensor& labels,
                               const AttributionOptions& options, const at::Generator& generator) {
  return normalise_maps(attribute(model, images, labels, options, generator));
}

at::Tensor map_attack_gradients(Model& model, const at::Tensor& perturbed, const at::Tensor& clean_maps,
                                const at::Tensor& labels, const AttributionOptions& attribution,
                                const at::Generator& generator) {
  const at::Tensor leaf = perturbed.detach().requires_grad_(true);
  const at::Tensor maps =
      interpretation_maps(model, leaf, labels, AttributionOptions(attribution).set_create_graph(true), generator);
  // Σ_i D_i: sample i's term depends on x̃_i only, so its gradient is g_i.
  return torch::autograd::grad({relative_l2(clean_maps, maps).sum()}, {leaf})[0].detach();
}

at::Tensor upi_grad(Model& model, const Dataset& attack, double eps, const UpiOptions& options,
                    const at::Generator& generator, const ProgressCallback& progress) {
  options.check();
  RL_CHECK(attack.size() >= 1, "UPI-Grad: the attack split is empty");
  model.set_training(false);
  const AttackModel attacker(model, options);
  const at::Device device = model.device();
  // Maps without create_graph come back detached (attribute() needs grad mode on).
  std::vector<at::Tensor> maps;
  for (const auto [start, end] : batches(attack.size(), options.batch_size)) {
    const at::Tensor x = attack.images.slice(0, start, end).to(device),
                     y = attack.labels.slice(0, start, end).to(device);
    maps.push_back(interpretation_maps(*attacker, x, y, options.attribution, generator));
  }
  const at::Tensor clean_maps = at::cat(maps);
  const std::vector<std::int64_t> shape = attack.image_shape();
  // A random start: the dissimilarity's gradient vanishes at delta = 0.
  at::Tensor delta = random_of_norm({1, shape[0], shape[1], shape[2]}, options.start_fraction * eps, device, generator);
  const AttributionOptions graph = AttributionOptions(options.attribution).set_create_graph(true);
  const at::Tensor images = attack.images.to(device), labels = attack.labels.to(device);
  for (std::int64_t pass = 0; pass < options.passes; ++pass) {
    const double step = options.step_fraction * eps / std::sqrt(1.0 + static_cast<double>(pass));
    const at::Tensor order = random_permutation(attack.size(), generator);
    for (const auto [start, end] : batches(attack.size(), options.batch_size)) {
      const at::Tensor batch = order.slice(0, start, end).to(device);
      const at::Tensor x = images.index_select(0, batch), y = labels.index_select(0, batch);
      const at::Tensor d = delta.detach().requires_grad_(true);
      const at::Tensor maps = interpretation_maps(*attacker, perturb(x, d, options.clip), y, graph, generator);
      const at::Tensor objective = relative_l2(clean_maps.index_select(0, batch), maps).mean();
      const at::Tensor gradient = torch::autograd::grad({objective}, {d})[0];
      const double norm = gradient.norm().item<double>();
      if (norm > 0) delta = project_to_ball(delta + step * gradient / norm, Norm::l2, eps);
    }
    report(progress, {"UPI-Grad passes", pass + 1, options.passes, ""});
  }
  return delta.squeeze(0).detach();
}

at::Tensor upi_pca_direction(Model& model, const Dataset& attack, const UpiOptions& options,
                             const at::Generator& generator, const ProgressCallback& progress) {
  options.check();
  RL_CHECK(attack.size() >= 1, "UPI-PCA: the attack split is empty");
  model.set_training(false);
  const AttackModel attacker(model, options);
  std::vector<at::Tensor> directions;
  for (const auto [start, end] : batches(attack.size(), options.batch_size)) {
    const at::Tensor x = attack.images.slice(0, start, end).to(model.device()),
                     y = attack.labels.slice(0, start, end).to(model.device());
    const at::Tensor clean_maps = interpretation_maps(*attacker, x, y, options.attribution, generator);
    const at::Tensor moved = x + random_of_norm(x.sizes().vec(), options.pca_noise, x.device(), generator);
    directions.push_back(
        unit_rows(map_attack_gradients(*attacker, moved, clean_maps, y, options.attribution, generator)).flatten(1));
    report(progress, {"UPI-PCA gradients", end, attack.size(), ""});
  }
  const std::vector<std::int64_t> shape = attack.image_shape();
  return top_right_singular_vector(at::cat(directions), generator, options.power_iterations)
      .view({shape[0], shape[1], shape[2]});
}

namespace {

/// Σ over `images` of the relative L2 change of the map under a universal delta (no other metric).
double total_dissimilarity(Model& model, const Dataset& images, const at::Tensor& delta, const UpiOptions& options,
                           const at::Generator& generator) {
  double total = 0;
  for (const auto [start, end] : batches(images.size(), options.batch_size)) {
    const at::Tensor x = images.images.slice(0, start, end).to(model.device()),
                     y = images.labels.slice(0, start, end).to(model.device());
    const at::Tensor before = interpretation_maps(model, x, y, options.attribution, generator);
    const at::Tensor after =
        interpretation_maps(model, perturb(x, delta.unsqueeze(0), options.clip), y, options.attribution, generator);
    total += relative_l2(before, after).sum().item<double>();
  }
  return total;
}

}  // namespace

at::Tensor upi_pca(Model& model, const Dataset& attack, const at::Tensor& direction, double eps,
                   const UpiOptions& options, const at::Generator& generator) {
  const at::Tensor plus = direction.to(model.device()) * eps, minus = -plus;
  return total_dissimilarity(model, attack, plus, options, generator) >=
                 total_dissimilarity(model, attack, minus, options, generator)
             ? plus
             : minus;
}

at::Tensor per_image_map_attack(Model& model, const Dataset& images, double eps, const UpiOptions& options,
                                const at::Generator& generator) {
  options.check();
  model.set_training(false);
  const AttackModel attacker(model, options);
  const double step = 2.5 * eps / static_cast<double>(options.per_image_steps);
  std::vector<at::Tensor> deltas;
  for (const auto [start, end] : batches(images.size(), options.batch_size)) {
    const at::Tensor x = images.images.slice(0, start, end).to(model.device()),
                     y = images.labels.slice(0, start, end).to(model.device());
    const at::Tensor clean_maps = interpretation_maps(*attacker, x, y, options.attribution, generator);
    at::Tensor delta = random_of_norm(x.sizes().vec(), options.start_fraction * eps, x.device(), generator);
    for (std::int64_t s = 0; s < options.per_image_steps; ++s) {
      const at::Tensor gradient = map_attack_gradients(*attacker, perturb(x, delta, options.clip), clean_maps, y,
                                                       options.attribution, generator);
      delta = project_to_ball(delta + step * unit_rows(gradient), Norm::l2, eps);
    }
    deltas.push_back(delta.detach());
  }
  return at::cat(deltas);
}

nlohmann::json UpiMetrics::to_json() const {
  nlohmann::json json = {{"dissimilarity", dissimilarity},
                         {"dissimilarity_unchanged", dissimilarity_unchanged},
                         {"topk_intersection", topk_intersection},
                         {"spearman", spearman},
                         {"fooling_rate", fooling_rate}};
  if (draws > 1) {
    json["draws"] = draws;
    json["spread"] = {{"statistic", "standard deviation over the draws"},
                      {"dissimilarity", dissimilarity_spread},
                      {"dissimilarity_unchanged", dissimilarity_unchanged_spread},
                      {"fooling_rate", fooling_rate_spread}};
  }
  return json;
}

UpiMetrics evaluate_perturbation(Model& model, const Dataset& test, const at::Tensor& delta, const UpiOptions& options,
                                 const at::Generator& generator) {
  RL_CHECK(test.size() >= 1, "UPI: no test images to evaluate on");
  RL_CHECK(delta.dim() == 3 || (delta.dim() == 4 && delta.size(0) == test.size()),
           "UPI: a perturbation must be C×H×W or ", test.size(), "×C×H×W, got ", delta.sizes());
  model.set_training(false);
  const std::vector<std::int64_t> shape = test.image_shape();
  const std::int64_t k = options.resolved_top_k(shape[1], shape[2]);
  double dissimilarity = 0, dissimilarity_unchanged = 0, unchanged = 0, topk = 0, spearman = 0;
  for (const auto [start, end] : batches(test.size(), options.batch_size)) {
    const at::Tensor x = test.images.slice(0, start, end).to(model.device()),
                     y = test.labels.slice(0, start, end).to(model.device());
    const at::Tensor moved = perturb(x, delta_for(delta, start, end).to(x.device()), options.clip);
    const at::Tensor before = interpretation_maps(model, x, y, options.attribution, generator);
    const at::Tensor after = interpretation_maps(model, moved, y, options.attribution, generator);
    at::NoGradGuard no_grad;
    const at::Tensor change = relative_l2(before, after);
    const at::Tensor same = model.forward(moved).argmax(1).eq(model.forward(x).argmax(1));
    dissimilarity += change.sum().item<double>();
    dissimilarity_unchanged += change.masked_select(same).sum().item<double>();
    unchanged += same.sum().item<double>();
    topk += topk_intersection(before, after, k).sum().item<double>();
    spearman += spearman_correlation(before, after).sum().item<double>();
  }
  const auto n = static_cast<double>(test.size());
  UpiMetrics metrics;
  metrics.dissimilarity = dissimilarity / n;
  metrics.dissimilarity_unchanged = unchanged > 0 ? dissimilarity_unchanged / unchanged : std::nan("");
  metrics.topk_intersection = topk / n;
  metrics.spearman = spearman / n;
  metrics.fooling_rate = 1 - unchanged / n;
  return metrics;
}

namespace {

/// Mean and standard deviation (n − 1; 0 for one value) of the finite values; NaN mean when there are none.
std::pair<double, double> mean_and_spread(const std::vector<double>& values) {
  std::vector<double> finite;
  std::copy_if(values.begin(), values.end(), std::back_inserter(finite), [](double v) { return std::isfinite(v); });
  if (finite.empty()) return {std::nan(""), std::nan("")};
  double mean = 0;
  for (const double v : finite) mean += v / static_cast<double>(finite.size());
  double squares = 0;
  for (const double v : finite) squares += (v - mean) * (v - mean);
  return {mean, finite.size() > 1 ? std::sqrt(squares / static_cast<double>(finite.size() - 1)) : 0.0};
}

}  // namespace

UpiMetrics average_draws(const std::vector<UpiMetrics>& draws) {
  RL_CHECK(!draws.empty(), "UPI: no draws to average");
  const auto over = [&](double UpiMetrics::*field) {
    std::vector<double> values;
    for (const UpiMetrics& m : draws) values.push_back(m.*field);
    return mean_and_spread(values);
  };
  UpiMetrics mean;
  std::tie(mean.dissimilarity, mean.dissimilarity_spread) = over(&UpiMetrics::dissimilarity);
  std::tie(mean.dissimilarity_unchanged, mean.dissimilarity_unchanged_spread) =
      over(&UpiMetrics::dissimilarity_unchanged);
  std::tie(mean.fooling_rate, mean.fooling_rate_spread) = over(&UpiMetrics::fooling_rate);
  mean.topk_intersection = over(&UpiMetrics::topk_intersection).first;
  mean.spearman = over(&UpiMetrics::spearman).first;
  mean.draws = static_cast<std::int64_t>(draws.size());
  return mean;
}

UpiMetrics random_baseline(Model& model, const Dataset& test, double eps, bool universal, const UpiOptions& options,
                           const at::Generator& generator, at::Tensor* first) {
  const std::vector<std::int64_t> shape = test.image_shape();
  std::vector<UpiMetrics> draws;
  for (std::int64_t draw = 0; draw < options.random_draws; ++draw) {
    const at::Tensor noise =
        random_of_norm({universal ? 1 : test.size(), shape[0], shape[1], shape[2]}, eps, model.device(), generator);
    const at::Tensor delta = universal ? noise.squeeze(0) : noise;
    if (first != nullptr && draw == 0) *first = delta;
    draws.push_back(evaluate_perturbation(model, test, delta, options, generator));
  }
  return average_draws(draws);
}

double resolve_summary_eps(Model& model, const Dataset& correct, const UpiOptions& options, std::string& source,
                           const ProgressCallback& progress) {
  if (options.summary_eps > 0) {
    source = "given";
    return options.summary_eps;
  }
  RL_CHECK(correct.size() >= 1, "UPI: no correctly classified test images to find the minimal perturbations of");
  model.set_training(false);
  const at::Tensor images = correct.images.to(model.device()), labels = correct.labels.to(model.device());
  const MinimalPerturbationResult minimal = minimal_perturbations(
      model, images, labels,
      MinimalPerturbationOptions().set_norm(Norm::l2).set_clip(options.clip).set_batch_size(options.batch_size), {},
      progress);
  const double median = quartiles(minimal.norms.to(at::kCPU)).median;
  RL_CHECK(std::isfinite(median) && median > 0, "UPI: the median minimal perturbation of the ", correct.size(),
           " correctly classified test images is ", median,
           " (the attack ensemble found none for half of them); give the summary radius in UpiOptions.summary_eps");
  source = "the median minimal perturbation (attack ensemble: DeepFool, FMN, PGD bisection, long FMN; L2) of the " +
           std::to_string(correct.size()) + " correctly classified test images";
  return median;
}

nlohmann::json UpiResult::to_json() const {
  nlohmann::json per_eps = nlohmann::json::array();
  const auto by_name = [](const std::map<std::string, UpiMetrics>& metrics) {
    nlohmann::json json = nlohmann::json::object();
    for (const auto& [name, m] : metrics) json[name] = m.to_json();
    return json;
  };
  for (std::size_t e = 0; e < metrics.size(); ++e)
    per_eps.push_back({{"eps", eps[e]}, {"metrics", by_name(metrics[e])}});
  return {{"attack_images", attack_images},
          {"test_images", test_images},
          {"top_k", top_k},
          {"per_eps", per_eps},
          {"summary",
           {{"eps", summary_eps},
            {"eps_source", summary_eps_source},
            {"method", summary_method},
            {"metrics", by_name(metrics.at(summary_index))}}},
          {"floor", {{"eps", floor_eps}, {"metrics", by_name(floor)}}}};
}

UpiResult analyse_upi(Model& model, const Dataset& attack, const Dataset& test, const UpiOptions& options,
                      const ProgressCallback& progress) {
  options.check();
  const Dataset attack_set = correctly_classified(model, attack, options.batch_size);
  const Dataset test_set = correctly_classified(model, test, options.batch_size);
  RL_CHECK(attack_set.size() >= 1 && test_set.size() >= 1, "UPI: the model classifies ", attack_set.size(), " of ",
           attack.size(), " attack images and ", test_set.size(), " of ", test.size(),
           " test images correctly; need at least one of each");
  const std::vector<std::int64_t> shape = test_set.image_shape();
  UpiResult result;
  result.attack_images = attack_set.size();
  result.test_images = test_set.size();
  result.top_k = options.resolved_top_k(shape[1], shape[2]);
  result.summary_eps = resolve_summary_eps(model, test_set, options, result.summary_eps_source, progress);
  // The summary radius joins the list unless it is already on it (a relative 1e-9).
  result.eps = options.eps;
  const auto same = [&](double e) { return std::abs(e - result.summary_eps) <= 1e-9 * result.summary_eps; };
  if (std::none_of(result.eps.begin(), result.eps.end(), same)) result.eps.push_back(result.summary_eps);
  std::sort(result.eps.begin(), result.eps.end());
  result.summary_index =
      static_cast<std::size_t>(std::find_if(result.eps.begin(), result.eps.end(), same) - result.eps.begin());

  const bool grad = options.method != "pca", pca = options.method != "grad";
  result.summary_method = grad ? "upi-grad" : "upi-pca";
  const at::Generator generator = make_generator(options.seed);
  const at::Tensor direction = pca ? upi_pca_direction(model, attack_set, options, generator, progress) : at::Tensor();
  for (const double eps : result.eps) {
    std::map<std::string, at::Tensor> universal;
    if (grad) universal["upi-grad"] = upi_grad(model, attack_set, eps, options, generator, progress);
    if (pca) universal["upi-pca"] = upi_pca(model, attack_set, direction, eps, options, generator);
    if (options.uap_passes > 0) {
      const UniversalPerturbationOptions uap = UniversalPerturbationOptions()
                                                   .set_eps(eps)
                                                   .set_passes(options.uap_passes)
                                                   .set_clip(options.clip)
                                                   .set_batch_size(options.batch_size);
      universal["classification-uap"] =
          universal_adversarial_perturbation(model, attack_set.images.to(model.device()), uap, progress).delta;
    }
    std::map<std::string, UpiMetrics> metrics;
    for (const auto& [name, delta] : universal) {
      metrics[name] = evaluate_perturbation(model, test_set, delta, options, generator);
    }
    metrics["universal-random"] =
        random_baseline(model, test_set, eps, true, options, generator, &universal["universal-random"]);
    metrics["per-image-random"] = random_baseline(model, test_set, eps, false, options, generator);
    metrics["per-image-attack"] = evaluate_perturbation(
        model, test_set, per_image_map_attack(model, test_set, eps, options, generator), options, generator);
    for (auto& [name, delta] : universal) delta = delta.to(at::kCPU);
    result.metrics.push_back(std::move(metrics));
    result.perturbations.push_back(std::move(universal));
  }
  result.floor_eps = options.floor_eps;
  result.floor["universal-random"] = random_baseline(model, test_set, options.floor_eps, true, options, generator);
  result.floor["per-image-random"] = random_baseline(model, test_set, options.floor_eps, false, options, generator);
  return result;
}

}  // namespace robustlens
