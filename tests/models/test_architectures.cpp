#include "robustlens/models/architectures.h"

#include "robustlens/core/error.h"
#include "robustlens/core/limits.h"

#include <torch/nn/modules/linear.h>

#include <gtest/gtest.h>

#include <cmath>

namespace robustlens {
namespace {

TEST(Architectures, EveryArchitectureMapsImagesToLogitsAndFeatures) {
  for (const std::string name : {"mlp", "lenet", "resnet"}) {
    for (const std::vector<std::int64_t> shape : {std::vector<std::int64_t>{1, 28, 28}, {3, 32, 32}}) {
      const ArchitectureSpec spec = ArchitectureSpec().set_name(name).set_input_shape(shape).set_num_classes(7);
      auto net = build_architecture(spec);
      net->eval();
      const at::Tensor x = at::rand({3, shape[0], shape[1], shape[2]});
      EXPECT_EQ(net->forward(x).sizes(), (at::IntArrayRef{3, 7})) << name;
      const at::Tensor features = net->features(x);
      EXPECT_EQ(features.size(0), 3);
      EXPECT_TRUE(at::allclose(net->head->forward(features), net->forward(x))) << name;
    }
  }
}

TEST(Architectures, ResolvedSpecRecordsDefaultsAndRoundTrips) {
  const ArchitectureSpec spec = ArchitectureSpec().set_name("resnet").set_depth(3).resolved();
  EXPECT_EQ(spec.width, 16);
  EXPECT_EQ(ArchitectureSpec::from_json(spec.to_json()).to_json(), spec.to_json());
  EXPECT_THROW(ArchitectureSpec().set_name("vgg").resolved(), Error);
  EXPECT_THROW(ArchitectureSpec().set_activation("tanh").resolved(), Error);
  EXPECT_THROW(ArchitectureSpec().set_name("lenet").set_input_shape({1, 8, 8}).resolved(), Error);
}

TEST(Architectures, BottleneckVariantsExposeTheirLatentAndHeadOfLatentGivesTheLogits) {
  for (const std::string name : {"mlp", "lenet", "resnet"}) {
    for (const std::string head : {"nopen", "binenc", "linpen", "nonlinpen", "wide"}) {
      const ArchitectureSpec spec = ArchitectureSpec().set_name(name).set_head(head).set_num_classes(10).resolved();
      auto net = build_architecture(spec);
      net->eval();
      const at::Tensor x = at::rand({4, 1, 28, 28});
      const at::Tensor features = net->features(x), z = net->latent(x);
      const std::int64_t expected = head == "nopen" ? features.size(1) : head == "wide" ? 512 : 6;
      EXPECT_EQ(z.sizes(), (at::IntArrayRef{4, expected})) << name << " " << head;
      EXPECT_TRUE(at::allclose(net->head->forward(z), net->forward(x))) << name << " " << head;
      if (head == "nopen") EXPECT_TRUE(z.equal(features));
      // linear bottlenecks: z is affine in the features; nonlinpen: SiLU of that.
      if (head == "binenc" || head == "linpen" || head == "nonlinpen") {
        const auto& bottleneck = net->named_modules()["bottleneck"]->as<torch::nn::Linear>();
        const at::Tensor affine = bottleneck->forward(features);
        EXPECT_TRUE(at::allclose(z, head == "nonlinpen" ? at::silu(affine) : affine)) << name << " " << head;
      }
    }
  }
}

TEST(Architectures, BottleneckSizeDefaultsToTheHypercubeWithAMarginAndOldRecordsReadAsNopen) {
  EXPECT_EQ(ArchitectureSpec().set_head("binenc").set_num_classes(10).resolved().bottleneck, 6);  // 2^4 >= 10, + 2
  EXPECT_EQ(ArchitectureSpec().set_head("binenc").set_num_classes(4).resolved().bottleneck, 4);
  EXPECT_EQ(ArchitectureSpec().set_head("binenc").set_num_classes(5).resolved().bottleneck, 5);
  EXPECT_EQ(ArchitectureSpec().set_head("wide").resolved().bottleneck, 512);
  EXPECT_EQ(ArchitectureSpec().set_head("linpen").set_bottleneck(3).resolved().bottleneck, 3);
  EXPECT_EQ(ArchitectureSpec().set_bottleneck(3).resolved().bottleneck, 0);  // nopen has none
  EXPECT_TRUE(ArchitectureSpec().set_head("wide").penalised());
  EXPECT_FALSE(ArchitectureSpec().set_head("linpen").penalised());
  EXPECT_THROW(ArchitectureSpec().set_head("binary").resolved(), Error);

  nlohmann::json old_record = ArchitectureSpec().resolved().to_json();
  old_record.erase("head");
  old_record.erase("bottleneck");
  EXPECT_EQ(ArchitectureSpec::from_json(old_record).head, "nopen");
  const ArchitectureSpec binenc = ArchitectureSpec().set_head("binenc").set_bottleneck(5).resolved();
  EXPECT_EQ(ArchitectureSpec::from_json(binenc.to_json()).to_json(), binenc.to_json());
}

TEST(Architectures, SpecsBeyondTheDocumentedBoundsAreRefusedBeforeAnythingIsBuilt) {
  const auto refused = [](const ArchitectureSpec& spec, const std::string& fragment) {
    try {
      spec.resolved();
      ADD_FAILURE() << "accepted " << spec.to_json().dump();
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << error.what();
    }
  };
  const ArchitectureSpec mlp = ArchitectureSpec().set_name("mlp").set_input_shape({1, 28, 28}).set_num_classes(10);
  EXPECT_NO_THROW(ArchitectureSpec(mlp).set_width(kMaxWidth).resolved());
  refused(ArchitectureSpec(mlp).set_width(kMaxWidth + 1), "width must lie in [0, 16384]");
  refused(ArchitectureSpec(mlp).set_depth(kMaxDepth + 1), "depth in [0, 64]");
  refused(ArchitectureSpec(mlp).set_num_classes(kMaxClasses + 1), "needs 2 to 100000 classes");
  refused(ArchitectureSpec(mlp).set_input_shape({1, 28, kMaxImageSide + 1}), "1 <= H, W <= 4096");
  refused(ArchitectureSpec(mlp).set_input_shape({3, 4096, 4096}).set_width(1024), "weights");
  refused(ArchitectureSpec(mlp).set_head("binenc").set_bottleneck(kMaxWidth + 1), "bottleneck units must be at most");
  for (const double beta : {0.0, -1.0, std::nan("")}) {
    refused(ArchitectureSpec(mlp).set_activation("softplus").set_softplus_beta(beta), "softplus beta must be > 0");
  }
}

}  // namespace
}  // namespace robustlens
