#include "robustlens/data/synthetic_subspace.h"

#include "robustlens/core/error.h"
#include "robustlens/core/random.h"
#include "robustlens/spectral/dct.h"

#include <cstdlib>
#include <sstream>
#include <vector>

namespace robustlens {
namespace {

std::uint64_t split_seed(Split split) { return split == Split::train ? 0x5b5e0001 : 0x5b5e0002; }

/// The number `part` spells in full, else an Error naming the spec.
double spec_number(const std::string& part, const std::string& text) {
  char* end = nullptr;
  const double value = std::strtod(part.c_str(), &end);
  RL_CHECK(!part.empty() && end == part.c_str() + part.size(), "synthetic subspace spec '", text.substr(0, 200), "': '",
           part.substr(0, 50), "' is not a number (expected START[:SIZE[:EPS[:SIGMA]]])");
  return value;
}

}  // namespace

void SyntheticSubspaceSpec::check() const {
  RL_CHECK(size >= 1 && start >= 0 && start + size <= kSide, "synthetic subspace spec: the block ", start, "..",
           start + size - 1, " must lie within the ", kSide, " DCT coefficients (start >= 0, size >= 1)");
  RL_CHECK(eps > 0 && eps <= 5, "synthetic subspace spec: eps must be in (0, 5], got ", eps);
  RL_CHECK(sigma >= 0 && sigma <= 0.2, "synthetic subspace spec: sigma must be in [0, 0.2], got ", sigma,
           " (larger noise is clipped at 0 and 1 and leaks class information out of the block)");
}

nlohmann::json SyntheticSubspaceSpec::to_json() const {
  return {{"start", start},           {"size", size},          {"eps", eps}, {"sigma", sigma}, {"side", kSide},
          {"train_size", kTrainSize}, {"test_size", kTestSize}};
}

SyntheticSubspaceSpec parse_synthetic_subspace_spec(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  for (std::string part; std::getline(stream, part, ':');) parts.push_back(part);
  RL_CHECK(!parts.empty() && parts.size() <= 4, "synthetic subspace spec '", text.substr(0, 200),
           "': expected START[:SIZE[:EPS[:SIGMA]]], e.g. 0 or 20:8:0.5:0.05");
  SyntheticSubspaceSpec spec;
  std::vector<double> values;
  for (const std::string& part : parts) values.push_back(spec_number(part, text));
  for (std::size_t i = 0; i < 2 && i < values.size(); ++i) {
    RL_CHECK(values[i] == static_cast<double>(static_cast<std::int64_t>(values[i])), "synthetic subspace spec '",
             text.substr(0, 200), "': START and SIZE must be integers");
  }
  spec.start = static_cast<std::int64_t>(values[0]);
  if (values.size() > 1) spec.size = static_cast<std::int64_t>(values[1]);
  if (values.size() > 2) spec.eps = values[2];
  if (values.size() > 3) spec.sigma = values[3];
  spec.check();
  return spec;
}

at::Tensor synthetic_direction(const SyntheticSubspaceSpec& spec) {
  spec.check();
  const auto n = SyntheticSubspaceSpec::kSide;
  const at::Generator generator =
      make_generator(derive_seed(0x5b5e0000, static_cast<std::uint64_t>(spec.start * n + spec.size)));
  at::Tensor coefficients = at::zeros({1, n, n});
  coefficients.slice(1, spec.start, spec.start + spec.size).slice(2, spec.start, spec.start + spec.size) =
      random_normal({1, spec.size, spec.size}, generator);
  coefficients /= coefficients.norm();
  return idct2(coefficients);
}

Dataset make_synthetic_subspace_dataset(const SyntheticSubspaceSpec& spec, Split split) {
  const at::Tensor direction = synthetic_direction(spec);
  const std::int64_t count =
      split == Split::train ? SyntheticSubspaceSpec::kTrainSize : SyntheticSubspaceSpec::kTestSize;
  const auto n = SyntheticSubspaceSpec::kSide;
  const at::Generator generator = make_generator(split_seed(split));
  Dataset dataset;
  dataset.labels = (random_uniform({count}, generator) < 0.5).to(at::kLong);
  const at::Tensor sign = (dataset.labels.to(at::kFloat) * 2 - 1).view({count, 1, 1, 1});
  const at::Tensor noise = random_normal({count, 1, n, n}, generator) * spec.sigma;
  dataset.images = (0.5 + sign * spec.eps * direction.unsqueeze(0) + noise).clamp(0, 1).contiguous();
  dataset.class_names = {"minus", "plus"};
  return dataset;
}

}  // namespace robustlens
