#include "robustlens/attacks/minimal_perturbation.h"

#include "robustlens/core/distributed.h"

#include "robustlens/core/batches.h"
#include "robustlens/core/error.h"
#include "robustlens/core/files.h"

#include <cmath>
#include <limits>
#include <sstream>

namespace robustlens {
namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

/// The minimum so far and who found it; `offer` checks candidates and keeps the smaller ones.
class Minimum {
 public:
  Minimum(Model& model, const at::Tensor& images, const at::Tensor& labels, const MinimalPerturbationOptions& options)
      : model_(model),
        images_(images),
        labels_(labels),
        options_(options),
        perturbations_(at::zeros_like(images)),
        norms_(at::full({images.size(0)}, kInfinity, images.options().dtype(at::kDouble))),
        found_by_(at::full({images.size(0)}, -1, images.options().dtype(at::kLong))) {}

  /// Checks each sample's perturbation (one forward pass per batch) and records it under `attack`. With
  /// `shrink`, a perturbation that fools the model is first scaled down to the boundary along its own ray
  /// (bisection of t in x + t·δ, t <= 1): an attack that overshoots (DeepFool's step, PGD at a fixed radius)
  /// then counts at the distance its direction needs.
  void offer(const std::string& attack, const at::Tensor& perturbations, bool shrink = false) {
    RL_CHECK(perturbations.sizes() == images_.sizes(), "attack '", attack, "' gave perturbations of shape ",
             perturbations.sizes(), " for images ", images_.sizes());
    // Each sample's check is its own: a data-parallel run splits the samples (core/distributed.h).
    const std::vector<at::Tensor> rows = distributed::shard_rows(
        images_.size(0), {}, [&](std::int64_t first, std::int64_t last, const ProgressCallback&) {
          at::Tensor deltas = at::empty_like(images_.slice(0, first, last));
          at::Tensor checked = at::empty({last - first}, norms_.options());
          at::NoGradGuard no_grad;
          for (const auto [start, end] : batches(last - first, options_.batch_size)) {
            checked.slice(0, start, end)
                .copy_(check(images_.slice(0, first + start, first + end), labels_.slice(0, first + start, first + end),
                             perturbations.slice(0, first + start, first + end), shrink, deltas.slice(0, start, end)));
          }
          return std::vector<at::Tensor>{deltas, checked};
        });
    const at::Tensor &delta = rows[0], &checked = rows[1];
    const at::Tensor smaller = checked < norms_;  // +inf where the perturbation did not fool the model
    norms_ = at::where(smaller, checked, norms_);
    perturbations_ = at::where(per_sample_view(smaller, delta), delta, perturbations_);
    found_by_.masked_fill_(smaller, static_cast<std::int64_t>(attacks_.size()));
    attacks_.push_back(attack);
    per_attack_.push_back(checked);
  }

  const at::Tensor& norms() const { return norms_; }
  const at::Tensor& perturbations() const { return perturbations_; }

  MinimalPerturbationResult result() const {
    MinimalPerturbationResult result;
    result.attacks = attacks_;
    result.perturbations = perturbations_;
    result.norms = norms_;
    result.found_by = found_by_;
    result.per_attack_norms = at::stack(per_attack_, 1);
    return result;
  }

 private:
  /// One batch of offer(): writes the checked (clipped, with `shrink` scaled down) perturbations into `deltas`
  /// and returns their norms where they fool the model, +inf elsewhere.
  at::Tensor check(const at::Tensor& x0, const at::Tensor& y, const at::Tensor& perturbations, bool shrink,
                   at::Tensor deltas) {
    at::Tensor delta = x0 + perturbations.to(x0.device(), x0.scalar_type());
    if (options_.clip) delta = delta.clamp(0.0, 1.0);
    delta = delta - x0;
    const at::Tensor fooled = model_.forward(x0 + delta).argmax(1).ne(y);
    const at::Tensor rows = fooled.nonzero().squeeze(1);
    if (shrink && rows.numel() > 0) {
      // Only the perturbations that fool the model are searched along their ray.
      const at::Tensor x = x0.index_select(0, rows), target = y.index_select(0, rows),
                       ray = delta.index_select(0, rows);
      at::Tensor low = at::zeros({rows.numel()}, x0.options()), high = at::ones_like(low);
      for (std::int64_t step = 0; step < options_.ray_search_steps; ++step) {
        const at::Tensor middle = (low + high) / 2;
        const at::Tensor adversarial = model_.forward(x + ray * per_sample_view(middle, ray)).argmax(1).ne(target);
        high = at::where(adversarial, middle, high);
        low = at::where(adversarial, low, middle);
      }
      delta = delta.index_copy(0, rows, ray * per_sample_view(high, ray));
    }
    deltas.copy_(delta);
    const at::Tensor norms = perturbation_norms(delta, options_.norm).to(at::kDouble);
    return at::where(fooled, norms, at::full_like(norms, kInfinity));
  }

