#include "robustlens/generative/denoiser.h"

#include "robustlens/core/batches.h"
#include "robustlens/core/error.h"
#include "robustlens/core/json_fields.h"
#include "robustlens/core/limits.h"
#include "robustlens/core/model.h"
#include "robustlens/generative/generative_file.h"

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cmath>

namespace robustlens {
namespace {

torch::nn::Conv2d conv3x3(std::int64_t in, std::int64_t out, std::int64_t stride = 1) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1));
}

at::Tensor upsample_to(const at::Tensor& x, const at::Tensor& like) {
  return at::upsample_nearest2d(x, {like.size(2), like.size(3)});
}

/// conv(silu(x)) + embedding, conv(silu(·)), plus x (1×1-projected when the channels change).
class ResidualBlockImpl : public torch::nn::Module {
 public:
  ResidualBlockImpl(std::int64_t in, std::int64_t out, std::int64_t embedding_dim) {
    conv1_ = register_module("conv1", conv3x3(in, out));
    embedding_ = register_module("embedding", torch::nn::Linear(embedding_dim, out));
    conv2_ = register_module("conv2", conv3x3(out, out));
    if (in != out) skip_ = register_module("skip", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1)));
  }
  at::Tensor forward(const at::Tensor& x, const at::Tensor& embedding) {
    at::Tensor h = conv1_->forward(at::silu(x)) + embedding_->forward(embedding).unsqueeze(-1).unsqueeze(-1);
    h = conv2_->forward(at::silu(h));
    return h + (skip_ ? skip_->forward(x) : x);
  }

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, skip_{nullptr};
  torch::nn::Linear embedding_{nullptr};
};
TORCH_MODULE(ResidualBlock);

}  // namespace

/// F of the preconditioning (header): full resolution (c channels) → half
/// (c, two blocks) → quarter (2c, two blocks) → half (block on the skip
/// concatenation) → full (convolution of the concatenated stem features).
struct Denoiser::Network : torch::nn::Module {
  explicit Network(const DenoiserSpec& spec) {
    const std::int64_t image_channels = spec.input_shape[0], c = spec.channels, e = spec.embedding_dim;
    noise_in = register_module("noise_in", torch::nn::Linear(1, e));
    noise_out = register_module("noise_out", torch::nn::Linear(e, e));
    if (spec.conditional()) {
      const std::int64_t rows = spec.num_classes + (spec.no_label_token ? 1 : 0);
      class_embedding = register_module("class_embedding", torch::nn::Embedding(rows, e));
    }
    stem = register_module("stem", conv3x3(image_channels, c));
    down_half = register_module("down_half", conv3x3(c, c, 2));
    for (int i = 0; i < 2; ++i) half_blocks->push_back(ResidualBlock(c, c, e));
    register_module("half_blocks", half_blocks);
    down_quarter = register_module("down_quarter", conv3x3(c, 2 * c, 2));
    for (int i = 0; i < 2; ++i) quarter_blocks->push_back(ResidualBlock(2 * c, 2 * c, e));
    register_module("quarter_blocks", quarter_blocks);
    up_half = register_module("up_half", conv3x3(2 * c, c));
    half_up_block = register_module("half_up_block", ResidualBlock(2 * c, c, e));
    up_full = register_module("up_full", conv3x3(c, c));
    output = register_module("output", conv3x3(2 * c, image_channels));
    use_channels_last();
  }

  /// Convolutions in channels-last layout run through oneDNN on the CPU:
  /// measured 5-10× faster than the default layout for these channel counts.
  void use_channels_last() {
    at::NoGradGuard no_grad;
    for (auto& parameter : parameters()) {
      if (parameter.dim() == 4) parameter.set_data(parameter.contiguous(at::MemoryFormat::ChannelsLast));
    }
  }

  at::Tensor forward(const at::Tensor& x, const at::Tensor& noise_level, const at::Tensor& labels) {
    at::Tensor embedding = noise_out->forward(at::silu(noise_in->forward(noise_level.unsqueeze(1))));
    if (class_embedding) embedding = embedding + class_embedding->forward(labels);
    embedding = at::silu(embedding);
    const at::Tensor full = stem->forward(x.contiguous(at::MemoryFormat::ChannelsLast));
    at::Tensor h = down_half->forward(at::silu(full));
    for (const auto& block : *half_blocks) h = block->as<ResidualBlock>()->forward(h, embedding);
    const at::Tensor half = h;
    h = down_quarter->forward(h);
    for (const auto& block : *quarter_blocks) h = block->as<ResidualBlock>()->forward(h, embedding);
    h = up_half->forward(upsample_to(h, half));
    h = half_up_block->forward(at::cat({h, half}, 1), embedding);
    h = up_full->forward(upsample_to(h, full));
    return output->forward(at::silu(at::cat({h, full}, 1)));
  }

  torch::nn::Linear noise_in{nullptr}, noise_out{nullptr};
  torch::nn::Embedding class_embedding{nullptr};
  torch::nn::Conv2d stem{nullptr}, down_half{nullptr}, down_quarter{nullptr}, up_half{nullptr}, up_full{nullptr},
      output{nullptr};
  torch::nn::ModuleList half_blocks, quarter_blocks;
  ResidualBlock half_up_block{nullptr};
};

