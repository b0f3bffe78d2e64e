#include "robustlens/analyses/manifold.h"

#include "robustlens/core/distributed.h"
#include "robustlens/core/error.h"
#include "robustlens/core/random.h"
#include "robustlens/explain/attributions.h"

#include <torch/autograd.h>

#include <cmath>
#include <limits>

namespace robustlens {
namespace {

/// Accumulates per-image values of several curves (one column per point).
class CurveAccumulator {
 public:
  explicit CurveAccumulator(std::size_t points) : sum_(points, 0.0), sum_squares_(points, 0.0) {}

  /// Per-image values (1-D tensor) of point `point`.
  void add(std::size_t point, const at::Tensor& values) {
    const at::Tensor v = values.to(at::kDouble).cpu();
    sum_[point] += v.sum().item<double>();
    sum_squares_[point] += v.pow(2).sum().item<double>();
    if (point == 0) count_ += v.size(0);
  }

  /// Adds every rank's sums up (core/distributed.h): each rank added its share of the images.
  void add_up_over_ranks() {
    std::vector<double> sums = sum_;
    sums.insert(sums.end(), sum_squares_.begin(), sum_squares_.end());
    sums.push_back(static_cast<double>(count_));
    sums = distributed::sum_over_ranks(sums);
    const auto points = static_cast<std::ptrdiff_t>(sum_.size());
    sum_.assign(sums.begin(), sums.begin() + points);
    sum_squares_.assign(sums.begin() + points, sums.begin() + 2 * points);
    count_ = static_cast<std::int64_t>(sums.back());
  }

  MeanCurve curve() const {
    MeanCurve curve;
    const double n = static_cast<double>(count_);
    for (std::size_t i = 0; i < sum_.size(); ++i) {
      const double mean = sum_[i] / n;
      const double variance = n > 1 ? std::max(0.0, (sum_squares_[i] - n * mean * mean) / (n - 1)) : 0.0;
      curve.mean.push_back(mean);
      curve.standard_error.push_back(std::sqrt(variance / n));
    }
    return curve;
  }

 private:
  std::vector<double> sum_, sum_squares_;
  std::int64_t count_ = 0;
};

nlohmann::json finite_or_null(const std::vector<double>& values) {
  nlohmann::json out = nlohmann::json::array();
  for (const double v : values) out.push_back(std::isfinite(v) ? nlohmann::json(v) : nlohmann::json());
  return out;
}

/// Unit-norm rows (rows of norm 0 stay 0).
at::Tensor unit_rows(const at::Tensor& rows) { return rows / rows.norm(2, {1}, true).clamp_min(1e-30); }

void check_levels(const std::vector<double>& levels, const char* option) {
  RL_CHECK(!levels.empty(), option, " needs at least one value");
  for (const double v : levels)
    RL_CHECK(std::isfinite(v) && v >= 0, option, " values must be finite and >= 0, got ", v);
}

/// Accumulates the per-image first-order sensitivities on and off a subspace.
class FirstOrderAccumulator {
 public:
  /// The gradient g N×D, its part in the subspace P·g, and the subspace's dimension per image (N or one value).
  void add(const at::Tensor& gradient, const at::Tensor& projected, const at::Tensor& dim, std::int64_t total_dim) {
    const at::Tensor along = projected.pow(2).sum(1), all = gradient.pow(2).sum(1);
    on_.add(0, along / dim);
    off_.add(0, (all - along).clamp_min(0) / (total_dim - dim));
  }
  void add_up_over_ranks() {
    on_.add_up_over_ranks();
    off_.add_up_over_ranks();
  }
  FirstOrderSensitivity result() const {
    const MeanCurve on = on_.curve(), off = off_.curve();
    return {on.mean[0], on.standard_error[0], off.mean[0], off.standard_error[0]};
  }

