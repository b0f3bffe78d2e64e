#include "robustlens/generative/vae.h"

#include "robustlens/core/batches.h"
#include "robustlens/core/distributed.h"
#include "robustlens/core/error.h"
#include "robustlens/core/json_fields.h"
#include "robustlens/core/limits.h"
#include "robustlens/core/model.h"
#include "robustlens/core/random.h"
#include "robustlens/core/training_loop.h"
#include "robustlens/generative/generative_file.h"

#include <torch/autograd.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adam.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cmath>

namespace robustlens {

struct Vae::Network : torch::nn::Module {
  explicit Network(const VaeSpec& spec) {
    const std::int64_t d = spec.input_dim(), h = spec.hidden, k = spec.latent_dim;
    encoder_in = register_module("encoder_in", torch::nn::Linear(d, h));
    encoder_hidden = register_module("encoder_hidden", torch::nn::Linear(h, h));
    encoder_out = register_module("encoder_out", torch::nn::Linear(h, 2 * k));
    decoder_in = register_module("decoder_in", torch::nn::Linear(k, h));
    decoder_hidden = register_module("decoder_hidden", torch::nn::Linear(h, h));
    decoder_out = register_module("decoder_out", torch::nn::Linear(h, d));
  }
  /// N×D → N×2k (mean, logvar side by side).
  at::Tensor encode(const at::Tensor& flat) {
    return encoder_out->forward(at::relu(encoder_hidden->forward(at::relu(encoder_in->forward(flat)))));
  }
  /// N×k → N×D logits.
  at::Tensor decode(const at::Tensor& z) {
    return decoder_out->forward(at::relu(decoder_hidden->forward(at::relu(decoder_in->forward(z)))));
  }
  torch::nn::Linear encoder_in{nullptr}, encoder_hidden{nullptr}, encoder_out{nullptr};
  torch::nn::Linear decoder_in{nullptr}, decoder_hidden{nullptr}, decoder_out{nullptr};
};

namespace {

// Independent random streams of one training run (core/random.h: derive_seed).
constexpr std::uint64_t kShuffleAndNoiseStream = 11, kEvaluationStream = 12;

std::string shape_text(const std::vector<std::int64_t>& shape) {
  return std::to_string(shape[0]) + "×" + std::to_string(shape[1]) + "×" + std::to_string(shape[2]);
}

}  // namespace

std::int64_t VaeSpec::input_dim() const { return input_shape[0] * input_shape[1] * input_shape[2]; }

void VaeSpec::check() const {
  check_input_shape(input_shape, "VAE");
  RL_CHECK(latent_dim >= 1 && latent_dim <= input_dim(), "VAE: VaeSpec.latent_dim must lie in [1, ", input_dim(),
           "] (C·H·W of the images), got ", latent_dim);
  RL_CHECK(hidden >= 1 && hidden <= kMaxWidth, "VAE: VaeSpec.hidden must lie in [1, ", kMaxWidth, "], got ", hidden);
  check_dense_layer(input_dim(), hidden, "VAE");
}

nlohmann::json VaeSpec::to_json() const {
  return {{"input_shape", input_shape}, {"latent_dim", latent_dim}, {"hidden", hidden}};
}

VaeSpec VaeSpec::from_json(const nlohmann::json& json, const std::string& where) {
  VaeSpec spec;
  spec.input_shape = required_field<std::vector<std::int64_t>>(json, "input_shape", where);
  spec.latent_dim = required_field<std::int64_t>(json, "latent_dim", where);
  spec.hidden = required_field<std::int64_t>(json, "hidden", where);
  spec.check();
  return spec;
}

Vae::Vae(const VaeSpec& spec) : spec_(spec) {
  spec_.check();
  net_ = std::make_shared<Network>(spec_);
}

Vae::~Vae() = default;

VaeEncoding Vae::encode(const at::Tensor& images) {
  check_images(images, spec_.input_shape, "VAE");
  const at::Tensor stats = net_->encode(images.to(device_, dtype_).flatten(1));
  const auto halves = stats.chunk(2, 1);
  return {halves[0], halves[1]};
}

at::Tensor Vae::encode_mean(const at::Tensor& images) { return encode(images).mean; }

at::Tensor Vae::decode_logits(const at::Tensor& latents) {
  RL_CHECK(latents.dim() == 2 && latents.size(1) == spec_.latent_dim, "VAE decoder takes latent codes N×",
           spec_.latent_dim, ", got a tensor of shape ", latents.sizes());
  const at::Tensor flat = net_->decode(latents.to(device_, dtype_));
  return flat.view({latents.size(0), spec_.input_shape[0], spec_.input_shape[1], spec_.input_shape[2]});
}

at::Tensor Vae::decode(const at::Tensor& latents) { return at::sigmoid(decode_logits(latents)); }

VaeLoss Vae::loss(const at::Tensor& images, const at::Tensor& noise) {
  const VaeEncoding posterior = encode(images);
  RL_CHECK(noise.sizes() == posterior.mean.sizes(), "VAE loss: noise must be N×k = ", posterior.mean.sizes(), ", got ",
           noise.sizes());
  const at::Tensor z = posterior.mean + at::exp(0.5 * posterior.logvar) * noise.to(device_, dtype_);
  const at::Tensor logits = net_->decode(z);
  const double count = static_cast<double>(images.size(0));
  const at::Tensor reconstruction =
      at::binary_cross_entropy_with_logits(logits, images.to(device_, dtype_).flatten(1), {}, {}, at::Reduction::Sum) /
      count;
  // KL(N(m, s²) ‖ N(0, 1)) = ½ Σ (m² + s² − 1 − log s²).
  const at::Tensor kl = 0.5 * (posterior.mean.square() + posterior.logvar.exp() - 1 - posterior.logvar).sum() / count;
  return {reconstruction, kl};
}

void Vae::to(const at::Device& device, at::ScalarType dtype) {
  RL_CHECK(at::isFloatingType(dtype), "VAE: parameters must be floating point, got ", dtype);
  net_->to(device, dtype);
  device_ = device;
  dtype_ = dtype;
}

std::vector<at::Tensor> Vae::parameters() { return net_->parameters(); }

void Vae::save(const std::string& path) const {
  save_generative_file(path, kVaeFormat, {{"spec", spec_.to_json()}, {"training", training_}}, *net_);
}

void Vae::write_parameters(torch::serialize::OutputArchive& archive) const {
  write_generative_parameters(archive, *net_);
}

void Vae::read_parameters(torch::serialize::InputArchive& archive, const std::string& path) {
  load_generative_parameters(archive, *net_, path);
}

std::unique_ptr<Vae> load_vae(const std::string& path, const at::Device& device) {
  torch::serialize::InputArchive archive;
  const nlohmann::json metadata = open_generative_file(path, kVaeFormat, "VAE", device, archive);
  const std::string where = "VAE file '" + path + "': metadata";
  auto vae = std::make_unique<Vae>(
      VaeSpec::from_json(required_field<nlohmann::json>(metadata, "spec", where), where + ".spec"));
  vae->to(device);
  vae->read_parameters(archive, path);
  vae->set_training_record(optional_field<nlohmann::json>(metadata, "training", nlohmann::json::object(), where));
  return vae;
}

void VaeTrainOptions::check() const {
  RL_CHECK(epochs >= 1, "VaeTrainOptions.epochs must be >= 1, got ", epochs);
  RL_CHECK(batch_size >= 1, "VaeTrainOptions.batch_size must be >= 1, got ", batch_size);
  RL_CHECK(lr > 0 && std::isfinite(lr), "VaeTrainOptions.lr must be > 0, got ", lr);
  RL_CHECK(beta >= 0 && std::isfinite(beta), "VaeTrainOptions.beta must be >= 0, got ", beta);
  RL_CHECK(eval_batch_size >= 1, "evaluation batch size must be >= 1, got ", eval_batch_size);
}

nlohmann::json VaeTrainOptions::to_json() const {
  return {{"optimizer", "adam"},      {"lr", lr},     {"epochs", epochs},
          {"batch_size", batch_size}, {"beta", beta}, {"seed", seed}};
}

nlohmann::json VaeEpochRecord::to_json() const {
  return {{"epoch", epoch},       {"train_loss", train_loss},   {"train_reconstruction", train_reconstruction},
          {"train_kl", train_kl}, {"test_loss", test_loss},     {"test_reconstruction", test_reconstruction},
          {"test_kl", test_kl},   {"active_dims", active_dims}, {"test_kl_per_dim", test_kl_per_dim},
          {"seconds", seconds}};
}

nlohmann::json VaeTrainResult::to_json() const {
  nlohmann::json records = nlohmann::json::array();
  for (const auto& record : epochs) records.push_back(record.to_json());
  return {{"epochs", records}, {"resumed_after_epoch", resumed_after_epoch}};
}

VaeEpochRecord VaeEpochRecord::from_json(const nlohmann::json& json, const std::string& where) {
  VaeEpochRecord record;
  record.epoch = required_field<std::int64_t>(json, "epoch", where);
  record.train_loss = required_field<double>(json, "train_loss", where);
  record.train_reconstruction = required_field<double>(json, "train_reconstruction", where);
  record.train_kl = required_field<double>(json, "train_kl", where);
  record.test_loss = required_field<double>(json, "test_loss", where);
  record.test_reconstruction = required_field<double>(json, "test_reconstruction", where);
  record.test_kl = required_field<double>(json, "test_kl", where);
  record.active_dims = required_field<std::int64_t>(json, "active_dims", where);
  record.test_kl_per_dim = required_field<std::vector<double>>(json, "test_kl_per_dim", where);
  record.seconds = required_field<double>(json, "seconds", where);
  return record;
}

VaeEpochRecord evaluate_vae(Vae& vae, const Dataset& data, double beta, std::int64_t batch_size, std::uint64_t seed) {
  RL_CHECK(batch_size >= 1, "evaluation batch size must be >= 1, got ", batch_size);
  RL_CHECK(data.size() > 0, "VAE evaluation: dataset '", data.name, "' is empty");
  at::NoGradGuard no_grad;
  at::Generator generator = make_generator(seed);
  double reconstruction = 0, kl = 0;
  std::vector<at::Tensor> means, logvars;
  for (const auto [begin, end] : batches(data.size(), batch_size)) {
    // Noise drawn on the CPU: the same numbers whatever the device.
    const at::Tensor noise = at::randn({end - begin, vae.spec().latent_dim}, generator);
    const at::Tensor images = data.images.slice(0, begin, end);
    const VaeLoss loss = vae.loss(images, noise);
    reconstruction += loss.reconstruction.item<double>() * static_cast<double>(end - begin);
    kl += loss.kl.item<double>() * static_cast<double>(end - begin);
    const VaeEncoding posterior = vae.encode(images);
    means.push_back(posterior.mean.to(at::kCPU, at::kDouble));
    logvars.push_back(posterior.logvar.to(at::kCPU, at::kDouble));
  }
  VaeEpochRecord record;
  const at::Tensor mean = at::cat(means), logvar = at::cat(logvars);
  record.active_dims = mean.var(0).gt(0.01).sum().item<std::int64_t>();
  const at::Tensor kl_per_dim = 0.5 * (mean.square() + logvar.exp() - 1 - logvar).mean(0);
  record.test_kl_per_dim.assign(kl_per_dim.data_ptr<double>(), kl_per_dim.data_ptr<double>() + kl_per_dim.numel());
  record.test_reconstruction = reconstruction / static_cast<double>(data.size());
  record.test_kl = kl / static_cast<double>(data.size());
  record.test_loss = record.test_reconstruction + beta * record.test_kl;
  return record;
}

namespace {

/// The VAE's part of the training loop: the beta-weighted negative ELBO with reparameterisation noise from the
/// epoch's generator, and a test evaluation with the same noise every epoch.
class VaeTask final : public TypedTrainingTask<VaeEpochRecord> {
 public:
  VaeTask(Vae& vae, const Dataset& train, const Dataset& test, const VaeTrainOptions& options)
      : vae_(vae), train_(train), test_(test), options_(options) {}

