#include "robustlens/analyses/upi.h"

#include "robustlens/analyses/statistics.h"
#include "robustlens/attacks/pgd.h"
#include "robustlens/attacks/universal_perturbation.h"
#include "robustlens/core/batches.h"
#include "robustlens/core/distributed.h"
#include "robustlens/core/error.h"
#include "robustlens/core/random.h"
#include "robustlens/explain/map_metrics.h"

#include <torch/autograd.h>

#include <algorithm>
#include <cmath>
#include <memory>
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
  const at::Tensor clean_maps =
      distributed::gather_batch_shares(attack.size(), options.batch_size, [&](std::int64_t first, std::int64_t last) {
        const at::Tensor x = attack.images.slice(0, first, last).to(device),
                         y = attack.labels.slice(0, first, last).to(device);
        return std::vector<at::Tensor>{interpretation_maps(*attacker, x, y, options.attribution, generator)};
      })[0];
  const std::vector<std::int64_t> shape = attack.image_shape();
  // A random start: the dissimilarity's gradient vanishes at delta = 0.
  at::Tensor delta = random_of_norm({1, shape[0], shape[1], shape[2]}, options.start_fraction * eps, device, generator);
  const AttributionOptions graph = AttributionOptions(options.attribution).set_create_graph(true);
  const at::Tensor images = attack.images.to(device), labels = attack.labels.to(device);
  for (std::int64_t pass = 0; pass < options.passes; ++pass) {
    const double step = options.step_fraction * eps / std::sqrt(1.0 + static_cast<double>(pass));
    const at::Tensor order = random_permutation(attack.size(), generator);
    for (const auto [start, end] : batches(attack.size(), options.batch_size)) {
      // Each rank the gradient of its rows' share of the batch's mean (core/distributed.h), summed over the ranks.
      const distributed::BatchShare share = distributed::batch_share(end - start);
      at::Tensor gradient;
      {
        const distributed::BatchShareScope scope(share);
        const at::Tensor batch = order.slice(0, start + share.offset, start + share.offset + share.rows).to(device);
        const at::Tensor x = images.index_select(0, batch), y = labels.index_select(0, batch);
        const at::Tensor d = delta.detach().requires_grad_(true);
        const at::Tensor maps = interpretation_maps(*attacker, perturb(x, d, options.clip), y, graph, generator);
        const at::Tensor objective =
            relative_l2(clean_maps.index_select(0, batch), maps).sum() / static_cast<double>(share.total);
        gradient = share.counts ? torch::autograd::grad({objective}, {d})[0] : at::zeros_like(delta);
      }
      distributed::all_reduce_sum(gradient);
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
  // Each rank keeps the directions of its rows; the power iteration sums their products over the ranks.
  std::vector<at::Tensor> directions;
  distributed::for_each_batch_share(
      attack.size(), options.batch_size,
      [&](std::int64_t first, std::int64_t last, const distributed::BatchShare& share) {
        const at::Tensor x = attack.images.slice(0, first, last).to(model.device()),
                         y = attack.labels.slice(0, first, last).to(model.device());
        const at::Tensor clean_maps = interpretation_maps(*attacker, x, y, options.attribution, generator);
        const at::Tensor moved = x + random_of_norm(x.sizes().vec(), options.pca_noise, x.device(), generator);
        const at::Tensor rows =
            unit_rows(map_attack_gradients(*attacker, moved, clean_maps, y, options.attribution, generator));
        if (share.counts) directions.push_back(rows.flatten(1));
      },
      progress, "UPI-PCA gradients");
  const std::vector<std::int64_t> shape = attack.image_shape();
  const std::int64_t dims = shape[0] * shape[1] * shape[2];
  const at::Tensor rows =
      directions.empty() ? at::zeros({0, dims}, attack.images.options().device(model.device())) : at::cat(directions);
  const auto gram_product = [&](const at::Tensor& v) {
    at::Tensor product = rows.t().mv(rows.mv(v));  // (RᵀR)v without forming RᵀR
    distributed::all_reduce_sum(product);
    return product;
  };
  return top_right_singular_vector(dims, gram_product, generator, rows.options(), options.power_iterations)
      .view({shape[0], shape[1], shape[2]});
}

namespace {

/// Σ over `images` of the relative L2 change of the map under a universal delta (no other metric).
double total_dissimilarity(Model& model, const Dataset& images, const at::Tensor& delta, const UpiOptions& options,
                           const at::Generator& generator) {
  return distributed::sum_batch_shares(
             images.size(), options.batch_size,
             [&](std::int64_t first, std::int64_t last) {
               const at::Tensor x = images.images.slice(0, first, last).to(model.device()),
                                y = images.labels.slice(0, first, last).to(model.device());
               const at::Tensor before = interpretation_maps(model, x, y, options.attribution, generator);
               const at::Tensor after = interpretation_maps(model, perturb(x, delta.unsqueeze(0), options.clip), y,
                                                            options.attribution, generator);
               return std::vector<double>{relative_l2(before, after).sum().item<double>()};
             })
      .front();
}

}  // namespace

at::Tensor upi_pca(Model& model, const Dataset& attack, const at::Tensor& direction, double eps,
                   const UpiOptions& options, const at::Generator& generator) {
  RL_CHECK(attack.size() >= 1, "UPI-PCA: the attack split is empty");
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
  RL_CHECK(images.size() >= 1, "UPI: no images for the per-image map attack");
  const double step = 2.5 * eps / static_cast<double>(options.per_image_steps);
  return distributed::gather_batch_shares(
      images.size(), options.batch_size, [&](std::int64_t first, std::int64_t last) {
        const at::Tensor x = images.images.slice(0, first, last).to(model.device()),
                         y = images.labels.slice(0, first, last).to(model.device());
        const at::Tensor clean_maps = interpretation_maps(*attacker, x, y, options.attribution, generator);
        at::Tensor delta = random_of_norm(x.sizes().vec(), options.start_fraction * eps, x.device(), generator);
        for (std::int64_t s = 0; s < options.per_image_steps; ++s) {
          const at::Tensor gradient = map_attack_gradients(*attacker, perturb(x, delta, options.clip), clean_maps, y,
                                                           options.attribution, generator);
          delta = project_to_ball(delta + step * unit_rows(gradient), Norm::l2, eps);
        }
        return std::vector<at::Tensor>{delta.detach()};
      })[0];
}

UpiMetrics evaluate_perturbation(Model& model, const Dataset& test, const at::Tensor& delta, const UpiOptions& options,
                                 const at::Generator& generator) {
  RL_CHECK(test.size() >= 1, "UPI: no test images to evaluate on");
  RL_CHECK(delta.dim() == 3 || (delta.dim() == 4 && delta.size(0) == test.size()),
           "UPI: a perturbation must be C×H×W or ", test.size(), "×C×H×W, got ", delta.sizes());
  model.set_training(false);
  const std::vector<std::int64_t> shape = test.image_shape();
  const std::int64_t k = options.resolved_top_k(shape[1], shape[2]);
  const std::vector<double> sums =
      distributed::sum_batch_shares(test.size(), options.batch_size, [&](std::int64_t first, std::int64_t last) {
        const at::Tensor x = test.images.slice(0, first, last).to(model.device()),
                         y = test.labels.slice(0, first, last).to(model.device());
        const at::Tensor moved = perturb(x, delta_for(delta, first, last).to(x.device()), options.clip);
        const at::Tensor before = interpretation_maps(model, x, y, options.attribution, generator);
        const at::Tensor after = interpretation_maps(model, moved, y, options.attribution, generator);
        at::NoGradGuard no_grad;
        const at::Tensor change = relative_l2(before, after);
        const at::Tensor same = model.forward(moved).argmax(1).eq(model.forward(x).argmax(1));
        return std::vector<double>{change.sum().item<double>(), change.masked_select(same).sum().item<double>(),
                                   same.sum().item<double>(), topk_intersection(before, after, k).sum().item<double>(),
                                   spearman_correlation(before, after).sum().item<double>()};
      });
  const double dissimilarity = sums[0], dissimilarity_unchanged = sums[1], unchanged = sums[2], topk = sums[3],
               spearman = sums[4];
  const auto n = static_cast<double>(test.size());
  UpiMetrics metrics;
  metrics.dissimilarity = dissimilarity / n;
  metrics.dissimilarity_unchanged = unchanged > 0 ? dissimilarity_unchanged / unchanged : std::nan("");
  metrics.topk_intersection = topk / n;
  metrics.spearman = spearman / n;
  metrics.fooling_rate = 1 - unchanged / n;
  return metrics;
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
