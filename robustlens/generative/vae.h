// A small variational autoencoder for images C×H×W in [0,1], the learned data
// manifold of the tangent-space analysis (analyses/manifold.h): an MLP encoder
// D → hidden → hidden → 2k (mean and log-variance of a diagonal Gaussian
// posterior), an MLP decoder k → hidden → hidden → D with a sigmoid output,
// ReLU between layers; trained on the beta-weighted negative ELBO with a
// Bernoulli (binary cross-entropy) likelihood (beta < 1 by default, see
// VaeTrainOptions::beta). The tangent space at x is the
// span of the decoder Jacobian at the encoder mean mu(x), computed exactly (k
// Jacobian-vector products by double backpropagation) and orthonormalised by QR.
// Files: generative/generative_file.h (format robustlens-vae).
#pragma once

#include "robustlens/core/options.h"
#include "robustlens/core/progress.h"
#include "robustlens/data/dataset.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace torch::serialize {
class InputArchive;
class OutputArchive;
}  // namespace torch::serialize

namespace robustlens {

/// Everything needed to rebuild the network; stored in VAE files.
struct VaeSpec {
  /// C, H, W of the images.
  std::vector<std::int64_t> input_shape{1, 28, 28};
  /// k: the dimension of the latent code and of the tangent spaces.
  std::int64_t latent_dim = 16;
  /// Units of each of the two hidden layers of encoder and decoder.
  std::int64_t hidden = 512;

  RL_SETTER(input_shape)
  RL_SETTER(latent_dim)
  RL_SETTER(hidden)

  /// D = C·H·W.
  std::int64_t input_dim() const;
  void check() const;
  nlohmann::json to_json() const;
  /// `where` names the record in error messages (a missing key or a wrong type is an Error).
  static VaeSpec from_json(const nlohmann::json& json, const std::string& where = "VAE spec");
};

/// The Gaussian posterior q(z|x) = N(mean, diag(exp(logvar))), both N×k.
struct VaeEncoding {
  at::Tensor mean, logvar;
};

/// The two terms of the negative ELBO, each a mean over images of a sum over
/// pixels (reconstruction, nats) or latent dimensions (KL, nats).
struct VaeLoss {
  at::Tensor reconstruction, kl;
  /// reconstruction + beta·kl.
  at::Tensor total(double beta) const { return reconstruction + beta * kl; }
};

class Vae {
 public:
  /// Fresh parameters from LibTorch's layer initialisers, which draw from the global generator only: build it
  /// inside with_global_seed (core/random.h) to fix them.
  explicit Vae(const VaeSpec& spec);
  ~Vae();
  Vae(const Vae&) = delete;
  Vae& operator=(const Vae&) = delete;

  /// Images N×C×H×W (on the VAE's device, any floating type) → posterior.
  VaeEncoding encode(const at::Tensor& images);
  at::Tensor encode_mean(const at::Tensor& images);
  /// Latent codes N×k → images N×C×H×W in (0,1).
  at::Tensor decode(const at::Tensor& latents);
  /// The decoder's pre-sigmoid outputs N×C×H×W (the Bernoulli logits).
  at::Tensor decode_logits(const at::Tensor& latents);
  /// Negative-ELBO terms of a batch, z drawn by the reparameterisation trick
  /// with standard normal `noise` N×k (drawn by the caller, so that training
  /// and evaluation control their own random streams).
  VaeLoss loss(const at::Tensor& images, const at::Tensor& noise);

  /// Moves the parameters; `dtype` kDouble serves precise numerical checks.
  void to(const at::Device& device, at::ScalarType dtype = at::kFloat);
  at::Device device() const { return device_; }
  at::ScalarType dtype() const { return dtype_; }
  std::vector<at::Tensor> parameters();
  const VaeSpec& spec() const { return spec_; }

  /// The training recipe, per-epoch log and final losses (set by train_vae,
  /// read back by load_vae); an empty object for an untrained VAE.
  const nlohmann::json& training_record() const { return training_; }
  void set_training_record(nlohmann::json record) { training_ = std::move(record); }

  /// Writes the VAE file atomically: parameters + {"spec", "training"}.
  void save(const std::string& path) const;
  /// The parameters into an archive and back (files and training checkpoints; `path` names the archive in
  /// errors).
  void write_parameters(torch::serialize::OutputArchive& archive) const;
  void read_parameters(torch::serialize::InputArchive& archive, const std::string& path);