  Model& model_;
  const at::Tensor& images_;
  const at::Tensor& labels_;
  const MinimalPerturbationOptions& options_;
  at::Tensor perturbations_, norms_, found_by_;
  std::vector<std::string> attacks_;
  std::vector<at::Tensor> per_attack_;
};

/// PGD at radii halfway between a lower bracket (0 at first) and the smallest perturbation found,
/// for every correctly classified sample with a finite minimum; success lowers the minimum, failure
/// raises the bracket.
at::Tensor bisection_perturbations(Model& model, const at::Tensor& images, const at::Tensor& labels,
                                   const Minimum& minimum, const MinimalPerturbationOptions& options,
                                   const ProgressCallback& progress) {
  at::Tensor best = at::zeros_like(images);
  const at::Tensor active = at::isfinite(minimum.norms()).logical_and(minimum.norms() > 0).nonzero().squeeze(1);
  if (active.numel() == 0) return best;
  const at::Tensor x = images.index_select(0, active), y = labels.index_select(0, active);
  const at::Tensor upper = minimum.norms().index_select(0, active);
  // From the image itself: a random start spends part of the radius on directions no step removes.
  const PgdOptions pgd = PgdOptions()
                             .set_norm(options.norm)
                             .set_steps(options.bisection_steps)
                             .set_clip(options.clip)
                             .set_random_start(false);
  // Each sample's bisection is its own: a data-parallel run splits the samples (core/distributed.h).
  const at::Tensor found =
      distributed::shard_rows(
          x.size(0), progress,
          [&](std::int64_t first, std::int64_t last, const ProgressCallback& share_progress) {
            at::Tensor high = upper.slice(0, first, last).clone();
            at::Tensor low = at::zeros_like(high);
            at::Tensor share_found = at::zeros_like(x.slice(0, first, last));
            for (std::int64_t round = 0; round < options.bisection_rounds; ++round) {
              const at::Tensor middle = (low + high) / 2;
              for (const auto [start, end] : batches(last - first, options.batch_size)) {
                const at::Tensor x0 = x.slice(0, first + start, first + end),
                                 y0 = y.slice(0, first + start, first + end);
                const at::Tensor adversarial = pgd_attack(model, x0, y0, pgd, middle.slice(0, start, end));
                at::NoGradGuard no_grad;
                const at::Tensor fooled = model.forward(adversarial).argmax(1).ne(y0);
                const at::Tensor delta = adversarial - x0;
                const at::Tensor norms = perturbation_norms(delta, options.norm).to(at::kDouble);
                high.slice(0, start, end)
                    .copy_(at::where(fooled, at::minimum(norms, high.slice(0, start, end)), high.slice(0, start, end)));
                low.slice(0, start, end)
                    .copy_(at::where(fooled, low.slice(0, start, end), middle.slice(0, start, end)));
                share_found.slice(0, start, end)
                    .copy_(at::where(per_sample_view(fooled, delta), delta, share_found.slice(0, start, end)));
              }
              report(share_progress, {"pgd bisection", round + 1, options.bisection_rounds, ""});
            }
            return std::vector<at::Tensor>{share_found};
          })
          .front();
  best.index_copy_(0, active, found);
  return best;
}

}  // namespace

DeepFoolOptions MinimalPerturbationOptions::deepfool_member_options() const {
  return DeepFoolOptions(deepfool_options).set_batch_size(batch_size);
}

FmnOptions MinimalPerturbationOptions::fmn_member_options() const {
  return FmnOptions(fmn_options).set_norm(norm).set_clip(clip).set_batch_size(batch_size);
}