  at::Tensor begin_epoch(std::int64_t, at::Generator& generator) override {
    reconstruction_sum_ = 0;
    kl_sum_ = 0;
    seen_ = 0;
    return at::randperm(train_.size(), generator, at::kLong);
  }

  at::Tensor batch_loss(const TrainingBatch& batch, at::Generator& generator) override {
    const at::Tensor images = train_.images.index_select(0, batch.index);
    const std::int64_t count = images.size(0);
    const VaeLoss loss = vae_.loss(images, random_normal({count, vae_.spec().latent_dim}, generator));
    if (batch.counts) {
      reconstruction_sum_ += loss.reconstruction.item<double>() * static_cast<double>(count);
      kl_sum_ += loss.kl.item<double>() * static_cast<double>(count);
      seen_ += count;
    }
    return loss.total(options_.beta);
  }

  nlohmann::json finish_epoch(std::int64_t, double) override {
    VaeEpochRecord record = evaluate_vae(vae_, test_, options_.beta, options_.eval_batch_size,
                                         derive_seed(options_.seed, kEvaluationStream));
    const std::vector<double> sums =
        distributed::sum_over_ranks({reconstruction_sum_, kl_sum_, static_cast<double>(seen_)});
    record.train_reconstruction = sums[0] / sums[2];
    record.train_kl = sums[1] / sums[2];
    record.train_loss = record.train_reconstruction + options_.beta * record.train_kl;
    return record.to_json();
  }

