// Training of the denoiser (denoising score matching), the Gaussian
// baselines it is compared with, and the denoising errors of both; the
// network and its score are in denoiser.cpp.
#include "robustlens/generative/denoiser.h"

#include "robustlens/core/batches.h"
#include "robustlens/core/error.h"
#include "robustlens/core/json_fields.h"
#include "robustlens/core/random.h"
#include "robustlens/core/training_loop.h"

#include <ATen/ops/linalg_eigh.h>
#include <torch/optim/adam.h>

#include <cmath>
#include <limits>

namespace robustlens {
namespace {

// Independent random streams of one training run (core/random.h: derive_seed).
constexpr std::uint64_t kShuffleAndNoiseStream = 21, kEvaluationStream = 22;
/// Pixels per image up to which training ends with the Gaussian baselines (3×32×32 takes seconds).
constexpr std::int64_t kLargestGaussianBaseline = 4096;
constexpr double kPi = 3.14159265358979323846;

}  // namespace

void DenoiserTrainOptions::check() const {
  RL_CHECK(epochs >= 1, "DenoiserTrainOptions.epochs must be >= 1, got ", epochs);
  RL_CHECK(batch_size >= 1, "DenoiserTrainOptions.batch_size must be >= 1, got ", batch_size);
  RL_CHECK(lr > 0 && std::isfinite(lr), "DenoiserTrainOptions.lr must be > 0, got ", lr);
  RL_CHECK(sigma_min > 0 && sigma_max >= sigma_min && std::isfinite(sigma_max),
           "noise levels: need 0 < DenoiserTrainOptions.sigma_min <= DenoiserTrainOptions.sigma_max, got "
           "DenoiserTrainOptions.sigma_min ",
           sigma_min, " DenoiserTrainOptions.sigma_max ", sigma_max);
  RL_CHECK(eval_batch_size >= 1, "evaluation batch size must be >= 1, got ", eval_batch_size);
  RL_CHECK(label_dropout >= 0 && label_dropout < 1, "DenoiserTrainOptions.label_dropout must lie in [0, 1), got ",
           label_dropout);
  for (const double sigma : error_sigmas) {
    RL_CHECK(sigma > 0 && std::isfinite(sigma), "denoising-error noise levels must be > 0, got ", sigma);
  }
}

nlohmann::json DenoiserTrainOptions::to_json() const {
  return {{"optimizer", "adam"},
          {"schedule", "cosine"},
          {"lr", lr},
          {"epochs", epochs},
          {"batch_size", batch_size},
          {"sigma_min", sigma_min},
          {"sigma_max", sigma_max},
          {"sigma_distribution", "log-uniform"},
          {"loss_weighting", "edm"},
          {"label_dropout", label_dropout},
          {"seed", seed}};
}

nlohmann::json DenoiserEpochRecord::to_json() const {
  return {{"epoch", epoch},
          {"learning_rate", learning_rate},
          {"train_loss", train_loss},
          {"test_loss", test_loss},
          {"seconds", seconds}};
}

DenoiserEpochRecord DenoiserEpochRecord::from_json(const nlohmann::json& json, const std::string& where) {
  return {required_field<std::int64_t>(json, "epoch", where), required_field<double>(json, "learning_rate", where),
          required_field<double>(json, "train_loss", where), required_field<double>(json, "test_loss", where),
          required_field<double>(json, "seconds", where)};
}

nlohmann::json DenoiserTrainResult::to_json() const {
  nlohmann::json records = nlohmann::json::array();
  for (const auto& record : epochs) records.push_back(record.to_json());
  return {{"epochs", records}, {"resumed_after_epoch", resumed_after_epoch}, {"denoising_errors", errors.to_json()}};
}

GaussianDenoiser::Fit GaussianDenoiser::fit(const at::Tensor& rows) {
  const at::Tensor x = rows.to(at::kDouble);
  const at::Tensor mean = x.mean(0);
  const at::Tensor centred = x - mean;
  // Population covariance: the maximum-likelihood Gaussian (a single image gives Σ = 0, a point mass).
  const at::Tensor covariance = centred.t().matmul(centred) / static_cast<double>(x.size(0));
  auto [eigenvalues, eigenvectors] = at::linalg_eigh(covariance);
  return {mean, eigenvalues.clamp_min(0), eigenvectors};
}

GaussianDenoiser::GaussianDenoiser(const Dataset& data) {
  RL_CHECK(data.size() > 0, "Gaussian denoiser: dataset '", data.name, "' is empty");
  const at::Tensor rows = to_denoiser_space(data.images).flatten(1);
  for (std::int64_t k = 0; k < data.num_classes(); ++k) {
    const at::Tensor members = rows.index_select(0, (data.labels == k).nonzero().flatten());
    RL_CHECK(members.size(0) > 0, "Gaussian denoiser: class ", k, " ('", data.class_names.at(k), "') of '", data.name,
             "' has no images");
    classes_.push_back(fit(members));
  }
  all_ = fit(rows);
}

at::Tensor GaussianDenoiser::apply(const Fit& fit, const at::Tensor& rows, double sigma) {
  // μ + V diag(λ/(λ + σ²)) Vᵀ (x − μ)
  const at::Tensor shrink = fit.eigenvalues / (fit.eigenvalues + sigma * sigma);
  return fit.mean + ((rows - fit.mean).matmul(fit.eigenvectors) * shrink).matmul(fit.eigenvectors.t());
}

at::Tensor GaussianDenoiser::denoise(const at::Tensor& noisy, double sigma, const at::Tensor& labels) const {
  const at::Tensor rows = noisy.to(at::kCPU, at::kDouble).flatten(1);
  RL_CHECK(rows.size(1) == all_.mean.numel(), "Gaussian denoiser: fitted to ", all_.mean.numel(),
           " pixels, got images of ", rows.size(1));
  if (!labels.defined()) return apply(all_, rows, sigma).view(noisy.sizes());
  const at::Tensor y = labels.to(at::kCPU, at::kLong);
  at::Tensor denoised = at::empty_like(rows);
  for (std::size_t k = 0; k < classes_.size(); ++k) {
    const at::Tensor members = (y == static_cast<std::int64_t>(k)).nonzero().flatten();
    if (members.numel() > 0) denoised.index_copy_(0, members, apply(classes_[k], rows.index_select(0, members), sigma));
  }
  return denoised.view(noisy.sizes());
}

nlohmann::json DenoisingErrors::to_json() const {
  const auto column = [](const std::vector<double>& values) {
    nlohmann::json out = nlohmann::json::array();
    for (const double v : values) out.push_back(std::isfinite(v) ? nlohmann::json(v) : nlohmann::json());
    return out;
  };
  return {{"metric", "mean squared error per pixel, [-1,1] units, denoising x + sigma*n back to x"},
          {"sigmas", sigmas},
          {"denoiser_given_label", column(conditional)},
          {"denoiser_without_label", column(unconditional)},
          {"identity", column(identity)},
          {"gaussian_per_class", column(gaussian_class)},
          {"gaussian_all_images", column(gaussian_all)},
          {"images", images}};
}

DenoisingErrors evaluate_denoising_errors(Denoiser& denoiser, const Dataset& data, const std::vector<double>& sigmas,
                                          std::uint64_t seed, const GaussianDenoiser* gaussian,
                                          std::int64_t batch_size) {
  RL_CHECK(data.size() > 0, "denoising errors: dataset '", data.name, "' is empty");
  RL_CHECK(batch_size >= 1, "denoising errors: batch size must be >= 1, got ", batch_size);
  const DenoiserSpec& spec = denoiser.spec();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  DenoisingErrors errors;
  errors.sigmas = sigmas;
  errors.images = data.size();
  at::NoGradGuard no_grad;
  const double pixels = static_cast<double>(data.size() * data.images[0].numel());
  for (const double sigma : sigmas) {
    RL_CHECK(sigma > 0 && std::isfinite(sigma), "denoising errors: noise levels must be > 0, got ", sigma);
    at::Generator generator = make_generator(seed);
    double given = 0, without = 0, gaussian_class = 0, gaussian_all = 0;
    for (const auto [begin, end] : batches(data.size(), batch_size)) {
      const at::Tensor clean = to_denoiser_space(data.images.slice(0, begin, end)).to(at::kDouble);
      const at::Tensor noisy = clean + sigma * at::randn(clean.sizes(), generator, at::kDouble);
      const at::Tensor labels = data.labels.slice(0, begin, end);
      const auto squared_error = [&](const at::Tensor& denoised) {
        return (denoised.to(at::kCPU, at::kDouble) - clean).square().sum().item<double>();
      };
      const auto learned = [&](const at::Tensor& y) {
        return denoiser.denoise(noisy.to(denoiser.device(), denoiser.dtype()), at::full({1}, sigma), y);
      };
      if (spec.conditional()) given += squared_error(learned(labels));
      if (spec.gives_unconditional_scores()) without += squared_error(learned(at::Tensor()));
      if (gaussian) {
        gaussian_class += squared_error(gaussian->denoise(noisy, sigma, labels));
        gaussian_all += squared_error(gaussian->denoise(noisy, sigma, at::Tensor()));
      }
    }
    errors.conditional.push_back(spec.conditional() ? given / pixels : nan);
    errors.unconditional.push_back(spec.gives_unconditional_scores() ? without / pixels : nan);
    errors.identity.push_back(sigma * sigma);
    errors.gaussian_class.push_back(gaussian ? gaussian_class / pixels : nan);
    errors.gaussian_all.push_back(gaussian ? gaussian_all / pixels : nan);
  }
  return errors;
}

namespace {

/// Noise levels log-uniform in [sigma_min, sigma_max] and standard normal
/// noise for a batch of `count` images, from `generator` (CPU: the same draws
/// on every device).
std::pair<at::Tensor, at::Tensor> draw_noise(at::Generator& generator, std::int64_t count,
                                             const std::vector<std::int64_t>& shape,
                                             const DenoiserTrainOptions& options) {
  const double log_min = std::log(options.sigma_min), log_max = std::log(options.sigma_max);
  const at::Tensor sigma = at::exp(random_uniform({count}, generator) * (log_max - log_min) + log_min);
  const at::Tensor noise = random_normal({count, shape[0], shape[1], shape[2]}, generator);
  return {sigma, noise};
}

}  // namespace

double evaluate_denoiser(Denoiser& denoiser, const Dataset& data, const DenoiserTrainOptions& options,
                         std::uint64_t seed) {
  options.check();
  RL_CHECK(data.size() > 0, "denoiser evaluation: dataset '", data.name, "' is empty");
  at::NoGradGuard no_grad;
  at::Generator generator = make_generator(seed);
  double sum = 0;
  for (const auto [begin, end] : batches(data.size(), options.eval_batch_size)) {
    const auto [sigma, noise] = draw_noise(generator, end - begin, denoiser.spec().input_shape, options);
    const at::Tensor labels = denoiser.spec().conditional() ? data.labels.slice(0, begin, end) : at::Tensor();
    const at::Tensor loss = denoiser.loss(to_denoiser_space(data.images.slice(0, begin, end)), sigma, noise, labels);
    sum += loss.item<double>() * static_cast<double>(end - begin);
  }
  return sum / static_cast<double>(data.size());
}

namespace {

/// The denoiser's part of the training loop: denoising score matching with noise levels, noise and label
/// dropout from the epoch's generator, a half-cosine learning rate, and a test loss per epoch.
class DenoiserTask final : public TypedTrainingTask<DenoiserEpochRecord> {
 public:
  DenoiserTask(Denoiser& denoiser, const Dataset& train, const Dataset& test, const DenoiserTrainOptions& options,
               double label_dropout)
      : denoiser_(denoiser), train_(train), test_(test), options_(options), label_dropout_(label_dropout) {}

