#include "robustlens/analyses/alignment.h"

#include "robustlens/core/error.h"
#include "test_support.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/utils.h>

#include <cmath>

namespace robustlens {
namespace {

using testing::expect_error;
using testing::FixedFunctionModel;
using testing::LinearModel;

/// ∇ log softmax(Wx + b)_y = W_y − Σ_k p_k W_k for a linear model.
at::Tensor linear_log_probability_gradient(const at::Tensor& w, const at::Tensor& b, const at::Tensor& images,
                                           const at::Tensor& labels) {
  const at::Tensor p = at::softmax(images.flatten(1).to(at::kDouble).matmul(w.t()) + b, 1);
  return w.index_select(0, labels) - p.matmul(w);
}

TEST(Alignment, GradientsOfALinearModelHaveTheirClosedForms) {
  torch::manual_seed(0);
  const at::Tensor w = at::randn({3, 144}, at::kDouble), b = at::randn({3}, at::kDouble);
  LinearModel model(w, b);
  const Dataset data = testing::linear_rule_dataset(6, {1, 12, 12}, 3, 0);
  const auto [conditional, used] = alignment_gradient(model, data.images, data.labels, AlignmentPairing::conditional);
  EXPECT_TRUE(at::equal(used, data.labels));
  EXPECT_TRUE(at::allclose(conditional.flatten(1).to(at::kDouble),
                           linear_log_probability_gradient(w, b, data.images, data.labels), 1e-6, 1e-6));
  // Undefined labels: the predicted classes.
  const at::Tensor predicted = (data.images.flatten(1).to(at::kDouble).matmul(w.t()) + b).argmax(1);
  const auto [for_prediction, chosen] = alignment_gradient(model, data.images, {}, AlignmentPairing::bayes);
  EXPECT_TRUE(at::equal(chosen, predicted));
  EXPECT_TRUE(at::allclose(for_prediction.flatten(1).to(at::kDouble),
                           linear_log_probability_gradient(w, b, data.images, predicted), 1e-6, 1e-6));
  const at::Tensor summed = alignment_gradient(model, data.images, data.labels, AlignmentPairing::summed_logits).first;
  EXPECT_TRUE(at::allclose(summed.flatten(1).to(at::kDouble), w.sum(0).expand({6, 144}), 1e-6, 1e-6));
}

TEST(Alignment, PairsEachGradientWithItsScoreAtEveryNoiseLevel) {
  torch::manual_seed(1);
  const at::Tensor w = at::randn({3, 144}, at::kDouble), b = at::zeros({3}, at::kDouble);
  LinearModel model(w, b);
  const Dataset data = testing::linear_rule_dataset(10, {1, 12, 12}, 3, 1);
  // s(x, y) = scale·σ·∇log p(y|x) + c(x)·σ and s(x) = c(x)·σ: the bayes side is exactly along the gradient; the
  // conditional side is too when c = 0.
  const at::Tensor common = at::randn({144}, at::kDouble);
  const auto score_function = [&](double scale, double shared) -> ScoreFunction {
    return [=](const at::Tensor& images, const at::Tensor& labels, double sigma) {
      const at::Tensor unconditional = shared * sigma * common.expand({images.size(0), 144});
      if (!labels.defined()) return unconditional.view(images.sizes());
      return (scale * sigma * linear_log_probability_gradient(w, b, images, labels) + unconditional)
          .view(images.sizes());
    };
  };
  const std::vector<double> sigmas{0.1, 0.5, 2.0};
  const AlignmentOptions options = AlignmentOptions().set_sigmas(sigmas).set_summary_sigma(0.5).set_batch_size(4);
  const AlignmentResult along = analyse_alignment(model, data, score_function(2.5, 0), options);
  ASSERT_EQ(along.per_sigma.size(), 3u);
  for (const AlignmentAtSigma& entry : along.per_sigma) {
    EXPECT_NEAR(entry.mean_cosine, 1.0, 1e-9) << entry.sigma;
    EXPECT_NEAR(entry.mean_ssim, 1.0, 1e-5) << entry.sigma;
    EXPECT_EQ(entry.cosine.numel(), 10);
  }
  EXPECT_EQ(along.summary().sigma, 0.5);
  EXPECT_EQ(along.to_json()["mean_cosine"].get<double>(), along.per_sigma[1].mean_cosine);
  const AlignmentResult against = analyse_alignment(model, data, score_function(-1, 0), options);
  EXPECT_NEAR(against.summary().mean_cosine, -1.0, 1e-9);
  // SSIM is not odd: where a window's mean and its structure both flip sign the
  // two factors stay positive, so a negated map keeps part of its SSIM.
  EXPECT_LT(against.summary().mean_ssim, 0.9);

  // A large shared part: the conditional pairing sees it, the bayes pairing subtracts it.
  const ScoreFunction shared = score_function(1, 50);
  const AlignmentResult conditional = analyse_alignment(model, data, shared, options);
  const AlignmentResult bayes =
      analyse_alignment(model, data, shared, AlignmentOptions(options).set_pairing(AlignmentPairing::bayes));
  EXPECT_LT(std::abs(conditional.summary().mean_cosine), 0.5);
  EXPECT_NEAR(bayes.summary().mean_cosine, 1.0, 1e-9);
  // The summed-logits pairing compares the column sum of W with s(x).
  const at::Tensor total = w.sum(0);
  const AlignmentResult summed =
      analyse_alignment(model, data, shared, AlignmentOptions(options).set_pairing(AlignmentPairing::summed_logits));
  const double expected = total.dot(common).item<double>() / (total.norm() * common.norm()).item<double>();
  EXPECT_NEAR(summed.summary().mean_cosine, expected, 1e-6);  // the gradient comes back in the images' float32
  // Per-class means cover the classes present.
  EXPECT_EQ(along.summary().class_mean_cosine.size(), 3u);
}

/// A linear model plus a·(u·x + sin(v·x)) added to every logit: the same
/// classifier (softmax is unchanged), a different summed-logit gradient.
class GaugeShiftedModel : public FixedFunctionModel {
 public:
  GaugeShiftedModel(at::Tensor w, at::Tensor b, at::Tensor u, at::Tensor v, double a)
      : FixedFunctionModel(w.size(0)), w_(std::move(w)), b_(std::move(b)), u_(std::move(u)), v_(std::move(v)), a_(a) {}
  at::Tensor forward(const at::Tensor& images) override {
    const at::Tensor x = images.flatten(1).to(at::kDouble);
    const at::Tensor shift = a_ * (x.matmul(u_) + at::sin(x.matmul(v_)));
    return x.matmul(w_.t()) + b_ + shift.unsqueeze(1);
  }