FmnOptions MinimalPerturbationOptions::long_fmn_member_options() const {
  return FmnOptions().set_steps(long_fmn_steps).set_norm(norm).set_clip(clip).set_batch_size(batch_size);
}

void MinimalPerturbationOptions::check() const {
  RL_CHECK(!deepfool || norm == Norm::l2, "minimal perturbations: DeepFool measures L2 only; turn it off for ",
           to_string(norm));
  if (deepfool) deepfool_options.check();
  if (fmn) fmn_options.resolved();
  RL_CHECK(long_fmn_steps >= 0, "long FMN steps must be >= 0, got ", long_fmn_steps);
  RL_CHECK(bisection_rounds >= 0, "PGD bisection rounds must be >= 0, got ", bisection_rounds);
  RL_CHECK(bisection_steps >= 1, "PGD bisection steps must be >= 1, got ", bisection_steps);
  RL_CHECK(ray_search_steps >= 0, "ray search steps must be >= 0, got ", ray_search_steps);
  RL_CHECK(overestimate_factor >= 1 && std::isfinite(overestimate_factor),
           "the DeepFool overestimate factor must be >= 1, got ", overestimate_factor);
  RL_CHECK(warning_share >= 0 && warning_share <= 1, "the warning share must lie in [0,1], got ", warning_share);
  RL_CHECK(batch_size >= 1, "batch size must be >= 1, got ", batch_size);
}

nlohmann::json MinimalPerturbationOptions::to_json() const {
  return {{"norm", to_string(norm)},
          {"clip", clip},
          {"counted_against", "the true label (0 for a misclassified image)"},
          {"deepfool", deepfool ? deepfool_member_options().to_json() : nlohmann::json(false)},
          {"fmn", fmn ? fmn_member_options().resolved().to_json() : nlohmann::json(false)},
          {"pgd_bisection",
           {{"rounds", bisection_rounds},
            {"steps", bisection_steps},
            {"restarts", 1},
            {"step_size", "2.5*radius/steps"},
            {"start", "the image"}}},
          {"fmn_long", long_fmn_steps > 0 ? long_fmn_member_options().resolved().to_json() : nlohmann::json(false)},
          {"fmn_long_runs_on", "the correctly classified images no other member fooled, from the image"},
          {"ray_search_steps", ray_search_steps},
          {"overestimate_factor", overestimate_factor},
          {"warning_share", warning_share},
          {"batch_size", batch_size}};
}

at::Tensor MinimalPerturbationResult::within(double eps) const {
  // A PGD adversarial projected onto the eps-sphere in float may lie a rounding error outside it.
  return norms.le(eps * (1 + 1e-5));
}

double MinimalPerturbationResult::share_within(double eps) const {
  return within(eps).to(at::kDouble).mean().item<double>();
}

std::string MinimalPerturbationResult::warning(const MinimalPerturbationOptions& options) const {
  if (!gradient_masking_warning) return "";
  std::ostringstream text;
  text << "DeepFool overestimates the minimal perturbation more than " << options.overestimate_factor << "x on "
       << static_cast<int>(std::round(100 * deepfool_overestimate_share)) << "% of " << deepfool_compared
       << " samples (more than " << static_cast<int>(std::round(100 * options.warning_share))
       << "%): its linearisation misleads on this model (gradient masking or strong curvature); trust the "
          "ensemble's minimum, not DeepFool's distance";
  return text.str();
}

nlohmann::json MinimalPerturbationResult::found_by_counts() const {
  nlohmann::json counts = nlohmann::json::object();
  const at::Tensor who = found_by.to(at::kCPU);
  for (std::size_t a = 0; a < attacks.size(); ++a)
    counts[attacks[a]] = who.eq(static_cast<std::int64_t>(a)).sum().item<std::int64_t>();
  counts["none"] = who.eq(-1).sum().item<std::int64_t>();
  return counts;
}

void MinimalPerturbationResult::to_cpu() {
  for (at::Tensor* t : {&perturbations, &norms, &found_by, &per_attack_norms}) *t = t->to(at::kCPU);
}

