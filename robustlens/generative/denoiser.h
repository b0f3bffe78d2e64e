// A small convolutional denoiser D(x; sigma, y), optionally class-conditional,
// whose Tweedie score stands in for the data score ∇ log p(x|y) in the
// gradient-alignment analysis (the paper uses a pretrained EDM model; none is
// available offline, so we train our own).
//
// Images are mapped to [−1, 1] (x' = 2x − 1) and the noise is added there.
// Our choice: the EDM preconditioning of Karras et al. 2022 ("Elucidating the
// Design Space of Diffusion-Based Generative Models"), with sigma_data = 0.5:
//   D(x; σ, y) = c_skip(σ)·x + c_out(σ)·F(c_in(σ)·x; c_noise(σ), y),
//   c_skip = σd²/(σ²+σd²), c_out = σ·σd/√(σ²+σd²), c_in = 1/√(σ²+σd²),
//   c_noise = ln(σ)/4,
// trained by denoising score matching with sigma log-uniform in
// [sigma_min, sigma_max] and EDM's weighting λ(σ) = (σ²+σd²)/(σ·σd)², which
// makes the loss F's plain squared error against its effective target.
//
// F is a small U-Net without normalisation layers: a stem convolution at full
// resolution, stride-2 convolutions down to half resolution (two residual
// blocks, c channels) and quarter resolution (two blocks, 2c), nearest
// upsampling back to exactly the sizes it came from (odd H, W work: the
// downsamplings round up) with the skips concatenated. The noise level
// (c_noise through a two-layer MLP) and the class (an embedding) are summed
// into one vector added to every residual block's feature maps. Convolutions
// run in channels-last layout (oneDNN on the CPU: 5-10× faster here). Sized
// for 2 CPU cores: no convolution between c-channel maps at full resolution,
// where they cost 4× as much as at half resolution for little gain at the
// noise levels the score is read at. Files: generative/generative_file.h
// (format robustlens-denoiser).
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
#include <utility>
#include <vector>

namespace torch::serialize {
class InputArchive;
class OutputArchive;
}  // namespace torch::serialize

namespace robustlens {

/// Everything needed to rebuild the network; stored in denoiser files.
struct DenoiserSpec {
  /// C, H, W of the images (any H, W >= 1).
  std::vector<std::int64_t> input_shape{1, 28, 28};
  /// Classes of the conditioning label; 0 = unconditional D(x; σ).
  std::int64_t num_classes = 10;
  /// c: feature maps at full and half resolution (2c at quarter resolution).
  /// 16 trains at ~2000 images/s on 2 cores; 32 at ~900 with little gain per minute.
  std::int64_t channels = 16;
  /// Width of the noise-level and class embedding.
  std::int64_t embedding_dim = 64;
  /// EDM's sigma_data: the standard deviation assumed for images in [−1, 1].
  double sigma_data = 0.5;
  /// A conditional denoiser with a learned "no label" embedding (row
  /// num_classes), trained by label dropout as classifier-free guidance is:
  /// one network then gives both s(x, y) and s(x). Files written before it
  /// existed read as false (conditional only).
  bool no_label_token = true;

  RL_SETTER(input_shape)
  RL_SETTER(num_classes)
  RL_SETTER(channels)
  RL_SETTER(embedding_dim)
  RL_SETTER(sigma_data)
  RL_SETTER(no_label_token)

  bool conditional() const { return num_classes > 0; }
  /// s(x) needs an unconditional denoiser or the "no label" token (s(x, y) a conditional one).
  bool gives_unconditional_scores() const { return !conditional() || no_label_token; }
  void check() const;
  nlohmann::json to_json() const;
  /// `where` names the record in error messages (a missing key or a wrong type is an Error).
  static DenoiserSpec from_json(const nlohmann::json& json, const std::string& where = "denoiser spec");
};

/// Images in [0,1] → the denoiser's space [−1, 1].
at::Tensor to_denoiser_space(const at::Tensor& images01);

class Denoiser {
 public:
  /// Fresh parameters from LibTorch's layer initialisers, which draw from the global generator only: build it
  /// inside with_global_seed (core/random.h) to fix them.
  explicit Denoiser(const DenoiserSpec& spec);
  ~Denoiser();
  Denoiser(const Denoiser&) = delete;
  Denoiser& operator=(const Denoiser&) = delete;

