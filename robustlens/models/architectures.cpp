#include "robustlens/models/architectures.h"

#include "robustlens/core/error.h"
#include "robustlens/core/json_fields.h"
#include "robustlens/core/limits.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/pooling.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>

#include <cmath>

namespace robustlens {
namespace {

namespace F = torch::nn::functional;

/// Spatial size after LeNet's conv(pad 2) → pool 2 → conv 5 → pool 2.
std::int64_t lenet_feature_side(std::int64_t side) { return ((side / 2) - 4) / 2; }

/// The activation every built-in network uses, chosen by the spec.
struct Activation {
  bool softplus;
  double beta;
  at::Tensor operator()(const at::Tensor& x) const {
    return softplus ? F::softplus(x, F::SoftplusFuncOptions().beta(beta)) : at::relu(x);
  }
};

class MlpImpl : public ClassifierNetImpl {
 public:
  MlpImpl(const ArchitectureSpec& spec, Activation activation) : activation_(activation) {
    std::int64_t in = spec.input_shape[0] * spec.input_shape[1] * spec.input_shape[2];
    for (std::int64_t i = 0; i < spec.depth; ++i) {
      layers_->push_back(torch::nn::Linear(in, spec.width));
      in = spec.width;
    }
    register_module("layers", layers_);
    build_head(in, spec);
  }
  at::Tensor features(const at::Tensor& images) override {
    at::Tensor x = images.flatten(1);
    for (const auto& layer : *layers_) x = activation_(layer->as<torch::nn::Linear>()->forward(x));
    return x;
  }

 private:
  Activation activation_;
  torch::nn::ModuleList layers_;
};

class LeNetImpl : public ClassifierNetImpl {
 public:
  LeNetImpl(const ArchitectureSpec& spec, Activation activation) : activation_(activation) {
    const std::int64_t c = spec.input_shape[0], w = spec.width;
    conv1_ = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(c, w, 5).padding(2)));
    conv2_ = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(w, 2 * w, 5)));
    const std::int64_t h = lenet_feature_side(spec.input_shape[1]), v = lenet_feature_side(spec.input_shape[2]);
    fc1_ = register_module("fc1", torch::nn::Linear(2 * w * h * v, 120));
    fc2_ = register_module("fc2", torch::nn::Linear(120, 84));
    build_head(84, spec);
  }
  at::Tensor features(const at::Tensor& images) override {
    at::Tensor x = at::max_pool2d(activation_(conv1_->forward(images)), 2);
    x = at::max_pool2d(activation_(conv2_->forward(x)), 2);
    x = activation_(fc1_->forward(x.flatten(1)));
    return activation_(fc2_->forward(x));
  }

 private:
  Activation activation_;
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
};

/// Pre-activation-free basic block of He et al. (CIFAR variant, 1×1 projection shortcut).
class BasicBlockImpl : public torch::nn::Module {
 public:
  BasicBlockImpl(std::int64_t in, std::int64_t out, std::int64_t stride, Activation activation)
      : activation_(activation) {
    conv1_ = register_module(
        "conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false)));
    bn1_ = register_module("bn1", torch::nn::BatchNorm2d(out));
    conv2_ = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(out, out, 3).padding(1).bias(false)));
    bn2_ = register_module("bn2", torch::nn::BatchNorm2d(out));
    if (stride != 1 || in != out) {
      shortcut_conv_ = register_module(
          "shortcut_conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1).stride(stride).bias(false)));
      shortcut_bn_ = register_module("shortcut_bn", torch::nn::BatchNorm2d(out));
    }
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor y = activation_(bn1_->forward(conv1_->forward(x)));
    y = bn2_->forward(conv2_->forward(y));
    const at::Tensor skip = shortcut_conv_ ? shortcut_bn_->forward(shortcut_conv_->forward(x)) : x;
    return activation_(y + skip);
  }

 private:
  Activation activation_;
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, shortcut_conv_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr}, shortcut_bn_{nullptr};
};
TORCH_MODULE(BasicBlock);

class ResNetImpl : public ClassifierNetImpl {
 public:
  ResNetImpl(const ArchitectureSpec& spec, Activation activation) : activation_(activation) {
    const std::int64_t w = spec.width;
    stem_conv_ = register_module(
        "stem_conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(spec.input_shape[0], w, 3).padding(1).bias(false)));
    stem_bn_ = register_module("stem_bn", torch::nn::BatchNorm2d(w));
    std::int64_t in = w;
    for (std::int64_t stage = 0; stage < 3; ++stage) {
      const std::int64_t out = w << stage;
      for (std::int64_t block = 0; block < spec.depth; ++block) {
        blocks_->push_back(BasicBlock(in, out, (stage > 0 && block == 0) ? 2 : 1, activation));
        in = out;
      }
    }
    register_module("blocks", blocks_);
    build_head(in, spec);
  }
  at::Tensor features(const at::Tensor& images) override {
    at::Tensor x = activation_(stem_bn_->forward(stem_conv_->forward(images)));
    for (const auto& block : *blocks_) x = block->as<BasicBlock>()->forward(x);
    return x.mean({2, 3});
  }

 private:
  Activation activation_;
  torch::nn::Conv2d stem_conv_{nullptr};
  torch::nn::BatchNorm2d stem_bn_{nullptr};
  torch::nn::ModuleList blocks_;
};

}  // namespace