 private:
  CurveAccumulator on_{1}, off_{1};
};

/// From one forward pass, for the predicted classes ŷ: ∇ logit_ŷ (the
/// reference's input gradient, N×C×H×W) and ∇ log softmax(f(x))_ŷ (N×D, float64).
std::pair<at::Tensor, at::Tensor> predicted_class_gradients(Model& model, const at::Tensor& images) {
  const at::Tensor x = images.detach().requires_grad_(true);
  const at::Tensor logits = model.forward(x);
  check_logits(logits, x.size(0), "the model");
  const at::Tensor predicted = logits.argmax(1, true).detach();
  // Rows do not interact, so the gradient of a sum over rows is each row's own gradient.
  const at::Tensor logit = torch::autograd::grad({logits.gather(1, predicted).sum()}, {x}, {}, true)[0];
  const at::Tensor log_probability =
      torch::autograd::grad({at::log_softmax(logits.to(at::kDouble), 1).gather(1, predicted).sum()}, {x})[0];
  return {logit.detach(), log_probability.detach().flatten(1).to(at::kDouble)};
}

}  // namespace

nlohmann::json FirstOrderSensitivity::to_json() const {
  return {{"gradient_of", "log softmax of the predicted class"},        {"on_manifold", on_manifold},
          {"on_manifold_standard_error", on_manifold_standard_error},   {"off_manifold", off_manifold},
          {"off_manifold_standard_error", off_manifold_standard_error}, {"off_to_on_ratio", off_to_on_ratio()}};
}

at::Tensor softmax_l1_change(const at::Tensor& logits, const at::Tensor& reference_logits) {
  return (logits.softmax(1) - reference_logits.softmax(1)).abs().sum(1);
}

at::Tensor predicted_logit_gradient(Model& model, const at::Tensor& images) {
  at::Tensor predicted;
  {
    at::NoGradGuard no_grad;
    predicted = model.forward(images).argmax(1);
  }
  return attribute(model, images, predicted, AttributionOptions());
}

std::vector<double> log_spaced(double first_exponent, double last_exponent, std::int64_t count) {
  std::vector<double> values;
  for (std::int64_t i = 0; i < count; ++i) {
    const double t = count == 1 ? 0.0 : static_cast<double>(i) / static_cast<double>(count - 1);
    values.push_back(std::pow(10.0, first_exponent + t * (last_exponent - first_exponent)));
  }
  return values;
}

nlohmann::json MeanCurve::to_json() const { return {{"mean", mean}, {"standard_error", standard_error}}; }

std::vector<double> DistractorOptions::default_noise_levels() {
  std::vector<double> levels{0.0};
  for (const double s : log_spaced(-2, 1, 30)) levels.push_back(s);
  return levels;
}

void DistractorOptions::check() const {
  check_levels(noise_levels, "DistractorOptions.noise_levels");
  RL_CHECK(draws >= 1, "DistractorOptions.draws must be >= 1, got ", draws);
  RL_CHECK(batch_size >= 1, "DistractorOptions.batch_size must be >= 1, got ", batch_size);
}

nlohmann::json DistractorOptions::to_json() const {
  return {{"noise_levels", noise_levels},
          {"draws", draws},
          {"batch_size", batch_size},
          {"metric", "L1 distance of softmax outputs"},
          {"clipped", false}};
}

nlohmann::json DistractorResult::to_json() const {
  return {{"noise_levels", noise_levels},
          {"item_half", item_half.to_json()},
          {"distractor_half", distractor_half.to_json()},
          {"whole_image", whole_image.to_json()},
          {"relative_robustness", finite_or_null(relative_robustness)},
          {"item_gradient_share", item_gradient_share},
          {"first_order", first_order.to_json()},
          {"images", images}};
}

namespace {

/// The distractor measures' running sums over the images of a pass.
struct DistractorSums {
  explicit DistractorSums(std::size_t levels) : item(levels), distractor(levels), whole(levels) {}
  CurveAccumulator item, distractor, whole;
  double share_sum = 0;
  std::int64_t share_count = 0;
  FirstOrderAccumulator first_order;

