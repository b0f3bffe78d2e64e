// Gradient attributions: saliency, input×gradient, integrated gradients and
// SmoothGrad, batched, with the post-processing the interpretation analyses
// share (absolute value, channel sum, L1 normalisation).
//
// Second derivatives: every method here honours `create_graph`. With it set
// and an input that requires grad, the returned map is a differentiable
// function of the input (double backpropagation; UPI differentiates through
// it). Without it, maps are detached.
#pragma once

#include "robustlens/core/model.h"
#include "robustlens/core/options.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace robustlens {

enum class AttributionMethod { saliency, input_x_gradient, integrated_gradients, smoothgrad };
AttributionMethod parse_attribution_method(const std::string& name);
std::string to_string(AttributionMethod method);

struct AttributionOptions {
  AttributionMethod method = AttributionMethod::saliency;
  /// Differentiate the softmax probability of the target instead of its logit
  /// (on a ReLU network the logit gradient is piecewise constant).
  bool softmax = false;
  /// integrated_gradients: Riemann steps (right endpoints m/S, m = 1..S) and a constant baseline image.
  std::int64_t steps = 32;
  double baseline = 0.0;
  /// smoothgrad: noise standard deviation (pixel units) and number of noisy copies.
  double noise = 0.15;
  std::int64_t noise_samples = 25;
  /// Rows (sample × step or sample × copy) per model pass: bounds memory.
  std::int64_t batch_size = 512;
  /// Keep the graph so that the map can be differentiated with respect to the input.
  bool create_graph = false;

  RL_SETTER(method)
  RL_SETTER(softmax)
  RL_SETTER(steps)
  RL_SETTER(baseline)
  RL_SETTER(noise)
  RL_SETTER(noise_samples)
  RL_SETTER(batch_size)
  RL_SETTER(create_graph)

  void check() const;
  nlohmann::json to_json() const;
};

/// Raw attribution maps N×C×H×W for the classes `targets` (int64 N). SmoothGrad's noise draws from
/// `generator` (core/random.h), which it needs; the other methods draw nothing.
at::Tensor attribute(Model& model, const at::Tensor& images, const at::Tensor& targets,
                     const AttributionOptions& options, const at::Generator& generator = {});

/// |map| summed over channels and divided by its L1 norm: N×H×W maps that sum
/// to 1 (an all-zero map stays zero). Differentiable.
at::Tensor normalise_maps(const at::Tensor& raw_maps);

}  // namespace robustlens
