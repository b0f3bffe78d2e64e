#include "robustlens/attacks/fmn.h"

#include "robustlens/core/distributed.h"

#include "robustlens/core/batches.h"
#include "robustlens/core/error.h"

#include <torch/autograd.h>

#include <cmath>
#include <limits>

namespace robustlens {
namespace {

/// z_y − max_{j≠y} z_j per row: negative exactly when the row is misclassified.
at::Tensor logit_difference(const at::Tensor& logits, const at::Tensor& labels) {
  const at::Tensor own = logits.gather(1, labels.view({-1, 1})).squeeze(1);
  const at::Tensor others = logits.scatter(1, labels.view({-1, 1}), -std::numeric_limits<float>::infinity());
  return own - std::get<0>(others.max(1));
}

void fmn_chunk(Model& model, const at::Tensor& x0, const at::Tensor& labels, const at::Tensor& start,
               const FmnOptions& options, FmnResult& result, std::int64_t offset) {
  const std::int64_t n = x0.size(0);
  const bool linf = options.norm == Norm::linf;
  const double infinity = std::numeric_limits<double>::infinity();
  // The largest perturbation the domain allows: ε never needs to exceed it.
  const at::Tensor worst_norm =
      options.clip ? perturbation_norms(at::maximum(x0, 1 - x0), options.norm) : at::full({n}, infinity, x0.options());
  at::Tensor epsilon = at::full({n}, infinity, x0.options());
  at::Tensor best_norm = at::full({n}, infinity, x0.options());
  at::Tensor best_delta = at::zeros_like(x0);
  at::Tensor found = at::zeros({n}, x0.options().dtype(at::kBool));
  at::Tensor delta = start.defined() ? start.to(x0.options()) : at::zeros_like(x0);
  if (options.clip) delta = (x0 + delta).clamp(0.0, 1.0) - x0;
  const auto record = [&](const at::Tensor& adversarial, const at::Tensor& delta_now, const at::Tensor& norms) {
    const at::Tensor better = adversarial.logical_and(norms < best_norm);
    found.logical_or_(adversarial);
    best_norm = at::where(better, norms, best_norm);
    best_delta = at::where(per_sample_view(better, x0), delta_now, best_delta);
  };
  for (std::int64_t step = 0; step < options.steps; ++step) {
    const double cosine = (1 + std::cos(M_PI * static_cast<double>(step) / static_cast<double>(options.steps))) / 2;
    const double alpha = options.alpha_final + (options.alpha_init - options.alpha_final) * cosine;
    const double gamma = options.gamma_final + (options.gamma_init - options.gamma_final) * cosine;
    delta.requires_grad_(true);
    const at::Tensor difference = logit_difference(model.forward(x0 + delta), labels);
    at::Tensor gradient = torch::autograd::grad({difference.sum()}, {delta})[0];
    at::NoGradGuard no_grad;
    delta = delta.detach();
    if (options.clip) {
      // Descending moves against the gradient: drop the components that would push a pixel already at 0
      // below it or one at 1 above it. Otherwise the ε-ball projection spends the radius on directions the
      // clamp then removes (most of a Fashion-MNIST image is black), and the iterate never reaches the boundary.
      const at::Tensor x = x0 + delta;
      gradient =
          gradient.masked_fill(x.le(0).logical_and(gradient > 0).logical_or(x.ge(1).logical_and(gradient < 0)), 0);
    }
    const at::Tensor norms = perturbation_norms(delta, options.norm);
    const at::Tensor adversarial = difference.detach() < 0;
    record(adversarial, delta, norms);
    // Linearised distance to the boundary, in the norm's dual (L1 for Linf, L2 for L2).
    const at::Tensor dual = linf ? gradient.flatten(1).abs().sum(1) : gradient.flatten(1).norm(2, 1);
    const at::Tensor boundary = difference.detach().abs() / dual.clamp_min(1e-12);
    // Before the first adversarial, the linearised distance times (1 + γ): landing exactly on the
    // boundary of a (nearly) linear model never crosses it.
    epsilon = at::where(adversarial, at::minimum(epsilon * (1 - gamma), best_norm),
                        at::where(found, epsilon * (1 + gamma), (norms + boundary) * (1 + gamma)));
    epsilon = at::minimum(epsilon, worst_norm);
    // Descend the logit difference along its L2-normalised gradient, then project onto the ε-ball.
    const at::Tensor direction = gradient / per_sample_view(gradient.flatten(1).norm(2, 1).clamp_min(1e-12), x0);
    delta = project_to_ball(delta - alpha * direction, options.norm, epsilon);
    if (options.clip) delta = (x0 + delta).clamp(0.0, 1.0) - x0;
  }
  {
    at::NoGradGuard no_grad;  // the last step's iterate is a candidate too
    record(logit_difference(model.forward(x0 + delta), labels) < 0, delta, perturbation_norms(delta, options.norm));
  }
  result.perturbations.slice(0, offset, offset + n).copy_(best_delta);
  result.norms.slice(0, offset, offset + n).copy_(best_norm);
  result.found.slice(0, offset, offset + n).copy_(found);
}

}  // namespace

FmnOptions FmnOptions::resolved() const {
  FmnOptions o = *this;
  RL_CHECK(o.steps >= 1, "FMN steps must be >= 1, got ", o.steps);
  RL_CHECK(o.alpha_init > 0 && std::isfinite(o.alpha_init),
           "FMN alpha_init (the initial step length) must be > 0, got ", o.alpha_init);
  RL_CHECK(o.alpha_final >= 0 && o.alpha_final <= o.alpha_init,
           "FMN alpha_final (the final step length) must lie in [0, ", o.alpha_init, "] (0 = alpha_init/100), got ",
           o.alpha_final);
  RL_CHECK(o.gamma_init > 0 && o.gamma_init < 1 && o.gamma_final > 0 && o.gamma_final <= o.gamma_init,
           "FMN gamma_init and gamma_final: need 0 < gamma_final <= gamma_init < 1, got gamma_init ", o.gamma_init,
           ", gamma_final ", o.gamma_final);
  RL_CHECK(o.batch_size >= 1, "FMN batch size must be >= 1, got ", o.batch_size);
  if (o.alpha_final == 0) o.alpha_final = o.alpha_init / 100;
  return o;
}

nlohmann::json FmnOptions::to_json() const {
  return {{"norm", to_string(norm)},
          {"steps", steps},
          {"alpha_init", alpha_init},
          {"alpha_final", alpha_final},
          {"gamma_init", gamma_init},
          {"gamma_final", gamma_final},
          {"clip", clip},
          {"batch_size", batch_size}};
}

FmnResult fmn_attack(Model& model, const at::Tensor& images, const at::Tensor& labels, const FmnOptions& requested,
                     const ProgressCallback& progress, const at::Tensor& start) {
  const FmnOptions options = requested.resolved();
  check_images(images, model.info().input_shape, "FMN input");
  RL_CHECK(labels.dim() == 1 && labels.size(0) == images.size(0), "FMN: one label per image (", images.size(0),
           ") expected, got shape ", labels.sizes());
  RL_CHECK(!start.defined() || start.sizes() == images.sizes(), "FMN: starting perturbations of shape ", start.sizes(),
           " for images ", images.sizes());
  // Each sample's search is its own: a data-parallel run splits the samples (core/distributed.h).
  const std::vector<at::Tensor> rows = distributed::shard_rows(
      images.size(0), progress, [&](std::int64_t first, std::int64_t last, const ProgressCallback& share_progress) {
        const std::int64_t n = last - first;
        const at::Tensor share = images.slice(0, first, last);
        FmnResult result{at::zeros_like(share), at::empty({n}, images.options()),
                         at::empty({n}, images.options().dtype(at::kBool))};
        for (const auto [begin, end] : batches(n, options.batch_size)) {
          fmn_chunk(model, share.slice(0, begin, end).detach(),
                    labels.slice(0, first + begin, first + end).to(images.device(), at::kLong),
                    start.defined() ? start.slice(0, first + begin, first + end).detach() : at::Tensor(), options,
                    result, begin);
          report(share_progress, {"fmn", end, n, ""});
        }
        return std::vector<at::Tensor>{result.perturbations, result.norms, result.found};
      });
  return {rows[0], rows[1], rows[2]};
}

}  // namespace robustlens