void ClassifierNetImpl::build_head(std::int64_t features, const ArchitectureSpec& spec) {
  std::int64_t in = features;
  if (spec.head != "nopen") {
    bottleneck_ = register_module("bottleneck", torch::nn::Linear(features, spec.bottleneck));
    silu_ = spec.head == "nonlinpen";
    in = spec.bottleneck;
  }
  head = register_module("head", torch::nn::Linear(in, spec.num_classes));
}

at::Tensor ClassifierNetImpl::latent(const at::Tensor& images) {
  const at::Tensor h = features(images);
  if (!bottleneck_) return h;
  const at::Tensor z = bottleneck_->forward(h);
  return silu_ ? at::silu(z) : z;
}

ArchitectureSpec ArchitectureSpec::resolved() const {
  ArchitectureSpec spec = *this;
  RL_CHECK(spec.name == "mlp" || spec.name == "lenet" || spec.name == "resnet",
           "architecture: expected mlp, lenet or resnet, got '", spec.name, "'");
  check_input_shape(spec.input_shape, "architecture");
  RL_CHECK(spec.num_classes >= 2 && spec.num_classes <= kMaxClasses, "architecture: needs 2 to ", kMaxClasses,
           " classes, got ", spec.num_classes);
  RL_CHECK(spec.activation == "relu" || spec.activation == "softplus",
           "architecture: activation must be relu or softplus, got '", spec.activation.substr(0, 100), "'");
  RL_CHECK(std::isfinite(spec.softplus_beta) && spec.softplus_beta > 0, "architecture: softplus beta must be > 0, got ",
           spec.softplus_beta);
  RL_CHECK(spec.width >= 0 && spec.width <= kMaxWidth && spec.depth >= 0 && spec.depth <= kMaxDepth,
           "architecture: width must lie in [0, ", kMaxWidth, "] and depth in [0, ", kMaxDepth, "] (0 = default), got ",
           spec.width, " and ", spec.depth);
  RL_CHECK(spec.bottleneck <= kMaxWidth, "architecture: bottleneck units must be at most ", kMaxWidth, ", got ",
           spec.bottleneck);
  RL_CHECK(spec.head == "nopen" || spec.head == "binenc" || spec.head == "linpen" || spec.head == "nonlinpen" ||
               spec.head == "wide",
           "architecture: head must be nopen, binenc, linpen, nonlinpen or wide, got '", spec.head, "'");
  RL_CHECK(spec.bottleneck >= 0, "architecture: bottleneck units must be >= 0 (0 = default), got ", spec.bottleneck);
  if (spec.head == "nopen") {
    spec.bottleneck = 0;
  } else if (spec.bottleneck == 0) {
    std::int64_t bits = 0;
    while ((std::int64_t{1} << bits) < spec.num_classes) ++bits;
    spec.bottleneck = spec.head == "wide" ? 512 : bits + 2;
  }
  if (spec.width == 0) spec.width = spec.name == "mlp" ? 256 : 16;
  if (spec.name == "mlp") {
    check_dense_layer(spec.input_shape[0] * spec.input_shape[1] * spec.input_shape[2], spec.width,
                      "architecture: the mlp");
  }
  if (spec.depth == 0) spec.depth = spec.name == "mlp" ? 2 : 1;
  if (spec.name == "lenet") {
    spec.depth = 2;  // fixed: two convolutions
    RL_CHECK(lenet_feature_side(spec.input_shape[1]) >= 1 && lenet_feature_side(spec.input_shape[2]) >= 1,
             "lenet needs images of at least 12×12, got ", spec.input_shape[1], "×", spec.input_shape[2]);
  }
  return spec;
}

nlohmann::json ArchitectureSpec::to_json() const {
  return {{"name", name},
          {"input_shape", input_shape},
          {"num_classes", num_classes},
          {"width", width},
          {"depth", depth},
          {"activation", activation},
          {"softplus_beta", softplus_beta},
          {"head", head},
          {"bottleneck", bottleneck}};
}

ArchitectureSpec ArchitectureSpec::from_json(const nlohmann::json& json, const std::string& where) {
  ArchitectureSpec spec;
  spec.name = required_field<std::string>(json, "name", where);
  spec.input_shape = required_field<std::vector<std::int64_t>>(json, "input_shape", where);
  spec.num_classes = required_field<std::int64_t>(json, "num_classes", where);
  spec.width = required_field<std::int64_t>(json, "width", where);
  spec.depth = required_field<std::int64_t>(json, "depth", where);
  spec.activation = required_field<std::string>(json, "activation", where);
  spec.softplus_beta = required_field<double>(json, "softplus_beta", where);
  // Files written before the bottleneck variants existed have the plain head.
  spec.head = optional_field<std::string>(json, "head", "nopen", where);
  spec.bottleneck = optional_field<std::int64_t>(json, "bottleneck", 0, where);
  return spec.resolved();
}

std::shared_ptr<ClassifierNetImpl> build_architecture(const ArchitectureSpec& requested) {
  const ArchitectureSpec spec = requested.resolved();
  const Activation activation{spec.activation == "softplus", spec.softplus_beta};
  if (spec.name == "mlp") return std::make_shared<MlpImpl>(spec, activation);
  if (spec.name == "lenet") return std::make_shared<LeNetImpl>(spec, activation);
  return std::make_shared<ResNetImpl>(spec, activation);
}

}  // namespace robustlens