  at::Tensor begin_epoch(std::int64_t, at::Generator& generator) override {
    return at::randperm(train_.size(), generator, at::kLong);
  }

  void set_learning_rate(torch::optim::Optimizer& optimizer, const TrainingBatch& batch) override {
    const double progress_fraction = static_cast<double>(batch.run_step()) / static_cast<double>(batch.run_steps());
    learning_rate_ = options_.lr * 0.5 * (1 + std::cos(kPi * progress_fraction));
    for (auto& group : optimizer.param_groups()) group.options().set_lr(learning_rate_);
  }

  at::Tensor batch_loss(const TrainingBatch& batch, at::Generator& generator) override {
    const DenoiserSpec& spec = denoiser_.spec();
    const at::Tensor images = to_denoiser_space(train_.images.index_select(0, batch.index));
    const std::int64_t count = images.size(0);
    at::Tensor labels = spec.conditional() ? train_.labels.index_select(0, batch.index) : at::Tensor();
    const auto [sigma, noise] = draw_noise(generator, count, spec.input_shape, options_);
    if (label_dropout_ > 0) {
      const at::Tensor dropped = random_uniform({count}, generator) < label_dropout_;
      labels = at::where(dropped, at::full_like(labels, -1), labels);
    }
    return denoiser_.loss(images, sigma, noise, labels);
  }