 private:
  at::Tensor w_, b_, u_, v_;
  double a_;
};

TEST(Alignment, AShiftOfEveryLogitChangesNoGaugeFreePairing) {
  torch::manual_seed(2);
  const at::Tensor w = at::randn({4, 144}, at::kDouble), b = at::randn({4}, at::kDouble);
  const at::Tensor u = at::randn({144}, at::kDouble), v = at::randn({144}, at::kDouble);
  GaugeShiftedModel plain(w, b, u, v, 0.0), shifted(w, b, u, v, 3.0);
  const Dataset data = testing::linear_rule_dataset(12, {1, 12, 12}, 4, 2);
  const at::Tensor direction = at::randn({4, 144}, at::kDouble), shared = at::randn({144}, at::kDouble);
  const ScoreFunction score = [&](const at::Tensor& images, const at::Tensor& labels, double sigma) {
    const at::Tensor base = (images.flatten(1).to(at::kDouble) - 0.5) * sigma + shared;
    return (labels.defined() ? base + direction.index_select(0, labels) : base).view(images.sizes());
  };
  for (const AlignmentPairing pairing : {AlignmentPairing::conditional, AlignmentPairing::bayes}) {
    for (const bool predicted : {false, true}) {
      const AlignmentOptions options = AlignmentOptions().set_pairing(pairing).set_predicted_label(predicted);
      const AlignmentResult a = analyse_alignment(plain, data, score, options);
      const AlignmentResult c = analyse_alignment(shifted, data, score, options);
      for (std::size_t s = 0; s < a.per_sigma.size(); ++s) {
        EXPECT_TRUE(at::allclose(a.per_sigma[s].cosine, c.per_sigma[s].cosine, 1e-9, 1e-9))
            << alignment_pairing_name(pairing) << " predicted " << predicted << " sigma " << a.per_sigma[s].sigma;
        EXPECT_TRUE(at::allclose(a.per_sigma[s].ssim, c.per_sigma[s].ssim, 1e-5, 1e-5));
      }
    }
  }
  // The summed logits are not gauge-free: the shift moves them.
  const AlignmentOptions summed = AlignmentOptions().set_pairing(AlignmentPairing::summed_logits);
  EXPECT_FALSE(at::allclose(analyse_alignment(plain, data, score, summed).summary().cosine,
                            analyse_alignment(shifted, data, score, summed).summary().cosine, 0, 0.01));
}

/// Images whose [−1, 1] values are N(μ_k, τ²I) for class k (equal priors),
/// with the closed-form scores of the σ-smoothed mixture.
struct IsotropicMixture {
  static constexpr double tau = 0.5;
  at::Tensor means;  // K×D in [−1, 1] units
  std::vector<std::int64_t> shape{1, 16, 16};