  /// D(x; σ, y): noisy images N×C×H×W in the [−1, 1] space (on the
  /// denoiser's device), sigma a tensor of N values or one value (> 0), labels
  /// int64 N in [0, num_classes) for a conditional denoiser (ignored, and may
  /// be undefined, for an unconditional one) → denoised images, same space.
  /// With the "no label" token, a label −1 (or undefined labels: all of them)
  /// asks for the unconditional D(x; σ).
  at::Tensor denoise(const at::Tensor& noisy, const at::Tensor& sigma, const at::Tensor& labels);
  /// The DSM loss of a batch: mean over images and pixels of
  /// λ(σ)·(D(x + σ·noise; σ, y) − x)², for clean images x in [−1, 1], sigma N,
  /// standard normal noise like x (drawn by the caller: training and
  /// evaluation keep their own random streams).
  at::Tensor loss(const at::Tensor& clean, const at::Tensor& sigma, const at::Tensor& noise, const at::Tensor& labels);

  void to(const at::Device& device, at::ScalarType dtype = at::kFloat);
  at::Device device() const { return device_; }
  at::ScalarType dtype() const { return dtype_; }
  std::vector<at::Tensor> parameters();
  /// Parameters by name ("output.weight", ...), for tests that set a known function.
  std::vector<std::pair<std::string, at::Tensor>> named_parameters();
  const DenoiserSpec& spec() const { return spec_; }

  /// The training recipe and per-epoch log (set by train_denoiser, read back
  /// by load_denoiser); an empty object for an untrained denoiser.
  const nlohmann::json& training_record() const { return training_; }
  void set_training_record(nlohmann::json record) { training_ = std::move(record); }

  /// Writes the denoiser file atomically: parameters + {"spec", "training"}.
  void save(const std::string& path) const;
  /// The parameters into an archive and back (files and training checkpoints; `path` names the archive in
  /// errors).
  void write_parameters(torch::serialize::OutputArchive& archive) const;
  void read_parameters(torch::serialize::InputArchive& archive, const std::string& path);

 private:
  friend std::unique_ptr<Denoiser> load_denoiser(const std::string& path, const at::Device& device);
  /// Labels on the device for the network (undefined when unconditional), checked.
  at::Tensor checked_labels(const at::Tensor& labels, std::int64_t batch) const;
  struct Network;
  DenoiserSpec spec_;
  std::shared_ptr<Network> net_;
  at::Device device_{at::kCPU};
  at::ScalarType dtype_ = at::kFloat;
  nlohmann::json training_ = nlohmann::json::object();
};

/// Reads a file written by Denoiser::save onto `device`. Errors name the file:
/// it does not exist, is not a robustlens file, or is another kind (a
/// classifier or a VAE), or its parameters do not fit its spec.
std::unique_ptr<Denoiser> load_denoiser(const std::string& path, const at::Device& device);

/// The Tweedie estimate of the score of the noise-smoothed data density at
/// the images themselves, in the [−1, 1] pixel space:
///   s(x', y) = (D(x'; σ, y) − x')/σ²,  x' = 2·images01 − 1,
/// N×C×H×W on the denoiser's device, computed without autograd,
/// `batch_size` images at a time. Labels as for Denoiser::denoise: required
/// (int64 N, in range) for a conditional denoiser, ignored for an
/// unconditional one; undefined labels with the "no label" token give the
/// unconditional score s(x). (∇ in [0,1] pixel units is twice this.)
at::Tensor denoiser_score(Denoiser& denoiser, const at::Tensor& images01, const at::Tensor& labels, double sigma = 0.5,
                          std::int64_t batch_size = 256);

struct DenoiserTrainOptions {
  /// 3: at 1, 3, 5 and 10 epochs (16 channels) the bayes alignment gap between the
  /// demo's L2-PGD and standard LeNets at sigma 0.5 is 0.10, 0.10, 0.09 and 0.11
  /// (docs/manifold-and-alignment.md); 3 is the shortest that beats the per-class
  /// Gaussian denoiser at every sigma.
  std::int64_t epochs = 3;
  /// Small batches: more steps per second of CPU (measured better loss per minute than 64 or 128).
  std::int64_t batch_size = 32;
  /// Adam's peak learning rate; it decays along a half cosine to 0 by the
  /// last step (a cheap stand-in for the weight averaging of larger runs).
  double lr = 2e-3;
  /// Training noise levels, log-uniform in [sigma_min, sigma_max] ([−1, 1] units).
  double sigma_min = 0.02;
  double sigma_max = 2.0;
  /// Shuffling, noise levels and noise; the initial weights are fixed where
  /// the Denoiser is built (with_global_seed).
  std::uint64_t seed = 0;
  /// Batch size of the per-epoch test evaluation.
  std::int64_t eval_batch_size = 500;
  /// Probability that a training image's label is replaced by the "no label"
  /// token (a conditional denoiser with the token only; classifier-free
  /// guidance uses 0.1-0.2).
  double label_dropout = 0.1;
  /// Noise levels of the denoising-error table written after training.
  std::vector<double> error_sigmas{0.1, 0.25, 0.5, 1.0};
  /// Folder for checkpoint.pt, written after every epoch ("" = none).
  std::string out_dir;
  /// Continue from out_dir/checkpoint.pt when it exists (else start afresh).
  bool resume = true;

