#include "robustlens/models/architectures.h"

#include "robustlens/core/error.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace robustlens