  nlohmann::json finish_epoch(std::int64_t, double mean_loss) override {
    DenoiserEpochRecord record;
    record.learning_rate = learning_rate_;
    record.train_loss = mean_loss;
    record.test_loss = evaluate_denoiser(denoiser_, test_, options_, derive_seed(options_.seed, kEvaluationStream));
    return record.to_json();
  }

  void save_weights(torch::serialize::OutputArchive& archive) override { denoiser_.write_parameters(archive); }
  void load_weights(torch::serialize::InputArchive& archive, const std::string& path) override {
    denoiser_.read_parameters(archive, path);
  }

 private:
  Denoiser& denoiser_;
  const Dataset& train_;
  const Dataset& test_;
  const DenoiserTrainOptions& options_;
  const double label_dropout_;
  double learning_rate_ = 0;
};

}  // namespace

DenoiserTrainResult train_denoiser(Denoiser& denoiser, const Dataset& train, const Dataset& test,
                                   const DenoiserTrainOptions& options, const ProgressCallback& progress,
                                   const std::function<void(const DenoiserEpochRecord&)>& on_epoch) {
  options.check();
  const DenoiserSpec& spec = denoiser.spec();
  for (const Dataset* data : {&train, &test}) {
    RL_CHECK(data->size() > 0, "denoiser training: dataset '", data->name, "' is empty");
    RL_CHECK(data->image_shape() == spec.input_shape, "denoiser training: dataset '", data->name, "' has images ",
             nlohmann::json(data->image_shape()).dump(), " (C,H,W) but the denoiser takes ",
             nlohmann::json(spec.input_shape).dump());
    RL_CHECK(!spec.conditional() || data->num_classes() <= spec.num_classes, "denoiser training: dataset '", data->name,
             "' has ", data->num_classes(), " classes but the denoiser only ", spec.num_classes);
  }
  // Only a conditional denoiser with the token drops labels, and it must (else its token stays untrained).
  const double dropout = spec.conditional() && spec.no_label_token ? options.label_dropout : 0.0;
  RL_CHECK(!spec.conditional() || !spec.no_label_token || dropout > 0,
           "denoiser training: the \"no label\" token is only learned with DenoiserTrainOptions.label_dropout > 0");
  torch::optim::Adam optimizer(denoiser.parameters(), torch::optim::AdamOptions(options.lr));
  DenoiserTask task(denoiser, train, test, options, dropout);
  const TrainingLoopOptions loop =
      TrainingLoopOptions::of(options, "DenoiserTrainOptions", "denoiser training")
          .set_seed(derive_seed(options.seed, kShuffleAndNoiseStream))
          .set_inputs(options.out_dir.empty()
                          ? nlohmann::json()
                          : nlohmann::json{{"spec", spec.to_json()}, {"train_data", train.fingerprint()}})
          .set_device(denoiser.device());
  const auto log = run_typed_training(task, optimizer, train.size(), loop, progress, on_epoch);
  DenoiserTrainResult result{log.epochs, log.resumed_after_epoch, {}};
  // The Gaussian baselines need a D×D eigendecomposition per class: left out for large images.
  const std::unique_ptr<GaussianDenoiser> gaussian =
      train.images[0].numel() <= kLargestGaussianBaseline ? std::make_unique<GaussianDenoiser>(train) : nullptr;
  result.errors =
      evaluate_denoising_errors(denoiser, test, options.error_sigmas, derive_seed(options.seed, kEvaluationStream),
                                gaussian.get(), options.eval_batch_size);
  nlohmann::json recipe = options.to_json();
  recipe["label_dropout"] = dropout;
  recipe["log"] = result.to_json()["epochs"];
  recipe["denoising_errors"] = result.errors.to_json();
  recipe["train_data"] = train.name;
  // What each label of a class-conditional denoiser means (the analyses refuse data that name them otherwise).
  recipe["train_class_names"] = train.class_names;
  denoiser.set_training_record(recipe);
  return result;
}

}  // namespace robustlens
