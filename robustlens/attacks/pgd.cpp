#include "robustlens/attacks/pgd.h"

#include "robustlens/core/error.h"

#include <torch/autograd.h>

#include <limits>

namespace robustlens {
namespace {

/// Per-sample L2 norms, shaped N×1×1×1 for broadcasting.
at::Tensor sample_norms(const at::Tensor& t) {
  return t.flatten(1).norm(2, 1).view({-1, 1, 1, 1});
}

at::Tensor random_start(const at::Tensor& like, Norm norm, double eps) {
  if (norm == Norm::linf) return at::empty_like(like).uniform_(-eps, eps);
  // Uniform in the L2 ball: Gaussian direction, radius eps·u^(1/d).
  const at::Tensor direction = at::randn_like(like);
  const double dims = static_cast<double>(like[0].numel());
  const at::Tensor radius = at::rand({like.size(0), 1, 1, 1}, like.options()).pow(1.0 / dims).mul(eps);
  return direction / sample_norms(direction).clamp_min(1e-12) * radius;
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
  return {{"norm", to_string(norm)},         {"eps", eps},           {"steps", steps},
          {"step_size", step_size},          {"random_start", random_start},
          {"restarts", restarts},            {"clip", clip}};
}

at::Tensor project_to_ball(const at::Tensor& delta, Norm norm, double eps) {
  if (norm == Norm::linf) return delta.clamp(-eps, eps);
  const at::Tensor norms = sample_norms(delta);
  return delta * (eps / norms.clamp_min(1e-12)).clamp_max(1.0);
}

at::Tensor pgd_attack(Model& model, const at::Tensor& images, const at::Tensor& labels, const PgdOptions& requested) {
  const PgdOptions options = requested.resolved();
  const at::Tensor x0 = images.detach();
  at::Tensor best = x0.clone();
  at::Tensor best_loss = at::full({x0.size(0)}, -std::numeric_limits<float>::infinity(), x0.options());
  const auto keep_in_domain = [&](const at::Tensor& delta) {
    return options.clip ? (x0 + delta).clamp(0.0, 1.0) - x0 : delta;
  };
  for (std::int64_t restart = 0; restart < options.restarts; ++restart) {
    at::Tensor delta = options.random_start ? random_start(x0, options.norm, options.eps) : at::zeros_like(x0);
    delta = keep_in_domain(delta);
    for (std::int64_t step = 0; step < options.steps; ++step) {
      delta.requires_grad_(true);
      const at::Tensor loss = at::cross_entropy_loss(model.forward(x0 + delta), labels, {}, at::Reduction::Sum);
      const at::Tensor grad = torch::autograd::grad({loss}, {delta})[0];
      const at::Tensor direction =
          options.norm == Norm::linf ? grad.sign() : grad / sample_norms(grad).clamp_min(1e-12);
      delta = keep_in_domain(project_to_ball(delta.detach() + options.step_size * direction, options.norm, options.eps));
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