  RL_SETTER(epochs)
  RL_SETTER(batch_size)
  RL_SETTER(lr)
  RL_SETTER(sigma_min)
  RL_SETTER(sigma_max)
  RL_SETTER(seed)
  RL_SETTER(eval_batch_size)
  RL_SETTER(label_dropout)
  RL_SETTER(error_sigmas)
  RL_SETTER(out_dir)
  RL_SETTER(resume)

  void check() const;
  /// The recipe (optimizer "adam", schedule "cosine" included; not out_dir and resume).
  nlohmann::json to_json() const;
};

struct DenoiserEpochRecord {
  std::int64_t epoch = 0;    ///< 1-based
  double learning_rate = 0;  ///< at the epoch's last step
  /// Mean weighted DSM loss over the epoch's training batches.
  double train_loss = 0;
  /// On the test set after the epoch, with the same noise levels and noise every epoch.
  double test_loss = 0;
  double seconds = 0;
  nlohmann::json to_json() const;
  /// `where` names the record in errors (a missing key or a wrong type).
  static DenoiserEpochRecord from_json(const nlohmann::json& json, const std::string& where = "denoiser epoch record");
};

/// The Bayes-optimal denoiser of Gaussians fitted to data (in the [−1, 1]
/// space): one per class and one for all images, E[x | x + σn] =
/// μ + Σ(Σ + σ²I)⁻¹(x + σn − μ). A trivial baseline that a learned denoiser
/// should beat: it knows the classes' means and covariances and nothing more.
class GaussianDenoiser {
 public:
  /// Fits means and covariances (eigendecomposed) to `data`; every class needs an image.
  explicit GaussianDenoiser(const Dataset& data);
  /// Denoised N×C×H×W in the [−1, 1] space; labels undefined: the Gaussian of all images.
  at::Tensor denoise(const at::Tensor& noisy, double sigma, const at::Tensor& labels) const;

 private:
  struct Fit {
    at::Tensor mean, eigenvalues, eigenvectors;  // D, D, D×D (float64)
  };
  static Fit fit(const at::Tensor& rows);
  static at::Tensor apply(const Fit& fit, const at::Tensor& rows, double sigma);
  std::vector<Fit> classes_;
  Fit all_;
};

/// Mean squared error per pixel ([−1, 1] units) of denoising x + σn back to x,
/// per noise level: the learned denoiser given the label (conditional), given
/// none (unconditional: an unconditional denoiser or the "no label" token),
/// identity (σ²), and, when fitted, the Gaussian baselines per class and for all
/// images. NaN where a denoiser cannot answer. Every column sees the same noise.
struct DenoisingErrors {
  std::vector<double> sigmas, conditional, unconditional, identity, gaussian_class, gaussian_all;
  std::int64_t images = 0;
  nlohmann::json to_json() const;
};

/// The table above on `data`, noise from a generator seeded with `seed`.
/// `gaussian` may be null (no baseline columns).
DenoisingErrors evaluate_denoising_errors(Denoiser& denoiser, const Dataset& data, const std::vector<double>& sigmas,
                                          std::uint64_t seed, const GaussianDenoiser* gaussian,
                                          std::int64_t batch_size = 500);

struct DenoiserTrainResult {
  std::vector<DenoiserEpochRecord> epochs;
  std::int64_t resumed_after_epoch = 0;  ///< epochs taken from a checkpoint
  /// After the last epoch on the test images, Gaussian baselines fitted to the training images.
  DenoisingErrors errors;
  nlohmann::json to_json() const;
};

/// Mean DSM loss over a dataset (no gradients) with noise levels and noise
/// from a generator seeded with `seed`: the same number for the same weights.
double evaluate_denoiser(Denoiser& denoiser, const Dataset& data, const DenoiserTrainOptions& options,
                         std::uint64_t seed);

/// Trains `denoiser` in place with Adam on `train` (labels used when it is
/// conditional; dropped to the "no label" token with probability
/// label_dropout when the spec has it), evaluating on `test` after every
/// epoch, on the training loop of core/training_loop.h (a checkpoint in
/// options.out_dir after every epoch, resumed when there); `on_epoch` sees
/// each finished epoch. Ends with the denoising-error
/// table. Sets denoiser.training_record() to the recipe, the log, the error
/// table and the training data's name.
DenoiserTrainResult train_denoiser(Denoiser& denoiser, const Dataset& train, const Dataset& test,
                                   const DenoiserTrainOptions& options, const ProgressCallback& progress = {},
                                   const std::function<void(const DenoiserEpochRecord&)>& on_epoch = {});

}  // namespace robustlens