 private:
  friend std::unique_ptr<Vae> load_vae(const std::string& path, const at::Device& device);
  struct Network;
  VaeSpec spec_;
  std::shared_ptr<Network> net_;
  at::Device device_{at::kCPU};
  at::ScalarType dtype_ = at::kFloat;
  nlohmann::json training_ = nlohmann::json::object();
};

/// Reads a file written by Vae::save onto `device`. Errors name the file: it
/// does not exist, is not a robustlens file, or is another kind (a classifier
/// or a denoiser), or its parameters do not fit its spec.
std::unique_ptr<Vae> load_vae(const std::string& path, const at::Device& device);

struct VaeTrainOptions {
  /// 10: against 20 epochs on Fashion-MNIST (k = 16) the test ELBO is 0.6% worse, and the
  /// demo models' tangent fractions move by at most 0.007 and the VAE-vs-local-PCA agreement
  /// from 0.465 to 0.461 (measured 2026-12-05, docs/manifold-and-alignment.md).
  std::int64_t epochs = 10;
  std::int64_t batch_size = 128;
  /// Adam's learning rate (constant).
  double lr = 1e-3;
  /// Weight of the KL term (1 = the ELBO). 0.05 by default because the VAE is
  /// here for its tangent spaces, which need every latent dimension in use.
  /// Measured on Fashion-MNIST, k = 16, 20 epochs: beta 1 leaves 6 dimensions
  /// in use (the decoder ignores the other 10: Jacobian singular values
  /// 0.02-0.06 against 1-6), beta 0.1 14, beta 0.05 all 16 (singular values
  /// 4.1 down to 0.54).
  double beta = 0.05;
  /// Shuffling and the reparameterisation noise; the initial weights are fixed where
  /// the Vae is built (with_global_seed).
  std::uint64_t seed = 0;
  /// Batch size of the per-epoch test evaluation.
  std::int64_t eval_batch_size = 1000;
  /// Folder for checkpoint.pt, written after every epoch ("" = none).
  std::string out_dir;
  /// Continue from out_dir/checkpoint.pt when it exists (else start afresh).
  bool resume = true;

  RL_SETTER(epochs)
  RL_SETTER(batch_size)
  RL_SETTER(lr)
  RL_SETTER(beta)
  RL_SETTER(seed)
  RL_SETTER(eval_batch_size)
  RL_SETTER(out_dir)
  RL_SETTER(resume)

  void check() const;
  /// The recipe (optimizer "adam" included; not out_dir and resume).
  nlohmann::json to_json() const;
};

struct VaeEpochRecord {
  std::int64_t epoch = 0;  ///< 1-based
  /// Means over the epoch's training images, as the weights moved.
  double train_loss = 0, train_reconstruction = 0, train_kl = 0;
  /// On the test set after the epoch, with the same noise every epoch.
  double test_loss = 0, test_reconstruction = 0, test_kl = 0;
  /// Latent dimensions in use: those whose posterior mean varies over the
  /// test set (variance > 0.01, Burda et al. 2016). The others have collapsed
  /// to the prior; the decoder ignores them, and their tangent directions
  /// (vae_tangent_space) say little about the data.
  std::int64_t active_dims = 0;
  /// The test KL term split by latent dimension (nats per image).
  std::vector<double> test_kl_per_dim;
  double seconds = 0;
  nlohmann::json to_json() const;
  /// `where` names the record in errors (a missing key or a wrong type).
  static VaeEpochRecord from_json(const nlohmann::json& json, const std::string& where = "VAE epoch record");
};

struct VaeTrainResult {
  std::vector<VaeEpochRecord> epochs;
  std::int64_t resumed_after_epoch = 0;  ///< epochs taken from a checkpoint
  nlohmann::json to_json() const;
};

/// Negative-ELBO terms over a whole dataset (no gradients), z drawn from a
/// generator seeded with `seed`: the same number for the same weights and seed.
VaeEpochRecord evaluate_vae(Vae& vae, const Dataset& data, double beta, std::int64_t batch_size, std::uint64_t seed);

/// Trains `vae` in place with Adam on `train`, evaluating on `test` after every
/// epoch, on the training loop of core/training_loop.h (a checkpoint in
/// options.out_dir after every epoch, resumed when there); `on_epoch` sees each
/// finished epoch. Sets vae.training_record() to the recipe, the log and the
/// training data's name.
VaeTrainResult train_vae(Vae& vae, const Dataset& train, const Dataset& test, const VaeTrainOptions& options,
                         const ProgressCallback& progress = {},
                         const std::function<void(const VaeEpochRecord&)>& on_epoch = {});

/// The decoder's tangent space at the encoder means of a batch of images.
struct VaeTangentSpace {
  /// N×D×k: orthonormal columns spanning the Jacobian's columns (Q of its QR).
  at::Tensor basis;
  /// N×D×k: ∂decode/∂z at z = mu(x).
  at::Tensor jacobian;
  /// N×k: mu(x).
  at::Tensor latent_mean;
  /// N×C×H×W: decode(mu(x)).
  at::Tensor reconstruction;
};

/// Tangent spaces of `images` (N×C×H×W, on the VAE's device), `batch_size`
/// images at a time: the k Jacobian-vector products J·e_j of each image come
/// from one double-backward pass over N·k copies of the latent means, then a
/// batched QR. Results are on the VAE's device in its dtype. When the decoder
/// ignores a latent dimension (posterior collapse; VaeEpochRecord::active_dims
/// counts the others) the Jacobian loses rank and the basis's matching column
/// is an arbitrary orthogonal direction; `jacobian` shows it (a near-zero column).
VaeTangentSpace vae_tangent_space(Vae& vae, const at::Tensor& images, std::int64_t batch_size = 64);
/// Just the N×D×k basis of vae_tangent_space.
at::Tensor vae_tangent_basis(Vae& vae, const at::Tensor& images, std::int64_t batch_size = 64);

}  // namespace robustlens
