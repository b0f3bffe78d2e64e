#include "robustlens/generative/denoiser.h"

#include "robustlens/core/error.h"
#include "robustlens/generative/vae.h"
#include "test_support.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/utils.h>

#include <cmath>

namespace robustlens {
namespace {

using testing::expect_error;

std::unique_ptr<Denoiser> small_denoiser(std::vector<std::int64_t> shape, std::int64_t classes,
                                         std::uint64_t seed = 3) {
  torch::manual_seed(seed);
  return std::make_unique<Denoiser>(
      DenoiserSpec().set_input_shape(std::move(shape)).set_num_classes(classes).set_channels(8).set_embedding_dim(16));
}

/// Zeroes the output convolution's weights and sets its bias, so that the
/// network F returns `bias[c]` in channel c whatever its input.
void make_output_constant(Denoiser& denoiser, const at::Tensor& bias) {
  at::NoGradGuard no_grad;
  for (auto& [name, parameter] : denoiser.named_parameters()) {
    if (name == "output.weight") parameter.zero_();
    if (name == "output.bias") parameter.copy_(bias);
  }
}

/// Mean over rows of the cosine similarity of two N×... tensors.
double mean_cosine(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor x = a.flatten(1).to(at::kDouble), y = b.flatten(1).to(at::kDouble);
  return ((x * y).sum(1) / (x.norm(2, 1) * y.norm(2, 1))).mean().item<double>();
}

TEST(DenoiserScore, OfANetworkWithAKnownOutputHasTheClosedForm) {
  const double sigma = 0.5, sigma_data = 0.5;
  for (const std::int64_t classes : {0, 4}) {
    auto denoiser = small_denoiser({2, 7, 5}, classes);
    const at::Tensor images = at::rand({3, 2, 7, 5});
    const at::Tensor labels = classes > 0 ? at::tensor({0, 3, 1}, at::kLong) : at::Tensor();
    const at::Tensor x = 2 * images - 1;

    // F = 0: D = c_skip·x, the optimal denoiser of N(0, sigma_data²): s = −x/(σ² + σd²).
    make_output_constant(*denoiser, at::zeros({2}));
    const at::Tensor score = denoiser_score(*denoiser, images, labels, sigma);
    ASSERT_EQ(score.sizes(), images.sizes());
    EXPECT_TRUE(at::allclose(score, -x / (sigma * sigma + sigma_data * sigma_data), 1e-5, 1e-6)) << classes;

    // F = b per channel: D = c_skip·x + c_out·b.
    make_output_constant(*denoiser, at::tensor({0.3f, -0.7f}));
    const double c_skip = sigma_data * sigma_data / (sigma * sigma + sigma_data * sigma_data);
    const double c_out = sigma * sigma_data / std::sqrt(sigma * sigma + sigma_data * sigma_data);
    const at::Tensor bias = at::tensor({0.3f, -0.7f}).view({1, 2, 1, 1});
    const at::Tensor expected = ((c_skip - 1) * x + c_out * bias) / (sigma * sigma);
    EXPECT_TRUE(at::allclose(denoiser_score(*denoiser, images, labels, sigma, 2), expected, 1e-5, 1e-6)) << classes;
    const at::Tensor at_other_sigma = denoiser_score(*denoiser, images, labels, 0.1);
    const double c_skip_small = 0.25 / (0.01 + 0.25), c_out_small = 0.1 * 0.5 / std::sqrt(0.01 + 0.25);
    EXPECT_TRUE(at::allclose(at_other_sigma, ((c_skip_small - 1) * x + c_out_small * bias) / 0.01, 1e-4, 1e-5));
  }
}

TEST(DenoiserScore, ChecksItsLabels) {
  // Without the "no label" token (a denoiser file from before label dropout), every image needs its label.
  torch::manual_seed(3);
  auto conditional = std::make_unique<Denoiser>(DenoiserSpec()
                                                    .set_input_shape({1, 6, 6})
                                                    .set_num_classes(10)
                                                    .set_channels(8)
                                                    .set_embedding_dim(16)
                                                    .set_no_label_token(false));
  const at::Tensor images = at::rand({2, 1, 6, 6});
  expect_error([&] { denoiser_score(*conditional, images, at::Tensor()); }, "needs one label per image");
  expect_error([&] { denoiser_score(*conditional, images, at::Tensor()); }, "trained without label dropout");
  expect_error([&] { conditional->denoise(images, at::full({1}, 0.5), at::zeros({0}, at::kLong)); },
               "needs one label per image");
  expect_error(
      [&] {
        denoiser_score(*conditional, images, at::tensor({1, 10}, at::kLong));
      },
      "must lie in [0, 9], found [1, 10]");
  expect_error([&] { denoiser_score(*conditional, images, at::tensor({-1, 2}, at::kLong)); }, "found [-1, 2]");
  // With the token, no labels ask for the unconditional score, and −1 marks an image without a label.
  auto with_token = small_denoiser({1, 6, 6}, 10);
  ASSERT_TRUE(with_token->spec().no_label_token);
  const at::Tensor unconditional_score = denoiser_score(*with_token, images, at::Tensor());
  EXPECT_TRUE(at::allclose(unconditional_score, denoiser_score(*with_token, images, at::tensor({-1, -1}, at::kLong))));
  const at::Tensor mixed = denoiser_score(*with_token, images, at::tensor({-1, 4}, at::kLong));
  EXPECT_TRUE(at::allclose(mixed[0], unconditional_score[0], 1e-5, 1e-6));
  EXPECT_TRUE(
      at::allclose(mixed[1], denoiser_score(*with_token, images, at::tensor({4, 4}, at::kLong))[1], 1e-5, 1e-6));
  EXPECT_FALSE(at::allclose(mixed[1], unconditional_score[1]));
  expect_error(
      [&] {
        denoiser_score(*with_token, images, at::tensor({-2, 2}, at::kLong));
      },
      "must lie in [-1, 9] (-1: no label), found [-2, 2]");
  expect_error(
      [&] {
        denoiser_score(*conditional, images, at::tensor({1, 2, 3}, at::kLong));
      },
      "one label per image (2)");
  expect_error([&] { denoiser_score(*conditional, images, at::tensor({1, 2}, at::kLong), 0); }, "sigma must be > 0");
  // An unconditional denoiser ignores labels.
  auto unconditional = small_denoiser({1, 6, 6}, 0);
  EXPECT_TRUE(at::equal(denoiser_score(*unconditional, images, at::Tensor()),
                        denoiser_score(*unconditional, images, at::tensor({4, 5}, at::kLong))));
  expect_error([&] { unconditional->denoise(images, at::full({3}, 0.5), {}); }, "one value or one per image (2)");
}

TEST(DenoiserNetwork, TakesAnyImageSizeAndClassCondition) {
  for (const auto& shape :
       std::vector<std::vector<std::int64_t>>{{1, 28, 28}, {1, 56, 28}, {3, 7, 5}, {1, 1, 1}, {1, 2, 9}}) {
    auto denoiser = small_denoiser(shape, 3);
    const at::Tensor clean = at::rand({2, shape[0], shape[1], shape[2]}) * 2 - 1;
    const at::Tensor labels = at::tensor({0, 2}, at::kLong);
    const at::Tensor denoised = denoiser->denoise(clean, at::tensor({0.1, 1.0}), labels);
    EXPECT_EQ(denoised.sizes(), clean.sizes());
    EXPECT_TRUE(denoised.is_contiguous());
    const at::Tensor loss = denoiser->loss(clean, at::tensor({0.1, 1.0}), at::randn_like(clean), labels);
    loss.backward();
    EXPECT_TRUE(std::isfinite(loss.item<double>()));
    // Every parameter takes part (the class embedding through the labels).
    for (const auto& [name, parameter] : denoiser->named_parameters()) {
      EXPECT_TRUE(parameter.grad().defined() && parameter.grad().abs().sum().item<double>() > 0) << name;
    }
    // The label changes the output.
    EXPECT_FALSE(
        at::allclose(denoised, denoiser->denoise(clean, at::tensor({0.1, 1.0}), at::tensor({1, 1}, at::kLong))));
  }
}

/// Two classes of images whose [−1,1] values are N(mean_y, s²I) on 1×8×8.
struct GaussianClasses {
  static constexpr double spread = 0.15;
  at::Tensor means =
      at::stack({0.4 * at::sin(at::arange(64, at::kFloat) * 0.3), 0.3 * at::cos(at::arange(64, at::kFloat) * 0.7)})
          .view({2, 1, 8, 8});
  Dataset draw(std::int64_t size, std::uint64_t seed) const {
    at::Generator generator = at::detail::createCPUGenerator(seed);
    const at::Tensor labels = at::randint(2, {size}, generator, at::kLong);
    const at::Tensor values = means.index_select(0, labels) + spread * at::randn({size, 1, 8, 8}, generator);
    return {"gaussian", (values + 1) / 2, labels, {"a", "b"}};
  }
  /// The optimal denoiser's score at noisy points x (in [−1,1]) for noise level sigma: given the labels, or
  /// (undefined labels) of the equal-weight mixture, Σ_k p_σ(k|x)·s_σ(x, k).
  at::Tensor optimal_score(const at::Tensor& x, const at::Tensor& labels, double sigma) const {
    const double variance = spread * spread + sigma * sigma;
    if (labels.defined()) return -(x - means.index_select(0, labels)) / variance;
    const at::Tensor posterior = at::softmax(-at::cdist(x.flatten(1), means.flatten(1)).square() / (2 * variance), 1);
    return -(x - posterior.matmul(means.flatten(1)).view(x.sizes())) / variance;
  }
};

TEST(DenoiserTraining, ApproachesTheOptimalDenoiserOnGaussianData) {
  const GaussianClasses classes;
  const Dataset train = classes.draw(2048, 1), test = classes.draw(256, 2);
  torch::manual_seed(4);
  Denoiser denoiser(
      DenoiserSpec().set_input_shape({1, 8, 8}).set_num_classes(2).set_channels(16).set_embedding_dim(32));
  const auto options = DenoiserTrainOptions().set_epochs(8).set_batch_size(32).set_seed(6);
  const DenoiserTrainResult result = train_denoiser(denoiser, train, test, options);
  ASSERT_EQ(result.epochs.size(), 8u);
  EXPECT_LT(result.epochs.back().test_loss, result.epochs.front().test_loss);

  const double sigma = 0.5;
  const at::Tensor x = to_denoiser_space(test.images);
  // At the images themselves, as the alignment analysis uses it.
  const double at_images = mean_cosine(denoiser_score(denoiser, test.images, test.labels, sigma),
                                       classes.optimal_score(x, test.labels, sigma));
  // At noisy images, where training put it.
  at::Generator generator = at::detail::createCPUGenerator(9);
  const at::Tensor noisy = x + sigma * at::randn(x.sizes(), generator);
  at::Tensor learned;
  {
    at::NoGradGuard no_grad;
    learned = (denoiser.denoise(noisy, at::full({1}, sigma), test.labels) - noisy) / (sigma * sigma);
  }
  const double at_noisy = mean_cosine(learned, classes.optimal_score(noisy, test.labels, sigma));
  // With the other class's label the score points elsewhere: the conditioning is used.
  const double wrong_label = mean_cosine(denoiser_score(denoiser, test.images, 1 - test.labels, sigma),
                                         classes.optimal_score(x, test.labels, sigma));
  std::printf(
      "cosine with the optimal score at sigma 0.5: images %.4f, noisy images %.4f, wrong labels %.4f; test loss %.4f\n",
      at_images, at_noisy, wrong_label, result.epochs.back().test_loss);
  // Measured over 7 seeds: 0.985-0.994 at images, 0.997-0.998 at noisy images.
  EXPECT_GT(at_images, 0.97);
  EXPECT_GT(at_noisy, 0.99);
  EXPECT_LT(wrong_label, at_images - 0.2);

  // The same network without a label (label dropout trained its "no label" token) gives the mixture's score.
  const double unconditional = mean_cosine(denoiser_score(denoiser, test.images, at::Tensor(), sigma),
                                           classes.optimal_score(x, at::Tensor(), sigma));
  std::printf("cosine with the mixture's score at sigma 0.5, no label: %.4f\n", unconditional);
  EXPECT_GT(unconditional, 0.95);

  // Its denoising error against the trivial denoisers: identity (σ²) and the Bayes denoiser of fitted
  // Gaussians, which on this data is the optimal one given the class: τ²σ²/(τ² + σ²) per pixel.
  const DenoisingErrors& errors = result.errors;
  ASSERT_EQ(errors.sigmas, DenoiserTrainOptions().error_sigmas);
  for (std::size_t i = 0; i < errors.sigmas.size(); ++i) {
    const double s2 = errors.sigmas[i] * errors.sigmas[i], t2 = GaussianClasses::spread * GaussianClasses::spread;
    std::printf(
        "sigma %.2f: MSE given y %.5f, no label %.5f, identity %.5f, Gaussian per class %.5f (optimal %.5f), "
        "Gaussian of all %.5f\n",
        errors.sigmas[i], errors.conditional[i], errors.unconditional[i], errors.identity[i], errors.gaussian_class[i],
        t2 * s2 / (t2 + s2), errors.gaussian_all[i]);
    EXPECT_DOUBLE_EQ(errors.identity[i], s2);
    EXPECT_NEAR(errors.gaussian_class[i], t2 * s2 / (t2 + s2), 0.15 * t2 * s2 / (t2 + s2));
    // On Gaussian data the fitted Gaussians are the optimal denoisers: the network comes within 1.06-1.37× of
    // them here (8 short epochs) and beats the identity.
    EXPECT_LT(errors.conditional[i], 1.5 * errors.gaussian_class[i]);
    EXPECT_LT(errors.unconditional[i], 1.5 * errors.gaussian_all[i]);
    EXPECT_LT(errors.conditional[i], errors.identity[i]);
  }
  EXPECT_EQ(denoiser.training_record().at("denoising_errors").at("sigmas").size(), errors.sigmas.size());
}

TEST(GaussianDenoiser, IsTheClosedFormShrinkageOfAFittedGaussian) {
  // Two classes along known axes: the class covariance is diagonal, so the Bayes denoiser shrinks each
  // coordinate by λ/(λ + σ²) towards the class mean.
  at::Generator generator = at::detail::createCPUGenerator(5);
  const at::Tensor scales = at::tensor({0.3, 0.1, 0.02, 0.2}, at::kDouble);
  const at::Tensor values = at::randn({4000, 4}, generator, at::kDouble) * scales;
  const at::Tensor labels = at::cat({at::zeros({2000}, at::kLong), at::ones({2000}, at::kLong)});
  const at::Tensor shifted = values + at::where(labels.unsqueeze(1) == 1, 0.4, -0.4);
  const Dataset data{"axes", ((shifted + 1) / 2).to(at::kFloat).view({4000, 1, 2, 2}), labels, {"a", "b"}};
  const GaussianDenoiser gaussian(data);
  const at::Tensor noisy = at::tensor({0.5, -0.1, 0.2, 0.0, -0.3, -0.6, 0.1, 0.3}, at::kDouble).view({2, 1, 2, 2});
  const double sigma = 0.1;
  const at::Tensor denoised = gaussian.denoise(noisy, sigma, at::tensor({1, 0}, at::kLong)).flatten(1);
  const at::Tensor shrink = scales.square() / (scales.square() + sigma * sigma);
  const at::Tensor mean = at::stack({at::full({4}, 0.4, at::kDouble), at::full({4}, -0.4, at::kDouble)});
  const at::Tensor expected = mean + shrink * (noisy.flatten(1) - mean);
  EXPECT_TRUE(at::allclose(denoised, expected, 0, 0.01)) << denoised << expected;
  expect_error([&] { gaussian.denoise(at::zeros({1, 1, 3, 3}), sigma, {}); }, "fitted to 4 pixels");
  const Dataset one_class{"one", data.images.slice(0, 0, 10), data.labels.slice(0, 0, 10), {"a", "b"}};
  expect_error([&] { GaussianDenoiser{one_class}; }, "class 1 ('b') of 'one' has no images");
}

TEST(DenoiserTraining, IsDeterministicForASeed) {
  const GaussianClasses classes;
  const Dataset train = classes.draw(128, 1), test = classes.draw(32, 2);
  const auto options = DenoiserTrainOptions().set_epochs(2).set_batch_size(32).set_seed(6);
  auto first = small_denoiser({1, 8, 8}, 2), second = small_denoiser({1, 8, 8}, 2);
  const auto a = train_denoiser(*first, train, test, options), b = train_denoiser(*second, train, test, options);
  EXPECT_EQ(a.epochs.back().train_loss, b.epochs.back().train_loss);
  EXPECT_EQ(a.epochs.back().test_loss, b.epochs.back().test_loss);
  // The cosine schedule: at step t of T, lr·(1 + cos(πt/T))/2; T = 8 here.
  EXPECT_DOUBLE_EQ(a.epochs.back().learning_rate, options.lr * 0.5 * (1 + std::cos(3.14159265358979323846 * 7 / 8)));
  EXPECT_EQ(first->training_record().at("log").size(), 2u);
  EXPECT_EQ(first->training_record().at("sigma_min"), 0.02);
}

TEST(DenoiserTraining, KilledAndResumedRunEndsWithTheSameWeights) {
  const GaussianClasses classes;
  const Dataset train = classes.draw(96, 1), test = classes.draw(32, 2);
  testing::TemporaryDirectory whole, interrupted;
  const auto options = [](const std::string& out) {
    return DenoiserTrainOptions().set_epochs(3).set_batch_size(32).set_seed(6).set_out_dir(out);
  };
  auto reference = small_denoiser({1, 8, 8}, 2);
  const DenoiserTrainResult expected = train_denoiser(*reference, train, test, options(whole.path()));
  auto first = small_denoiser({1, 8, 8}, 2);
  struct SimulatedKill {};
  EXPECT_THROW(train_denoiser(*first, train, test, options(interrupted.path()),
                              [](const ProgressUpdate& update) {
                                if (update.task == "epoch 2/3" && update.done >= 64) throw SimulatedKill{};
                              }),
               SimulatedKill);
  auto resumed = small_denoiser({1, 8, 8}, 2, 99);  // other initial weights: the checkpoint must replace them
  const DenoiserTrainResult result = train_denoiser(*resumed, train, test, options(interrupted.path()));
  EXPECT_EQ(result.resumed_after_epoch, 1);
  ASSERT_EQ(result.epochs.size(), 3u);
  EXPECT_EQ(result.epochs.back().test_loss, expected.epochs.back().test_loss);
  EXPECT_EQ(result.errors.conditional, expected.errors.conditional);
  const auto a = reference->parameters(), b = resumed->parameters();
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(at::equal(a[i], b[i])) << "parameter " << i;
}

TEST(DenoiserFile, SaveLoadRoundTripAndBadFiles) {
  testing::TemporaryDirectory directory;
  auto denoiser = small_denoiser({1, 7, 9}, 3);
  denoiser->set_training_record({{"note", "test"}});
  denoiser->save(directory.file("denoiser.pt"));
  const auto loaded = load_denoiser(directory.file("denoiser.pt"), at::kCPU);
  EXPECT_EQ(loaded->spec().to_json(), denoiser->spec().to_json());
  EXPECT_EQ(loaded->training_record(), denoiser->training_record());
  const at::Tensor images = at::rand({4, 1, 7, 9}), labels = at::tensor({0, 1, 2, 0}, at::kLong);
  EXPECT_TRUE(at::equal(denoiser_score(*loaded, images, labels), denoiser_score(*denoiser, images, labels)));
  EXPECT_TRUE(at::equal(denoiser_score(*loaded, images, {}), denoiser_score(*denoiser, images, {})));

  // A spec written before label dropout existed has no "no_label_token": a conditional-only denoiser, whose
  // class embedding has one row per class.
  nlohmann::json old_spec = denoiser->spec().to_json();
  old_spec.erase("no_label_token");
  const DenoiserSpec old = DenoiserSpec::from_json(old_spec);
  EXPECT_FALSE(old.no_label_token);
  EXPECT_FALSE(old.gives_unconditional_scores());
  torch::manual_seed(0);
  Denoiser conditional_only(old);
  conditional_only.save(directory.file("old.pt"));
  const auto reloaded = load_denoiser(directory.file("old.pt"), at::kCPU);
  EXPECT_FALSE(reloaded->spec().no_label_token);
  for (const auto& [name, parameter] : reloaded->named_parameters()) {
    if (name == "class_embedding.weight") EXPECT_EQ(parameter.size(0), 3);
  }
  expect_error([&] { denoiser_score(*reloaded, images, {}); }, "trained without label dropout");

  testing::write_bytes(directory.file("text.pt"), "hello");
  torch::manual_seed(0);
  Vae(VaeSpec().set_input_shape({1, 7, 9}).set_latent_dim(2).set_hidden(8)).save(directory.file("vae.pt"));
  const auto load = [&](const std::string& name) {
    return [&, name] { load_denoiser(directory.file(name), at::kCPU); };
  };
  expect_error(load("absent.pt"), "denoiser file '" + directory.file("absent.pt") + "' does not exist");
  expect_error(load("text.pt"), "cannot be read");
  expect_error(load("vae.pt"), "is a robustlens VAE file, not a denoiser file");
  // A truncated copy.
  const std::string bytes = testing::read_bytes(directory.file("denoiser.pt"));
  testing::write_bytes(directory.file("truncated.pt"), bytes.substr(0, bytes.size() / 2));
  expect_error(load("truncated.pt"), "cannot be read");
}

TEST(DenoiserOptions, ChecksNameTheOffendingValues) {
  expect_error([] { DenoiserTrainOptions().set_sigma_min(3).set_sigma_max(1).check(); },
               "need 0 < DenoiserTrainOptions.sigma_min <= DenoiserTrainOptions.sigma_max, got "
               "DenoiserTrainOptions.sigma_min 3 DenoiserTrainOptions.sigma_max 1");
  expect_error([] { DenoiserTrainOptions().set_epochs(0).check(); }, "DenoiserTrainOptions.epochs must be >= 1, got 0");
  expect_error([] { Denoiser(DenoiserSpec().set_num_classes(-2)); }, "got -2");
  expect_error([] { Denoiser(DenoiserSpec().set_channels(0)); }, "DenoiserSpec.channels must lie in [1, 16384], got 0");
  auto denoiser = small_denoiser({1, 6, 6}, 3);
  expect_error(
      [&] {
        train_denoiser(*denoiser, testing::linear_rule_dataset(8, {1, 6, 6}, 5, 1),
                       testing::linear_rule_dataset(8, {1, 6, 6}, 5, 2), {});
      },
      "has 5 classes but the denoiser only 3");
  const nlohmann::json spec = DenoiserSpec().to_json();
  EXPECT_EQ(spec.at("preconditioning"), "edm");
  EXPECT_EQ(DenoiserSpec::from_json(spec).to_json(), spec);
}

}  // namespace
}  // namespace robustlens