  void add_up_over_ranks() {
    item.add_up_over_ranks();
    distractor.add_up_over_ranks();
    whole.add_up_over_ranks();
    first_order.add_up_over_ranks();
    const std::vector<double> shares = distributed::sum_over_ranks({share_sum, static_cast<double>(share_count)});
    share_sum = shares[0];
    share_count = static_cast<std::int64_t>(shares[1]);
  }
};

}  // namespace

DistractorResult analyse_distractor_robustness(Model& model, const Dataset& data, const DistractorOptions& options,
                                               const at::Generator& generator, const ProgressCallback& progress) {
  options.check();
  RL_CHECK(data.signal_mask.defined(),
           "the distractor measures need data whose item half is known (dataset spec "
           "distractor:SPEC); '",
           data.name, "' has no signal mask");
  const std::size_t levels = options.noise_levels.size();
  DistractorSums counted(levels);
  const at::Device device = model.device();
  // Each image's measures are its own: a data-parallel run splits every batch (core/distributed.h) and adds the
  // sums up; a batch that every rank computes whole counts on rank 0 alone.
  distributed::for_each_batch_share(
      data.size(), options.batch_size,
      [&](std::int64_t first, std::int64_t last, const distributed::BatchShare& share) {
        DistractorSums uncounted(levels);
        DistractorSums& sums = share.counts ? counted : uncounted;
        const std::int64_t n = last - first;
        const at::Tensor images = data.images.slice(0, first, last).to(device);
        const at::Tensor mask = data.signal_mask.slice(0, first, last).to(device).expand_as(images);

        const auto [gradient, log_probability_gradient] = predicted_class_gradients(model, images);
        const at::Tensor total = gradient.pow(2).flatten(1).sum(1),
                         on_item = (gradient * mask).pow(2).flatten(1).sum(1);
        const at::Tensor nonzero = total > 0;
        sums.share_sum += (on_item / total.clamp_min(1e-30)).masked_select(nonzero).sum().item<double>();
        sums.share_count += nonzero.sum().item<std::int64_t>();
        const at::Tensor flat_mask = mask.flatten(1).to(at::kDouble);
        sums.first_order.add(log_probability_gradient, log_probability_gradient * flat_mask, flat_mask.sum(1),
                             flat_mask.size(1));

        at::NoGradGuard no_grad;
        const at::Tensor clean_logits = model.forward(images);
        // Rows: region (item, glyph, whole) × draw × image.
        const at::Tensor regions = at::stack({mask, 1 - mask, at::ones_like(mask)}).unsqueeze(1);
        const at::Tensor reference = clean_logits.repeat({3 * options.draws, 1});
        for (std::size_t l = 0; l < levels; ++l) {
          const at::Tensor noise = options.noise_levels[l] *
                                   random_normal({3, options.draws, n, images.size(1), images.size(2), images.size(3)},
                                                 generator, images.options(), /*row_dim=*/2);
          const at::Tensor perturbed = (images + noise * regions).flatten(0, 2);
          const at::Tensor change =
              softmax_l1_change(model.forward(perturbed), reference).view({3, options.draws, n}).mean(1);
          sums.item.add(l, change[0]);
          sums.distractor.add(l, change[1]);
          sums.whole.add(l, change[2]);
        }
      },
      progress, "distractor noise");
  counted.add_up_over_ranks();
  const auto& [item, distractor, whole, share_sum, share_count, first_order] = counted;
  DistractorResult result;
  result.noise_levels = options.noise_levels;
  result.item_half = item.curve();
  result.distractor_half = distractor.curve();
  result.whole_image = whole.curve();
  for (std::size_t l = 0; l < levels; ++l) {
    // Without noise both changes are zero but for rounding (the perturbed rows run in a larger batch than the
    // clean ones), and their ratio would mean nothing.
    const double denominator = result.distractor_half.mean[l];
    result.relative_robustness.push_back(options.noise_levels[l] > 0 && denominator > 0
                                             ? result.item_half.mean[l] / denominator
                                             : std::numeric_limits<double>::quiet_NaN());
  }
  result.item_gradient_share =
      share_count > 0 ? share_sum / static_cast<double>(share_count) : std::numeric_limits<double>::quiet_NaN();
  result.first_order = first_order.result();
  result.images = data.size();
  return result;
}

void TangentOptions::check() const {
  check_levels(eps, "TangentOptions.eps");
  RL_CHECK(draws >= 1, "TangentOptions.draws must be >= 1, got ", draws);
  RL_CHECK(batch_size >= 1, "TangentOptions.batch_size must be >= 1, got ", batch_size);
}

nlohmann::json TangentOptions::to_json() const {
  return {{"eps", eps},
          {"draws", draws},
          {"batch_size", batch_size},
          {"metric", "L1 distance of softmax outputs"},
          {"clipped", false}};
}

double TangentResult::random_baseline() const {
  return std::sqrt(static_cast<double>(tangent_dim) / static_cast<double>(input_dim));
}

nlohmann::json TangentResult::to_json() const {
  return {{"eps", eps},
          {"on_manifold", on_manifold.to_json()},
          {"off_manifold", off_manifold.to_json()},
          {"tangent_fraction", tangent_fraction},
          {"tangent_fraction_standard_error", tangent_fraction_standard_error},
          {"first_order", first_order.to_json()},
          {"random_baseline", random_baseline()},
          {"tangent_dim", tangent_dim},
          {"input_dim", input_dim},
          {"images", images}};
}

namespace {

/// One tangent-space estimate's running measures over the chunks of a pass.
struct TangentAccumulator {
  CurveAccumulator on, off, fraction{1};
  FirstOrderAccumulator first_order;
  std::int64_t tangent_dim = 0;

