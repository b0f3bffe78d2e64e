#include "robustlens/attacks/deepfool.h"

#include "robustlens/core/distributed.h"

#include "robustlens/core/batches.h"
#include "robustlens/core/error.h"

#include <torch/autograd.h>

#include <limits>

namespace robustlens {
namespace {

/// Per-row L2 norms of an M×... tensor, shaped M.
at::Tensor row_norms(const at::Tensor& t) { return t.flatten(1).norm(2, 1); }

/// DeepFool on one chunk of samples; fills rows [offset, offset + n) of `result`.
void deepfool_chunk(Model& model, const at::Tensor& x0, std::int64_t offset, const DeepFoolOptions& options,
                    DeepFoolResult& result) {
  const std::int64_t n = x0.size(0);
  at::Tensor clean_logits;
  {
    at::NoGradGuard no_grad;
    clean_logits = model.forward(x0);
  }
  const std::int64_t m = std::min(options.candidates, clean_logits.size(1));
  RL_CHECK(m >= 2, "DeepFool needs at least 2 candidate classes, the model has ", clean_logits.size(1));
  const at::Tensor candidates = std::get<1>(clean_logits.topk(m, 1));  // N×m, c = column 0
  const at::Tensor original = candidates.select(1, 0);
  const auto domain = [&](const at::Tensor& x) { return options.clip ? x.clamp(0.0, 1.0) : x; };

  at::Tensor r = at::zeros_like(x0);
  at::Tensor iterations = at::zeros({n}, at::TensorOptions().dtype(at::kLong).device(x0.device()));
  at::Tensor flipped = at::zeros({n}, at::TensorOptions().dtype(at::kBool).device(x0.device()));
  at::Tensor active = at::arange(n, iterations.options());
  for (std::int64_t iteration = 0; iteration < options.max_iterations && active.numel() > 0; ++iteration) {
    const std::int64_t a = active.numel();
    const at::Tensor x = domain(x0.index_select(0, active) + r.index_select(0, active)).detach().requires_grad_(true);
    const at::Tensor logits = model.forward(x);
    const at::Tensor chosen = logits.gather(1, candidates.index_select(0, active));  // a×m
    const at::Tensor differences = chosen.slice(1, 1) - chosen.slice(1, 0, 1);       // a×(m−1): f_k
    // One backward pass per candidate, sharing the forward graph; the gradient of a
    // column summed over the batch is, per row, that sample's gradient.
    std::vector<at::Tensor> gradients;
    for (std::int64_t k = 0; k < m - 1; ++k) {
      gradients.push_back(
          torch::autograd::grad({differences.select(1, k).sum()}, {x}, {}, /*retain_graph=*/k + 2 < m)[0]);
    }
    at::NoGradGuard no_grad;
    at::Tensor w = at::stack(gradients, 1);  // a×(m−1)×C×H×W
    const auto image_shape = x0.sizes().slice(1);
    if (options.projector) {
      std::vector<std::int64_t> flat{a * (m - 1)};
      flat.insert(flat.end(), image_shape.begin(), image_shape.end());
      const at::Tensor rows = (active + offset).repeat_interleave(m - 1);
      w = options.projector(w.reshape(flat), rows).reshape(w.sizes());
    }
    const at::Tensor w_norms = row_norms(w.flatten(0, 1)).view({a, m - 1});
    const at::Tensor distances = differences.detach().abs() / w_norms;  // inf where the projection vanishes
    const at::Tensor best = distances.argmin(1);
    const at::Tensor step_length = distances.gather(1, best.unsqueeze(1)).squeeze(1).clamp_min(1e-4);
    iterations.index_add_(0, active, at::ones_like(active));
    // A sample whose projected gradients all vanish cannot move: it stops, not flipped.
    const at::Tensor movable = at::isfinite(step_length);
    const at::Tensor moving = movable.nonzero().squeeze(1);
    active = active.index_select(0, moving);
    if (active.numel() == 0) break;
    std::vector<std::int64_t> pick_shape(w.dim(), 1);
    pick_shape[0] = active.numel();
    std::vector<std::int64_t> expanded(w.sizes().begin(), w.sizes().end());
    expanded[0] = active.numel();
    expanded[1] = 1;
    const at::Tensor direction =
        w.index_select(0, moving).gather(1, best.index_select(0, moving).view(pick_shape).expand(expanded)).squeeze(1);
    const at::Tensor step = direction / row_norms(direction).clamp_min(1e-12).view({-1, 1, 1, 1}) *
                            step_length.index_select(0, moving).view({-1, 1, 1, 1});
    r.index_add_(0, active, step.to(r.scalar_type()));  // a model may compute its logits in double

    const at::Tensor check = domain(x0.index_select(0, active) + (1 + options.overshoot) * r.index_select(0, active));
    const at::Tensor changed = model.forward(check).argmax(1).ne(original.index_select(0, active));
    flipped.index_fill_(0, active.masked_select(changed), true);
    active = active.masked_select(changed.logical_not());
  }
  at::NoGradGuard no_grad;
  const at::Tensor adversarial = domain(x0 + (1 + options.overshoot) * r);
  const at::Tensor delta = adversarial - x0;
  result.perturbations.slice(0, offset, offset + n).copy_(delta);
  result.norms.slice(0, offset, offset + n).copy_(row_norms(delta));
  result.iterations.slice(0, offset, offset + n).copy_(iterations);
  result.flipped.slice(0, offset, offset + n).copy_(flipped);
  result.original_labels.slice(0, offset, offset + n).copy_(original);
  result.adversarial_labels.slice(0, offset, offset + n).copy_(model.forward(adversarial).argmax(1));
}

}  // namespace

void DeepFoolOptions::check() const {
  RL_CHECK(candidates >= 2, "DeepFool candidates must be >= 2, got ", candidates);
  RL_CHECK(overshoot >= 0, "DeepFool overshoot must be >= 0, got ", overshoot);
  RL_CHECK(max_iterations >= 1, "DeepFool max iterations must be >= 1, got ", max_iterations);
  RL_CHECK(batch_size >= 1, "DeepFool batch size must be >= 1, got ", batch_size);
}

nlohmann::json DeepFoolOptions::to_json() const {
  return {{"candidates", candidates},         {"overshoot", overshoot},
          {"max_iterations", max_iterations}, {"clip", clip},
          {"batch_size", batch_size},         {"subspace", static_cast<bool>(projector)}};
}

DeepFoolResult deepfool(Model& model, const at::Tensor& images, const DeepFoolOptions& options,
                        const ProgressCallback& progress) {
  options.check();
  check_images(images, model.info().input_shape, "DeepFool input");
  // Each sample's search is its own: a data-parallel run splits the samples (core/distributed.h).
  const std::vector<at::Tensor> rows = distributed::shard_rows(
      images.size(0), progress, [&](std::int64_t first, std::int64_t last, const ProgressCallback& share_progress) {
        const std::int64_t n = last - first;
        const at::Tensor share = images.slice(0, first, last);
        const auto long_options = at::TensorOptions().dtype(at::kLong).device(images.device());
        DeepFoolResult result{at::empty_like(share),        at::empty({n}, images.options()),
                              at::empty({n}, long_options), at::empty({n}, long_options.dtype(at::kBool)),
                              at::empty({n}, long_options), at::empty({n}, long_options)};
        // A subspace projector is told the rows' indices in the whole input.
        DeepFoolOptions shifted = options;
        if (options.projector && first > 0) {
          shifted.projector = [&](const at::Tensor& w, const at::Tensor& r) { return options.projector(w, r + first); };
        }
        for (const auto [start, end] : batches(n, options.batch_size)) {
          deepfool_chunk(model, share.slice(0, start, end).detach(), start, shifted, result);
          report(share_progress, {"deepfool", end, n, ""});
        }
        return std::vector<at::Tensor>{result.perturbations, result.norms,           result.iterations,
                                       result.flipped,       result.original_labels, result.adversarial_labels};
      });
  return {rows[0], rows[1], rows[2], rows[3], rows[4], rows[5]};
}

}  // namespace robustlens
