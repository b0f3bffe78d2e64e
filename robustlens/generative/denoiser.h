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

  DenoiserSpec& set_input_shape(std::vector<std::int64_t> v) { input_shape = std::move(v); return *this; }
  DenoiserSpec& set_num_classes(std::int64_t v) { num_classes = v; return *this; }
  DenoiserSpec& set_channels(std::int64_t v) { channels = v; return *this; }
  DenoiserSpec& set_embedding_dim(std::int64_t v) { embedding_dim = v; return *this; }
  DenoiserSpec& set_sigma_data(double v) { sigma_data = v; return *this; }

  bool conditional() const { return num_classes > 0; }
  void check() const;
  nlohmann::json to_json() const;
  static DenoiserSpec from_json(const nlohmann::json& json);
};

/// Images in [0,1] → the denoiser's space [−1, 1].
at::Tensor to_denoiser_space(const at::Tensor& images01);

class Denoiser {
 public:
  /// Fresh parameters from LibTorch's global generator (seed it first).
  explicit Denoiser(const DenoiserSpec& spec);
  ~Denoiser();
  Denoiser(const Denoiser&) = delete;
  Denoiser& operator=(const Denoiser&) = delete;

  /// D(x; σ, y): noisy images N×C×H×W in the [−1, 1] space (on the
  /// denoiser's device), sigma a tensor of N values or one value (> 0), labels
  /// int64 N in [0, num_classes) for a conditional denoiser (ignored, and may
  /// be undefined, for an unconditional one) → denoised images, same space.
  at::Tensor denoise(const at::Tensor& noisy, const at::Tensor& sigma, const at::Tensor& labels);
  /// The DSM loss of a batch: mean over images and pixels of
  /// λ(σ)·(D(x + σ·noise; σ, y) − x)², for clean images x in [−1, 1], sigma N,
  /// standard normal noise like x (drawn by the caller: training and
  /// evaluation keep their own random streams).
  at::Tensor loss(const at::Tensor& clean, const at::Tensor& sigma, const at::Tensor& noise,
                  const at::Tensor& labels);

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
/// unconditional one. (∇ in [0,1] pixel units is twice this.)
at::Tensor denoiser_score(Denoiser& denoiser, const at::Tensor& images01, const at::Tensor& labels,
                          double sigma = 0.5, std::int64_t batch_size = 256);

struct DenoiserTrainOptions {
  std::int64_t epochs = 5;
  /// Small batches: more steps per second of CPU (measured better loss per minute than 64 or 128).
  std::int64_t batch_size = 32;
  /// Adam's peak learning rate; it decays along a half cosine to 0 by the
  /// last step (a cheap stand-in for the weight averaging of larger runs).
  double lr = 2e-3;
  /// Training noise levels, log-uniform in [sigma_min, sigma_max] ([−1, 1] units).
  double sigma_min = 0.02;
  double sigma_max = 2.0;
  /// Shuffling, noise levels and noise; the initial weights come from the
  /// global generator when the Denoiser is built.
  std::uint64_t seed = 0;
  /// Batch size of the per-epoch test evaluation.
  std::int64_t eval_batch_size = 500;

  DenoiserTrainOptions& set_epochs(std::int64_t v) { epochs = v; return *this; }
  DenoiserTrainOptions& set_batch_size(std::int64_t v) { batch_size = v; return *this; }
  DenoiserTrainOptions& set_lr(double v) { lr = v; return *this; }
  DenoiserTrainOptions& set_sigma_min(double v) { sigma_min = v; return *this; }
  DenoiserTrainOptions& set_sigma_max(double v) { sigma_max = v; return *this; }
  DenoiserTrainOptions& set_seed(std::uint64_t v) { seed = v; return *this; }
  DenoiserTrainOptions& set_eval_batch_size(std::int64_t v) { eval_batch_size = v; return *this; }

  void check() const;
  /// The recipe (optimizer "adam", schedule "cosine" included).
  nlohmann::json to_json() const;
};

struct DenoiserEpochRecord {
  std::int64_t epoch = 0;  ///< 1-based
  double learning_rate = 0;  ///< at the epoch's last step
  /// Mean weighted DSM loss over the epoch's training batches.
  double train_loss = 0;
  /// On the test set after the epoch, with the same noise levels and noise every epoch.
  double test_loss = 0;
  double seconds = 0;
  nlohmann::json to_json() const;
};

struct DenoiserTrainResult {
  std::vector<DenoiserEpochRecord> epochs;
  nlohmann::json to_json() const;
};

/// Mean DSM loss over a dataset (no gradients) with noise levels and noise
/// from a generator seeded with `seed`: the same number for the same weights.
double evaluate_denoiser(Denoiser& denoiser, const Dataset& data, const DenoiserTrainOptions& options,
                         std::uint64_t seed);

/// Trains `denoiser` in place with Adam on `train` (labels used when it is
/// conditional), evaluating on `test` after every epoch; `on_epoch` sees each
/// finished epoch. Sets denoiser.training_record() to the recipe, the log and
/// the training data's name.
DenoiserTrainResult train_denoiser(Denoiser& denoiser, const Dataset& train, const Dataset& test,
                                   const DenoiserTrainOptions& options, const ProgressCallback& progress = {},
                                   const std::function<void(const DenoiserEpochRecord&)>& on_epoch = {});

}  // namespace robustlens