  explicit TangentAccumulator(std::size_t points) : on(points), off(points) {}

  /// Adds one chunk: `tangents` N×D×k, `gradients` the predicted class's logit and log-probability gradients.
  void add(Model& model, const at::Tensor& images, const at::Tensor& tangents,
           const std::pair<at::Tensor, at::Tensor>& gradients, const TangentOptions& options,
           const at::Generator& generator) {
    const std::int64_t n = images.size(0), input_dim = images[0].numel();
    tangent_dim = tangents.size(2);
    const auto project = [&](const at::Tensor& rows) {
      return at::bmm(tangents, at::bmm(tangents.transpose(1, 2), rows.unsqueeze(2))).squeeze(2);
    };
    const at::Tensor gradient = gradients.first.flatten(1);
    const at::Tensor& log_probability_gradient = gradients.second;
    const at::Tensor gradient_norm = gradient.norm(2, {1});
    const at::Tensor nonzero = gradient_norm > 0;
    fraction.add(0, (project(gradient).norm(2, {1}) / gradient_norm.clamp_min(1e-30)).masked_select(nonzero));
    first_order.add(log_probability_gradient,
                    project(log_probability_gradient.to(tangents.scalar_type())).to(at::kDouble),
                    at::full({1}, static_cast<double>(tangent_dim), log_probability_gradient.options()), input_dim);

    at::NoGradGuard no_grad;
    const at::Tensor clean_logits = model.forward(images);
    const at::Tensor reference = clean_logits.repeat({2 * options.draws, 1});
    // Rows: (on, off) × draw × image.
    std::vector<at::Tensor> on_rows, off_rows;
    for (std::int64_t d = 0; d < options.draws; ++d) {
      const at::Tensor direction = random_normal({n, input_dim}, generator, images.options());
      const at::Tensor tangent_part = project(direction);
      on_rows.push_back(unit_rows(tangent_part));
      off_rows.push_back(unit_rows(direction - tangent_part));
    }
    const at::Tensor repeated = images.repeat({2 * options.draws, 1, 1, 1});
    const at::Tensor directions = at::cat({at::cat(on_rows), at::cat(off_rows)}).view(repeated.sizes());
    for (std::size_t p = 0; p < options.eps.size(); ++p) {
      const at::Tensor change = softmax_l1_change(model.forward(repeated + options.eps[p] * directions), reference)
                                    .view({2, options.draws, n})
                                    .mean(1);
      on.add(p, change[0]);
      off.add(p, change[1]);
    }
  }

  void add_up_over_ranks() {
    on.add_up_over_ranks();
    off.add_up_over_ranks();
    fraction.add_up_over_ranks();
    first_order.add_up_over_ranks();
  }