  explicit IsotropicMixture(std::int64_t classes) {
    at::Generator generator = at::detail::createCPUGenerator(21);
    // Close means: the posteriors stay soft, so that log p(y|x) has a gradient worth comparing.
    means = 0.05 * at::randn({classes, 256}, generator, at::kDouble);
  }
  Dataset draw(std::int64_t size, std::uint64_t seed) const {
    at::Generator generator = at::detail::createCPUGenerator(seed);
    const at::Tensor labels = at::randint(means.size(0), {size}, generator, at::kLong);
    const at::Tensor values = means.index_select(0, labels) + tau * at::randn({size, 256}, generator, at::kDouble);
    return {"isotropic mixture", ((values + 1) / 2).to(at::kFloat).view({size, 1, 16, 16}), labels,
            numbered_class_names(means.size(0))};
  }
  /// log N(x; μ_k, v·I) up to a constant, N×K, for rows x in [−1, 1] units.
  at::Tensor log_likelihoods(const at::Tensor& rows, double variance) const {
    return -at::cdist(rows, means).square() / (2 * variance);
  }
  /// s_σ(x, y) = −(x − μ_y)/(τ² + σ²); s_σ(x) = Σ_k p_σ(k|x) s_σ(x, k).
  ScoreFunction score() const {
    return [this](const at::Tensor& images, const at::Tensor& labels, double sigma) {
      const double variance = tau * tau + sigma * sigma;
      const at::Tensor x = (2 * images.to(at::kDouble) - 1).flatten(1);
      const at::Tensor mean =
          labels.defined() ? means.index_select(0, labels) : at::softmax(log_likelihoods(x, variance), 1).matmul(means);
      return (-(x - mean) / variance).view(images.sizes());
    };
  }
};

/// The Bayes classifier of the mixture smoothed with noise sigma (0: the clean mixture).
class MixtureBayesClassifier : public FixedFunctionModel {
 public:
  MixtureBayesClassifier(const IsotropicMixture& mixture, double sigma)
      : FixedFunctionModel(mixture.means.size(0)), mixture_(mixture), sigma_(sigma) {}
  at::Tensor forward(const at::Tensor& images) override {
    const at::Tensor x = (2 * images.to(at::kDouble) - 1).flatten(1);
    return mixture_.log_likelihoods(x, IsotropicMixture::tau * IsotropicMixture::tau + sigma_ * sigma_);
  }

 private:
  const IsotropicMixture& mixture_;
  double sigma_;
};

/// Random ReLU features of the image and a random read-out: a classifier that learned nothing.
class RandomFeatureClassifier : public FixedFunctionModel {
 public:
  RandomFeatureClassifier(std::int64_t classes, std::uint64_t seed) : FixedFunctionModel(classes) {
    at::Generator generator = at::detail::createCPUGenerator(seed);
    features_ = at::randn({128, 256}, generator, at::kDouble) / 16;
    readout_ = at::randn({classes, 128}, generator, at::kDouble);
  }
  at::Tensor forward(const at::Tensor& images) override {
    return at::relu(images.flatten(1).to(at::kDouble).matmul(features_.t())).matmul(readout_.t());
  }

