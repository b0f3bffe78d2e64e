#include "robustlens/train/objectives.h"

#include "robustlens/attacks/pgd.h"
#include "robustlens/core/error.h"
#include "robustlens/core/random.h"

#include <torch/autograd.h>

#include <algorithm>
#include <cmath>
#include <tuple>

namespace robustlens {

void ObjectiveOptions::check() const {
  RL_CHECK(kind == "standard" || kind == "pgd-l2" || kind == "pgd-linf" || kind == "noise" || kind == "gradnorm",
           "ObjectiveOptions.kind: expected standard, pgd-l2, pgd-linf, noise or gradnorm, got '", kind, "'");
  RL_CHECK(eps >= 0, "ObjectiveOptions.eps must be >= 0, got ", eps);
  RL_CHECK(pgd_steps >= 1, "ObjectiveOptions.pgd_steps must be >= 1, got ", pgd_steps);
  RL_CHECK(pgd_step_size >= 0, "ObjectiveOptions.pgd_step_size must be >= 0, got ", pgd_step_size);
  RL_CHECK(sigma >= 0, "ObjectiveOptions.sigma must be >= 0, got ", sigma);
  RL_CHECK(lambda >= 0, "ObjectiveOptions.lambda must be >= 0, got ", lambda);
}

nlohmann::json ObjectiveOptions::to_json() const {
  nlohmann::json json = {{"kind", kind}};
  if (kind.rfind("pgd", 0) == 0) {
    json["eps"] = eps;
    json["pgd_steps"] = pgd_steps;
    json["pgd_step_size"] = pgd_step_size == 0 ? 2.5 * eps / static_cast<double>(pgd_steps) : pgd_step_size;
  }
  if (kind == "noise") json["sigma"] = sigma;
  if (kind == "gradnorm") json["lambda"] = lambda;
  return json;
}

double LatentPenaltyOptions::gamma_at(std::int64_t epoch) const {
  if (!enabled) return 0;
  return std::min(gamma0 * std::pow(factor, static_cast<double>(epoch - 1)), gamma_max);
}

void LatentPenaltyOptions::check() const {
  RL_CHECK(gamma0 > 0, "LatentPenaltyOptions.gamma0 must be > 0, got ", gamma0);
  RL_CHECK(factor >= 1, "LatentPenaltyOptions.factor must be >= 1, got ", factor);
  RL_CHECK(gamma_max >= gamma0, "LatentPenaltyOptions.gamma_max must be >= LatentPenaltyOptions.gamma0 (", gamma0,
           "), got ", gamma_max);
}

nlohmann::json LatentPenaltyOptions::to_json() const {
  return {{"gamma0", gamma0}, {"factor", factor}, {"gamma_max", gamma_max}};
}

at::Tensor input_gradient_penalty(Model& model, const at::Tensor& images, const at::Tensor& labels) {
  const at::Tensor x = images.detach().requires_grad_(true);
  // The gradient of the summed loss is, per row, the gradient of that example's loss.
  const at::Tensor loss = at::cross_entropy_loss(model.forward(x), labels, {}, at::Reduction::Sum);
  const at::Tensor grad = torch::autograd::grad({loss}, {x}, {}, /*retain_graph=*/true, /*create_graph=*/true)[0];
  return grad.pow(2).flatten(1).sum(1).mean();
}

BatchLoss objective_loss(Model& model, const at::Tensor& images, const at::Tensor& labels,
                         const ObjectiveOptions& options, const at::Generator& generator, double latent_gamma,
                         bool clip_to_pixels) {
  at::Tensor inputs = images;
  if (options.kind == "pgd-l2" || options.kind == "pgd-linf") {
    model.set_training(false);
    inputs = pgd_attack(model, images, labels,
                        PgdOptions()
                            .set_clip(clip_to_pixels)
                            .set_norm(options.kind == "pgd-l2" ? Norm::l2 : Norm::linf)
                            .set_eps(options.eps)
                            .set_steps(options.pgd_steps)
                            .set_step_size(options.pgd_step_size),
                        generator);
    model.set_training(true);
  } else if (options.kind == "noise") {
    RL_CHECK(generator.defined(), "the noise objective draws from a generator: pass one (core/random.h)");
    inputs = images + options.sigma * random_normal(images.sizes(), generator, images.options());
  }
  at::Tensor logits, loss;
  if (latent_gamma > 0) {
    at::Tensor latent;
    std::tie(logits, latent) = model.forward_with_latent(inputs);
    loss = at::cross_entropy_loss(logits, labels) + latent_gamma * latent.pow(2).mean();
  } else {
    logits = model.forward(inputs);
    loss = at::cross_entropy_loss(logits, labels);
  }
  if (options.kind == "gradnorm") loss = loss + options.lambda * input_gradient_penalty(model, images, labels);
  return {loss, logits};
}

ObjectiveOptions objective_at_strength(ObjectiveOptions base, const std::string& kind, double strength) {
  RL_CHECK(std::isfinite(strength) && strength > 0, "an objective's strength must be finite and > 0, got ", strength);
  base.set_kind(kind);
  if (kind == "gradnorm") {
    base.set_lambda(strength);
  } else if (kind == "noise") {
    base.set_sigma(strength);
  } else if (kind == "pgd-l2") {
    base.set_eps(strength).set_pgd_step_size(2 * strength / static_cast<double>(base.pgd_steps));
  } else {
    RL_CHECK(false, "an objective with a strength is gradnorm, noise or pgd-l2, got '", kind, "'");
  }
  return base;
}

}  // namespace robustlens