  TangentResult result(const TangentOptions& options, const Dataset& data) const {
    TangentResult result;
    result.eps = options.eps;
    result.on_manifold = on.curve();
    result.off_manifold = off.curve();
    const MeanCurve fractions = fraction.curve();
    result.tangent_fraction = fractions.mean[0];
    result.tangent_fraction_standard_error = fractions.standard_error[0];
    result.first_order = first_order.result();
    result.tangent_dim = tangent_dim;
    result.input_dim = data.images[0].numel();
    result.images = data.size();
    return result;
  }
};

}  // namespace

TangentComparison analyse_tangent_spaces(Model& model, const Dataset& data,
                                         const std::map<std::string, TangentBasis>& bases,
                                         const TangentOptions& options, const at::Generator& generator,
                                         const ProgressCallback& progress) {
  options.check();
  RL_CHECK(!bases.empty(), "tangent spaces: no basis to measure");
  const auto fresh = [&] {
    std::map<std::string, TangentAccumulator> accumulators;
    for (const auto& entry : bases) accumulators.emplace(entry.first, TangentAccumulator(options.eps.size()));
    return accumulators;
  };
  std::map<std::string, TangentAccumulator> accumulators = fresh();
  double agreement_sum = 0;
  bool comparable = bases.size() == 2;
  const std::int64_t input_dim = data.images[0].numel();
  const at::Device device = model.device();
  // Each image's measures are its own: a data-parallel run splits every batch (core/distributed.h) and adds the
  // sums up; a batch that every rank computes whole counts on rank 0 alone.
  distributed::for_each_batch_share(
      data.size(), options.batch_size,
      [&](std::int64_t first, std::int64_t last, const distributed::BatchShare& share) {
        std::map<std::string, TangentAccumulator> uncounted;
        if (!share.counts) uncounted = fresh();
        auto& into = share.counts ? accumulators : uncounted;
        const std::int64_t n = last - first;
        const at::Tensor images = data.images.slice(0, first, last).to(device);
        const at::Tensor labels = data.labels.slice(0, first, last).to(device);
        const auto gradients = predicted_class_gradients(model, images);
        std::vector<at::Tensor> chunk_bases;
        for (const auto& [name, basis] : bases) {
          at::Tensor tangents = basis(images, labels);
          RL_CHECK(tangents.dim() == 3 && tangents.size(0) == n && tangents.size(1) == input_dim, "tangent basis '",
                   name, "': expected ", n, "×", input_dim, "×k, got ", tangents.sizes());
          into.at(name).add(model, images, tangents, gradients, options, generator);
          chunk_bases.push_back(std::move(tangents));
        }
        // Each chunk's bases are computed once: the measures above and the agreement share them.
        comparable = comparable && chunk_bases.front().size(2) == chunk_bases.back().size(2);
        if (comparable && share.counts) {
          agreement_sum +=
              subspace_agreement(chunk_bases.front(), chunk_bases.back().to(chunk_bases.front().scalar_type())) *
              static_cast<double>(n);
        }
      },
      progress, "tangent directions");
  for (auto& [name, accumulator] : accumulators) accumulator.add_up_over_ranks();
  agreement_sum = distributed::sum_over_ranks({agreement_sum}).front();
  TangentComparison comparison;
  for (const auto& [name, accumulator] : accumulators)
    comparison.results.emplace(name, accumulator.result(options, data));
  if (comparable) comparison.agreement = agreement_sum / static_cast<double>(data.size());
  return comparison;
}

TangentResult analyse_tangent_sensitivity(Model& model, const Dataset& data, const TangentBasis& basis,
                                          const TangentOptions& options, const at::Generator& generator,
                                          const ProgressCallback& progress) {
  return analyse_tangent_spaces(model, data, {{"basis", basis}}, options, generator, progress).results.at("basis");
}

nlohmann::json TangentComparison::to_json() const {
  nlohmann::json json;
  for (const auto& [name, result] : results) json[name] = result.to_json();
  if (agreement) {
    json["subspace_agreement"] = {{"vae_vs_local_pca", *agreement}, {"random_expectation", random_agreement()}};
  }
  return json;
}

double TangentComparison::random_agreement() const {
  const TangentResult& any = results.begin()->second;
  return static_cast<double>(any.tangent_dim) / static_cast<double>(any.input_dim);
}

}  // namespace robustlens
