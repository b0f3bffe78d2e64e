#include "robustlens/explain/attributions.h"

#include "robustlens/core/batches.h"
#include "robustlens/core/error.h"
#include "robustlens/core/random.h"

#include <torch/autograd.h>

#include <limits>

namespace robustlens {
namespace {

/// softmax(logits)[target] as exp(−softplus(L)), L = logsumexp over k ≠ target of
/// (z_k − z_target). Its backward only multiplies and adds small positive terms;
/// softmax's own backward computes 1 − p, which rounds to 0 for a confident
/// prediction and leaves rounding noise as the map.
at::Tensor target_probability(const at::Tensor& logits, const at::Tensor& targets) {
  if (logits.size(1) == 1) return at::ones({logits.size(0)}, logits.options());  // one class: p = 1 everywhere
  const at::Tensor column = targets.unsqueeze(1);
  const at::Tensor others =
      (logits - logits.gather(1, column)).scatter(1, column, -std::numeric_limits<double>::infinity());
  return at::exp(-at::softplus(others.logsumexp(1)));
}

/// ∇_z score_target(z) for rows z (M×C×H×W) and targets (M), in chunks of batch_size.
at::Tensor target_gradients(Model& model, const at::Tensor& z, const at::Tensor& targets,
                            const AttributionOptions& options) {
  std::vector<at::Tensor> chunks;
  for (const auto [start, end] : batches(z.size(0), options.batch_size)) {
    at::Tensor rows = z.slice(0, start, end);
    // Without create_graph the rows are fresh leaves; with it they stay attached to the caller's input.
    if (!options.create_graph || !rows.requires_grad()) rows = rows.detach().requires_grad_(true);
    const at::Tensor logits = model.forward(rows), rows_targets = targets.slice(0, start, end);
    const at::Tensor selected =
        (options.softmax ? target_probability(logits, rows_targets) : logits.gather(1, rows_targets.unsqueeze(1)))
            .sum();
    chunks.push_back(torch::autograd::grad({selected}, {rows}, {}, options.create_graph, options.create_graph)[0]);
  }
  return at::cat(chunks);
}

/// Repeats each sample `copies` times along the batch (sample-major).
at::Tensor repeat_rows(const at::Tensor& t, std::int64_t copies) { return t.repeat_interleave(copies, 0); }

/// Mean over groups of `copies` consecutive rows.
at::Tensor mean_of_groups(const at::Tensor& t, std::int64_t copies) {
  std::vector<std::int64_t> shape{t.size(0) / copies, copies};
  shape.insert(shape.end(), t.sizes().begin() + 1, t.sizes().end());
  return t.reshape(shape).mean(1);
}

}  // namespace

AttributionMethod parse_attribution_method(const std::string& name) {
  if (name == "saliency") return AttributionMethod::saliency;
  if (name == "input-x-gradient") return AttributionMethod::input_x_gradient;
  if (name == "ig" || name == "integrated-gradients") return AttributionMethod::integrated_gradients;
  RL_CHECK(name == "smoothgrad", "attribution method: expected saliency, input-x-gradient, ig or smoothgrad, got '",
           name, "'");
  return AttributionMethod::smoothgrad;
}

std::string to_string(AttributionMethod method) {
  switch (method) {
    case AttributionMethod::saliency:
      return "saliency";
    case AttributionMethod::input_x_gradient:
      return "input-x-gradient";
    case AttributionMethod::integrated_gradients:
      return "integrated-gradients";
    case AttributionMethod::smoothgrad:
      return "smoothgrad";
  }
  return "?";
}

void AttributionOptions::check() const {
  RL_CHECK(steps >= 1, "integrated gradients: AttributionOptions.steps must be >= 1, got ", steps);
  RL_CHECK(noise >= 0, "smoothgrad: AttributionOptions.noise must be >= 0, got ", noise);
  RL_CHECK(noise_samples >= 1, "smoothgrad: AttributionOptions.noise_samples must be >= 1, got ", noise_samples);
  RL_CHECK(batch_size >= 1, "attribution batch size must be >= 1, got ", batch_size);
}

nlohmann::json AttributionOptions::to_json() const {
  nlohmann::json json = {{"method", to_string(method)}, {"softmax", softmax}, {"batch_size", batch_size}};
  if (method == AttributionMethod::integrated_gradients) {
    json["steps"] = steps;
    json["baseline"] = baseline;
  }
  if (method == AttributionMethod::smoothgrad) {
    json["noise"] = noise;
    json["noise_samples"] = noise_samples;
  }
  return json;
}

at::Tensor attribute(Model& model, const at::Tensor& images, const at::Tensor& targets,
                     const AttributionOptions& options, const at::Generator& generator) {
  options.check();
  check_images(images, model.info().input_shape, "attribution input");
  RL_CHECK(targets.dim() == 1 && targets.size(0) == images.size(0), "attribution needs one target class per image (",
           images.size(0), "), got ", targets.sizes());
  at::Tensor maps;
  switch (options.method) {
    case AttributionMethod::saliency:
      maps = target_gradients(model, images, targets, options);
      break;
    case AttributionMethod::input_x_gradient:
      maps = images * target_gradients(model, images, targets, options);
      break;
    case AttributionMethod::integrated_gradients: {
      const std::int64_t s = options.steps;
      const at::Tensor alphas =
          at::arange(1, s + 1, images.options()).div(static_cast<double>(s)).repeat(images.size(0)).view({-1, 1, 1, 1});
      const at::Tensor difference = images - options.baseline;
      const at::Tensor path = options.baseline + alphas * repeat_rows(difference, s);
      maps = difference * mean_of_groups(target_gradients(model, path, repeat_rows(targets, s), options), s);
      break;
    }
    case AttributionMethod::smoothgrad: {
      const std::int64_t s = options.noise_samples;
      const at::Tensor copies = repeat_rows(images, s);
      RL_CHECK(generator.defined(), "SmoothGrad draws its noise from a generator: pass one (core/random.h)");
      const at::Tensor noisy = copies + options.noise * random_normal(copies.sizes(), generator, copies.options());
      maps = mean_of_groups(target_gradients(model, noisy, repeat_rows(targets, s), options), s);
      break;
    }
  }
  return options.create_graph ? maps : maps.detach();
}

at::Tensor normalise_maps(const at::Tensor& raw_maps) {
  RL_CHECK(raw_maps.dim() == 4, "maps must be N×C×H×W, got ", raw_maps.sizes());
  const at::Tensor summed = raw_maps.abs().sum(1);
  return summed / summed.flatten(1).sum(1).clamp_min(1e-30).view({-1, 1, 1});
}

}  // namespace robustlens