void DenoiserSpec::check() const {
  check_input_shape(input_shape, "denoiser");
  RL_CHECK(num_classes >= 0 && num_classes <= kMaxClasses, "denoiser: number of classes must lie in [0, ", kMaxClasses,
           "] (0 = unconditional), got ", num_classes);
  RL_CHECK(channels >= 1 && channels <= kMaxWidth, "denoiser: DenoiserSpec.channels must lie in [1, ", kMaxWidth,
           "], got ", channels);
  RL_CHECK(embedding_dim >= 1 && embedding_dim <= kMaxWidth, "denoiser: DenoiserSpec.embedding_dim must lie in [1, ",
           kMaxWidth, "], got ", embedding_dim);
  RL_CHECK(sigma_data > 0 && std::isfinite(sigma_data), "denoiser: sigma_data must be > 0, got ", sigma_data);
}

nlohmann::json DenoiserSpec::to_json() const {
  return {{"input_shape", input_shape}, {"num_classes", num_classes},
          {"channels", channels},       {"embedding_dim", embedding_dim},
          {"sigma_data", sigma_data},   {"no_label_token", conditional() && no_label_token},
          {"preconditioning", "edm"}};
}

DenoiserSpec DenoiserSpec::from_json(const nlohmann::json& json, const std::string& where) {
  DenoiserSpec spec;
  spec.input_shape = required_field<std::vector<std::int64_t>>(json, "input_shape", where);
  spec.num_classes = required_field<std::int64_t>(json, "num_classes", where);
  spec.channels = required_field<std::int64_t>(json, "channels", where);
  spec.embedding_dim = required_field<std::int64_t>(json, "embedding_dim", where);
  spec.sigma_data = required_field<double>(json, "sigma_data", where);
  // Denoisers written before label dropout existed have no token.
  spec.no_label_token = optional_field<bool>(json, "no_label_token", false, where);
  spec.check();
  return spec;
}

at::Tensor to_denoiser_space(const at::Tensor& images01) { return images01 * 2 - 1; }

Denoiser::Denoiser(const DenoiserSpec& spec) : spec_(spec) {
  spec_.check();
  net_ = std::make_shared<Network>(spec_);
}

Denoiser::~Denoiser() = default;

at::Tensor Denoiser::checked_labels(const at::Tensor& labels, std::int64_t batch) const {
  if (!spec_.conditional()) return {};
  const bool token = spec_.no_label_token;
  if (token && !labels.defined())
    return at::full({batch}, spec_.num_classes, at::TensorOptions(device_).dtype(at::kLong));
  RL_CHECK(labels.defined() && labels.numel() > 0, "the denoiser is class-conditional (", spec_.num_classes,
           " classes) and needs one label per image; none were given (it has no \"no label\" token: it was "
           "trained without label dropout)");
  RL_CHECK(labels.dim() == 1 && labels.size(0) == batch && !at::isFloatingType(labels.scalar_type()),
           "denoiser labels must be integers, one per image (", batch, "), got a ", labels.scalar_type(),
           " tensor of shape ", labels.sizes());
  const std::int64_t low = labels.min().item<std::int64_t>(), high = labels.max().item<std::int64_t>();
  RL_CHECK(low >= (token ? -1 : 0) && high < spec_.num_classes, "denoiser labels must lie in [", token ? -1 : 0, ", ",
           spec_.num_classes - 1, "]", token ? " (-1: no label)" : "", ", found [", low, ", ", high, "]");
  const at::Tensor on_device = labels.to(device_, at::kLong);
  return token ? at::where(on_device < 0, at::full_like(on_device, spec_.num_classes), on_device) : on_device;
}

namespace {

/// EDM's coefficients for sigma N, shaped N×1×1×1.
struct Preconditioning {
  at::Tensor skip, out, in, noise_level;
  Preconditioning(const at::Tensor& sigma, double sigma_data) {
    const at::Tensor s = sigma.view({-1, 1, 1, 1});
    const double sd2 = sigma_data * sigma_data;
    const at::Tensor total = s.square() + sd2;
    skip = sd2 / total;
    out = s * sigma_data / total.sqrt();
    in = total.rsqrt();
    noise_level = sigma.log() / 4;
  }
};

}  // namespace

at::Tensor Denoiser::denoise(const at::Tensor& noisy, const at::Tensor& sigma, const at::Tensor& labels) {
  check_images(noisy, spec_.input_shape, "denoiser");
  const std::int64_t n = noisy.size(0);
  at::Tensor s = sigma.to(device_, dtype_).reshape({-1});
  RL_CHECK(s.numel() == 1 || s.numel() == n, "denoiser: sigma must hold one value or one per image (", n, "), got ",
           s.numel());
  RL_CHECK((s > 0).all().item<bool>(), "denoiser: sigma must be > 0");
  s = s.expand({n}).contiguous();
  const at::Tensor y = checked_labels(labels, n);
  const at::Tensor x = noisy.to(device_, dtype_);
  const Preconditioning c(s, spec_.sigma_data);
  return (c.skip * x + c.out * net_->forward(c.in * x, c.noise_level, y)).contiguous();
}