 private:
  at::Tensor features_, readout_;
};

TEST(AlignmentOracle, TheBayesClassifierOfAGaussianMixtureIsAlignedAndARandomOneIsNot) {
  const IsotropicMixture mixture(4);
  const Dataset data = mixture.draw(400, 3);
  const ScoreFunction score = mixture.score();
  const AlignmentOptions bayes = AlignmentOptions().set_pairing(AlignmentPairing::bayes);
  // The Bayes classifier of the σ-smoothed data: ∇ log p_σ(y|x) = s_σ(x, y) − s_σ(x) exactly.
  for (const double sigma : bayes.sigmas) {
    MixtureBayesClassifier smoothed(mixture, sigma);
    const AlignmentResult result = analyse_alignment(smoothed, data, score, bayes);
    for (const AlignmentAtSigma& entry : result.per_sigma) {
      if (entry.sigma == sigma) EXPECT_GT(entry.mean_cosine, 0.999999) << sigma;
    }
  }
  // The clean data's Bayes classifier: with two classes ∇ log p(y|x) and s_σ(x, y) − s_σ(x) both point along
  // μ_y − μ_other at every σ. With more, the smoothed posterior weighs the other means more evenly than the
  // clean one, so the directions part as σ grows past τ (measured 0.99997, 0.9989, 0.989, 0.958 at σ 0.1-1).
  for (const std::int64_t classes : {2, 4}) {
    const IsotropicMixture mixed(classes);
    MixtureBayesClassifier clean(mixed, 0);
    const AlignmentResult clean_result = analyse_alignment(clean, mixed.draw(400, 3), mixed.score(), bayes);
    for (const AlignmentAtSigma& entry : clean_result.per_sigma) {
      std::printf("%lld classes, clean Bayes classifier, bayes pairing, sigma %.2f: cosine %.5f\n",
                  static_cast<long long>(classes), entry.sigma, entry.mean_cosine);
      if (classes == 2 || entry.sigma <= IsotropicMixture::tau / 2) {
        EXPECT_GE(entry.mean_cosine, 0.99) << classes << " classes, sigma " << entry.sigma;
      } else {
        EXPECT_GE(entry.mean_cosine, 0.95) << classes << " classes, sigma " << entry.sigma;
      }
    }
  }
  // Random features and read-out: no alignment with either score.
  for (const AlignmentPairing pairing : {AlignmentPairing::conditional, AlignmentPairing::bayes}) {
    for (const std::uint64_t seed : {5, 6, 7}) {
      RandomFeatureClassifier random(4, seed);
      const AlignmentResult result = analyse_alignment(random, data, score, AlignmentOptions().set_pairing(pairing));
      for (const AlignmentAtSigma& entry : result.per_sigma) {
        EXPECT_LE(std::abs(entry.mean_cosine), 0.1)
            << alignment_pairing_name(pairing) << " seed " << seed << " sigma " << entry.sigma;
      }
    }
  }
}

TEST(Alignment, BadScoresAndOptionsAreRefused) {
  LinearModel model(at::randn({2, 144}, at::kDouble), at::zeros({2}, at::kDouble));
  const Dataset data = testing::linear_rule_dataset(3, {1, 12, 12}, 2, 2);
  expect_error(
      [&] {
        analyse_alignment(
            model, data, [](const at::Tensor& images, const at::Tensor&, double) { return images.flatten(1); },
            AlignmentOptions());
      },
      "the score function returned");
  expect_error([] { AlignmentOptions().set_batch_size(0).check(); }, "batch size must be >= 1, got 0");
  expect_error([] { AlignmentOptions().set_sigmas({}).check(); }, "at least one noise level");
  expect_error([] { AlignmentOptions().set_sigmas({0.5, -1}).check(); }, "finite and > 0, got -1");
  expect_error([] { AlignmentOptions().set_sigmas({0.5, 0.5}).check(); }, "0.5 given twice");
  expect_error([] { AlignmentOptions().set_sigmas({0.1, 1}).check(); }, "summary noise level 0.5 is not one of");
  expect_error([] { parse_alignment_pairing("unconditional"); },
               "conditional, bayes or summed-logits, got 'unconditional'");
  EXPECT_EQ(parse_alignment_pairing("summed-logits"), AlignmentPairing::summed_logits);
}

}  // namespace
}  // namespace robustlens
