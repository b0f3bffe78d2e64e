#include "robustlens/attacks/pgd.h"

#include "robustlens/core/error.h"
#include "robustlens/core/random.h"

#include <torch/autograd.h>

#include <limits>

namespace robustlens {
namespace {

/// Per-sample L2 norms, shaped N×1×…×1 for broadcasting.
at::Tensor sample_norms(const at::Tensor& t) { return per_sample_view(perturbation_norms(t, Norm::l2), t); }

at::Tensor random_start(const at::Tensor& like, Norm norm, const at::Tensor& radii, const at::Generator& generator) {
  RL_CHECK(generator.defined(), "PGD with a random start draws from a generator: pass one (core/random.h)");
  const at::Tensor eps = per_sample_view(radii.to(like.options()), like);
  if (norm == Norm::linf) return (random_uniform(like.sizes(), generator, like.options()) * 2 - 1) * eps;
  // Uniform in the L2 ball: Gaussian direction, radius eps·u^(1/d).
  const at::Tensor direction = random_normal(like.sizes(), generator, like.options());
  const double dims = static_cast<double>(like[0].numel());
  const at::Tensor radius =
      random_uniform({like.size(0), 1, 1, 1}, generator, like.options()).pow(1.0 / dims).view_as(eps) * eps;
  return direction / sample_norms(direction).view_as(eps).clamp_min(1e-12) * radius;
}

}  // namespace

Norm parse_norm(const std::string& name) {
  RL_CHECK(name == "l2" || name == "linf", "norm: expected l2 or linf, got '", name, "'");
  return name == "l2" ? Norm::l2 : Norm::linf;
}

std::string to_string(Norm norm) { return norm == Norm::l2 ? "l2" : "linf"; }

PgdOptions PgdOptions::resolved() const {
  PgdOptions o = *this;
  RL_CHECK(o.eps >= 0, "PGD eps must be >= 0, got ", o.eps);
  RL_CHECK(o.steps >= 1, "PGD steps must be >= 1, got ", o.steps);
  RL_CHECK(o.step_size >= 0, "PGD step size must be >= 0 (0 = 2.5·eps/steps), got ", o.step_size);
  RL_CHECK(o.restarts >= 1, "PGD restarts must be >= 1, got ", o.restarts);
  if (o.step_size == 0) o.step_size = 2.5 * o.eps / static_cast<double>(o.steps);
  return o;
}

nlohmann::json PgdOptions::to_json() const {
  return {{"norm", to_string(norm)},      {"eps", eps},           {"steps", steps}, {"step_size", step_size},
          {"random_start", random_start}, {"restarts", restarts}, {"clip", clip}};
}

at::Tensor per_sample_view(const at::Tensor& values, const at::Tensor& like) {
  std::vector<std::int64_t> shape(static_cast<std::size_t>(like.dim()), 1);
  shape[0] = like.size(0);
  return values.view(shape);
}

at::Tensor perturbation_norms(const at::Tensor& delta, Norm norm) {
  return norm == Norm::linf ? std::get<0>(delta.flatten(1).abs().max(1)) : delta.flatten(1).norm(2, 1);
}

at::Tensor project_to_ball(const at::Tensor& delta, Norm norm, const at::Tensor& radii) {
  const at::Tensor eps = per_sample_view(radii.to(delta.options()), delta);
  if (norm == Norm::linf) return at::maximum(at::minimum(delta, eps), -eps);
  return delta * (eps / sample_norms(delta).view_as(eps).clamp_min(1e-12)).clamp_max(1.0);
}

at::Tensor project_to_ball(const at::Tensor& delta, Norm norm, double eps) {
  if (norm == Norm::linf) return delta.clamp(-eps, eps);
  return project_to_ball(delta, norm, at::full({delta.size(0)}, eps, delta.options()));
}

at::Tensor pgd_attack(Model& model, const at::Tensor& images, const at::Tensor& labels, const PgdOptions& requested,
                      const at::Generator& generator) {
  // The step size resolved from the scalar eps, as before per-sample radii existed.
  const PgdOptions options = requested.resolved();
  return pgd_attack(model, images, labels, options, at::full({images.size(0)}, options.eps, images.options()),
                    generator);
}

at::Tensor pgd_attack(Model& model, const at::Tensor& images, const at::Tensor& labels, const PgdOptions& requested,
                      const at::Tensor& radii, const at::Generator& generator) {
  const PgdOptions options = requested.resolved();
  RL_CHECK(radii.dim() == 1 && radii.size(0) == images.size(0), "PGD: one radius per image (", images.size(0),
           ") expected, got shape ", radii.sizes());
  const at::Tensor x0 = images.detach();
  const at::Tensor eps = radii.to(x0.options());
  RL_CHECK(eps.ge(0).all().item<bool>(), "PGD radii must be >= 0");
  const at::Tensor step_size = per_sample_view(
      requested.step_size == 0 ? eps * 2.5 / static_cast<double>(options.steps) : at::full_like(eps, options.step_size),
      x0);
  at::Tensor best = x0.clone();
  at::Tensor best_loss = at::full({x0.size(0)}, -std::numeric_limits<float>::infinity(), x0.options());
  const auto keep_in_domain = [&](const at::Tensor& delta) {
    return options.clip ? (x0 + delta).clamp(0.0, 1.0) - x0 : delta;
  };
  for (std::int64_t restart = 0; restart < options.restarts; ++restart) {
    at::Tensor delta = options.random_start ? random_start(x0, options.norm, eps, generator) : at::zeros_like(x0);
    delta = keep_in_domain(delta);
    for (std::int64_t step = 0; step < options.steps; ++step) {
      delta.requires_grad_(true);
      const at::Tensor loss = at::cross_entropy_loss(model.forward(x0 + delta), labels, {}, at::Reduction::Sum);
      const at::Tensor grad = torch::autograd::grad({loss}, {delta})[0];
      const at::Tensor direction =
          options.norm == Norm::linf ? grad.sign() : grad / sample_norms(grad).clamp_min(1e-12);
      delta = keep_in_domain(project_to_ball(delta.detach() + step_size * direction, options.norm, eps));
    }
    at::NoGradGuard no_grad;
    const at::Tensor candidate = x0 + delta;
    const at::Tensor loss = at::cross_entropy_loss(model.forward(candidate), labels, {}, at::Reduction::None);
    const at::Tensor better = loss > best_loss;
    best = at::where(better.view({-1, 1, 1, 1}), candidate, best);
    best_loss = at::where(better, loss, best_loss);
  }
  return best.detach();
}

}  // namespace robustlens