at::Tensor Denoiser::loss(const at::Tensor& clean, const at::Tensor& sigma, const at::Tensor& noise,
                          const at::Tensor& labels) {
  check_images(clean, spec_.input_shape, "denoiser");
  const std::int64_t n = clean.size(0);
  RL_CHECK(noise.sizes() == clean.sizes(), "denoiser loss: noise must be shaped like the images ", clean.sizes(),
           ", got ", noise.sizes());
  RL_CHECK(sigma.numel() == n, "denoiser loss: one sigma per image (", n, ") expected, got ", sigma.numel());
  const at::Tensor s = sigma.to(device_, dtype_).reshape({-1});
  const at::Tensor x = clean.to(device_, dtype_);
  const at::Tensor noisy = x + s.view({-1, 1, 1, 1}) * noise.to(device_, dtype_);
  const Preconditioning c(s, spec_.sigma_data);
  // λ(σ)·(D − x)² = (F − (x − c_skip·noisy)/c_out)² because λ·c_out² = 1.
  const at::Tensor target = (x - c.skip * noisy) / c.out;
  return (net_->forward(c.in * noisy, c.noise_level, checked_labels(labels, n)) - target).square().mean();
}

void Denoiser::to(const at::Device& device, at::ScalarType dtype) {
  RL_CHECK(at::isFloatingType(dtype), "denoiser: parameters must be floating point, got ", dtype);
  net_->to(device, dtype);
  net_->use_channels_last();
  device_ = device;
  dtype_ = dtype;
}

std::vector<at::Tensor> Denoiser::parameters() { return net_->parameters(); }

std::vector<std::pair<std::string, at::Tensor>> Denoiser::named_parameters() {
  std::vector<std::pair<std::string, at::Tensor>> named;
  for (const auto& item : net_->named_parameters()) named.emplace_back(item.key(), item.value());
  return named;
}

void Denoiser::save(const std::string& path) const {
  save_generative_file(path, kDenoiserFormat, {{"spec", spec_.to_json()}, {"training", training_}}, *net_);
}

void Denoiser::write_parameters(torch::serialize::OutputArchive& archive) const {
  write_generative_parameters(archive, *net_);
}

void Denoiser::read_parameters(torch::serialize::InputArchive& archive, const std::string& path) {
  load_generative_parameters(archive, *net_, path);
  net_->use_channels_last();  // loading copies the stored (contiguous) layout
}

std::unique_ptr<Denoiser> load_denoiser(const std::string& path, const at::Device& device) {
  torch::serialize::InputArchive archive;
  const nlohmann::json metadata = open_generative_file(path, kDenoiserFormat, "denoiser", device, archive);
  const std::string where = "denoiser file '" + path + "': metadata";
  auto denoiser = std::make_unique<Denoiser>(
      DenoiserSpec::from_json(required_field<nlohmann::json>(metadata, "spec", where), where + ".spec"));
  denoiser->to(device);
  denoiser->read_parameters(archive, path);
  denoiser->set_training_record(optional_field<nlohmann::json>(metadata, "training", nlohmann::json::object(), where));
  return denoiser;
}

at::Tensor denoiser_score(Denoiser& denoiser, const at::Tensor& images01, const at::Tensor& labels, double sigma,
                          std::int64_t batch_size) {
  check_images(images01, denoiser.spec().input_shape, "denoiser score");
  RL_CHECK(sigma > 0 && std::isfinite(sigma), "denoiser score: sigma must be > 0, got ", sigma);
  RL_CHECK(batch_size >= 1, "denoiser score: batch size must be >= 1, got ", batch_size);
  const bool with_labels = denoiser.spec().conditional() && labels.defined();
  RL_CHECK(with_labels || denoiser.spec().gives_unconditional_scores(),
           "denoiser score: the denoiser is class-conditional (", denoiser.spec().num_classes,
           " classes) and needs one label per image; none were given (it has no \"no label\" token: it was "
           "trained without label dropout)");
  RL_CHECK(!with_labels || (labels.dim() == 1 && labels.size(0) == images01.size(0)),
           "denoiser score: one label per image (", images01.size(0), ") expected, got shape ", labels.sizes());
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> chunks;
  for (const auto [begin, end] : batches(images01.size(0), batch_size)) {
    const at::Tensor x = to_denoiser_space(images01.slice(0, begin, end).to(denoiser.device(), denoiser.dtype()));
    const at::Tensor y = with_labels ? labels.slice(0, begin, end) : at::Tensor();
    const at::Tensor denoised = denoiser.denoise(x, at::full({1}, sigma, x.options()), y);
    chunks.push_back((denoised - x) / (sigma * sigma));
  }
  RL_CHECK(!chunks.empty(), "denoiser score: no images");
  return at::cat(chunks);
}

}  // namespace robustlens