  void save_weights(torch::serialize::OutputArchive& archive) override { vae_.write_parameters(archive); }
  void load_weights(torch::serialize::InputArchive& archive, const std::string& path) override {
    vae_.read_parameters(archive, path);
  }

 private:
  Vae& vae_;
  const Dataset& train_;
  const Dataset& test_;
  const VaeTrainOptions& options_;
  double reconstruction_sum_ = 0, kl_sum_ = 0;
  std::int64_t seen_ = 0;
};

}  // namespace

VaeTrainResult train_vae(Vae& vae, const Dataset& train, const Dataset& test, const VaeTrainOptions& options,
                         const ProgressCallback& progress, const std::function<void(const VaeEpochRecord&)>& on_epoch) {
  options.check();
  for (const Dataset* data : {&train, &test}) {
    RL_CHECK(data->size() > 0, "VAE training: dataset '", data->name, "' is empty");
    RL_CHECK(data->image_shape() == vae.spec().input_shape, "VAE training: dataset '", data->name, "' has images ",
             shape_text(data->image_shape()), " but the VAE takes ", shape_text(vae.spec().input_shape));
  }
  torch::optim::Adam optimizer(vae.parameters(), torch::optim::AdamOptions(options.lr));
  VaeTask task(vae, train, test, options);
  const TrainingLoopOptions loop =
      TrainingLoopOptions::of(options, "VaeTrainOptions", "VAE training")
          .set_seed(derive_seed(options.seed, kShuffleAndNoiseStream))
          .set_inputs(options.out_dir.empty()
                          ? nlohmann::json()
                          : nlohmann::json{{"spec", vae.spec().to_json()}, {"train_data", train.fingerprint()}})
          .set_device(vae.device());
  const auto log = run_typed_training(task, optimizer, train.size(), loop, progress, on_epoch);
  const VaeTrainResult result{log.epochs, log.resumed_after_epoch};
  nlohmann::json recipe = options.to_json();
  recipe["log"] = result.to_json()["epochs"];
  recipe["train_data"] = train.name;
  vae.set_training_record(recipe);
  return result;
}

namespace {

VaeTangentSpace tangent_space_of_batch(Vae& vae, const at::Tensor& images) {
  const std::int64_t n = images.size(0), k = vae.spec().latent_dim, d = vae.spec().input_dim();
  at::Tensor mean;
  {
    at::NoGradGuard no_grad;
    mean = vae.encode_mean(images);
  }
  // One row per (image, direction): row i·k + j carries mu_i and direction e_j.
  const at::Tensor latents = mean.repeat_interleave(k, 0).requires_grad_(true);
  const at::Tensor decoded = vae.decode(latents).flatten(1);
  // J·v by double backpropagation: g(u) = uᵀJ is linear in u, and ∂(g(u)·v)/∂u = J·v.
  const at::Tensor dual = at::zeros_like(decoded).requires_grad_(true);
  const at::Tensor vector_jacobian =
      torch::autograd::grad({decoded}, {latents}, {dual}, /*retain_graph=*/true, /*create_graph=*/true)[0];
  const at::Tensor directions = at::eye(k, mean.options()).repeat({n, 1});
  const at::Tensor products = torch::autograd::grad({vector_jacobian}, {dual}, {directions})[0];
  VaeTangentSpace space;
  space.jacobian = products.detach().view({n, k, d}).transpose(1, 2).contiguous();
  space.basis = std::get<0>(at::linalg_qr(space.jacobian, "reduced"));
  space.latent_mean = mean;
  space.reconstruction = decoded.detach().view({n, k, d}).select(1, 0).view(images.sizes()).contiguous();
  return space;
}

}  // namespace

VaeTangentSpace vae_tangent_space(Vae& vae, const at::Tensor& images, std::int64_t batch_size) {
  check_images(images, vae.spec().input_shape, "VAE tangent space");
  RL_CHECK(batch_size >= 1, "tangent space: batch size must be >= 1, got ", batch_size);
  std::vector<at::Tensor> bases, jacobians, means, reconstructions;
  for (const auto [begin, end] : batches(images.size(0), batch_size)) {
    VaeTangentSpace chunk = tangent_space_of_batch(vae, images.slice(0, begin, end));
    bases.push_back(chunk.basis);
    jacobians.push_back(chunk.jacobian);
    means.push_back(chunk.latent_mean);
    reconstructions.push_back(chunk.reconstruction);
  }
  RL_CHECK(!bases.empty(), "tangent space: no images");
  return {at::cat(bases), at::cat(jacobians), at::cat(means), at::cat(reconstructions)};
}

at::Tensor vae_tangent_basis(Vae& vae, const at::Tensor& images, std::int64_t batch_size) {
  return vae_tangent_space(vae, images, batch_size).basis;
}

}  // namespace robustlens