nlohmann::json MinimalPerturbationResult::to_json(const std::string& warning) const {
  nlohmann::json names = nlohmann::json::array();
  const at::Tensor who = found_by.to(at::kCPU);
  for (std::int64_t i = 0; i < who.numel(); ++i) {
    const std::int64_t a = who[i].item<std::int64_t>();
    names.push_back(a < 0 ? "none" : attacks[static_cast<std::size_t>(a)]);
  }
  return {{"attacks", attacks},
          {"found_by_counts", found_by_counts()},
          {"not_found", who.eq(-1).sum().item<std::int64_t>()},
          {"deepfool_overestimate_share",
           std::isfinite(deepfool_overestimate_share) ? nlohmann::json(deepfool_overestimate_share) : nlohmann::json()},
          {"deepfool_compared", deepfool_compared},
          {"gradient_masking_warning", warning.empty() ? nlohmann::json() : nlohmann::json(warning)},
          {"infinite_means", "no attack found an adversarial (JSON null)"},
          {"norms", tensor_to_json(norms)},
          {"found_by", names}};
}

MinimalPerturbationResult minimal_perturbations(Model& model, const at::Tensor& images, const at::Tensor& labels,
                                                const MinimalPerturbationOptions& options,
                                                const std::vector<CandidatePerturbations>& given,
                                                const ProgressCallback& progress) {
  options.check();
  check_images(images, model.info().input_shape, "minimal perturbation input");
  RL_CHECK(labels.dim() == 1 && labels.size(0) == images.size(0), "minimal perturbations: one label per image (",
           images.size(0), ") expected, got shape ", labels.sizes());
  const at::Tensor x = images.detach();
  const at::Tensor y = labels.to(x.device(), at::kLong);
  Minimum minimum(model, x, y, options);
  minimum.offer("clean", at::zeros_like(x));
  DeepFoolResult deepfool_result;
  if (options.deepfool) {
    deepfool_result = deepfool(model, x, options.deepfool_member_options(), progress);
    minimum.offer("deepfool", deepfool_result.perturbations, /*shrink=*/true);
  }
  for (const CandidatePerturbations& candidate : given)
    minimum.offer(candidate.name, candidate.perturbations, /*shrink=*/true);
  if (options.fmn) {
    // Warm-started from the smallest adversarial so far (the image itself where there is none), on the
    // images the model still classifies correctly: a misclassified one is at 0 already.
    const FmnOptions fmn = options.fmn_member_options();
    const at::Tensor rows = minimum.norms().gt(0).nonzero().squeeze(1);
    at::Tensor found = at::zeros_like(x);
    if (rows.numel() > 0) {
      found.index_copy_(0, rows,
                        fmn_attack(model, x.index_select(0, rows), y.index_select(0, rows), fmn, progress,
                                   minimum.perturbations().index_select(0, rows))
                            .perturbations);
    }
    minimum.offer("fmn", found);
  }
  if (options.bisection_rounds > 0) {
    minimum.offer("pgd-bisection", bisection_perturbations(model, x, y, minimum, options, progress));
  }
  if (options.long_fmn_steps > 0) {
    const at::Tensor rows = at::isinf(minimum.norms()).nonzero().squeeze(1);
    at::Tensor found = at::zeros_like(x);
    if (rows.numel() > 0) {
      found.index_copy_(0, rows,
                        fmn_attack(model, x.index_select(0, rows), y.index_select(0, rows),
                                   options.long_fmn_member_options(), progress)
                            .perturbations);
    }
    minimum.offer("fmn-long", found);
  }

  MinimalPerturbationResult result = minimum.result();
  result.deepfool = deepfool_result;
  result.deepfool_overestimate_share = std::numeric_limits<double>::quiet_NaN();
  if (options.deepfool) {
    const at::Tensor compared =
        result.norms.gt(0).logical_and(at::isfinite(result.norms)).logical_and(deepfool_result.flipped);
    result.deepfool_compared = compared.sum().item<std::int64_t>();
    if (result.deepfool_compared > 0) {
      const at::Tensor over = deepfool_result.norms.to(at::kDouble) > options.overestimate_factor * result.norms;
      result.deepfool_overestimate_share =
          over.logical_and(compared).sum().item<double>() / static_cast<double>(result.deepfool_compared);
      result.gradient_masking_warning = result.deepfool_overestimate_share > options.warning_share;
    }
  }
  return result;
}

}  // namespace robustlens
