#include "test_support.h"

#include "robustlens/core/error.h"
#include "robustlens/data/idx.h"

#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>

#include <torch/script.h>

#include <sys/wait.h>
#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace robustlens::testing {

TemporaryDirectory::TemporaryDirectory() {
  std::string pattern = (std::filesystem::temp_directory_path() / "robustlens-test-XXXXXX").string();
  path_ = mkdtemp(pattern.data());
}

TemporaryDirectory::~TemporaryDirectory() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

Dataset linear_rule_dataset(std::int64_t size, std::vector<std::int64_t> shape, std::int64_t classes,
                            std::uint64_t seed) {
  at::Generator generator = at::detail::createCPUGenerator(seed);
  std::vector<std::int64_t> full{size};
  full.insert(full.end(), shape.begin(), shape.end());
  const at::Tensor images = at::rand(full, generator).mul(255).round().div(255);
  // The rule depends on the shape and class count only, so that train and test sets agree.
  at::Generator rule_generator =
      at::detail::createCPUGenerator(shape[0] * 1000003 + shape[1] * 1009 + shape[2] + classes);
  const at::Tensor rule = at::randn({shape[0] * shape[1] * shape[2], classes}, rule_generator);
  const at::Tensor labels = (images.flatten(1) - 0.5).matmul(rule).argmax(1);
  return {"synthetic", images, labels, numbered_class_names(classes)};
}

FixedFunctionModel::FixedFunctionModel(std::int64_t classes) {
  info_.kind = "test";
  info_.num_classes = classes;
  info_.class_names = numbered_class_names(classes);
}

LinearModel::LinearModel(at::Tensor weight, at::Tensor bias)
    : FixedFunctionModel(weight.size(0)), weight_(weight.to(at::kDouble)), bias_(bias.to(at::kDouble)) {}

at::Tensor LinearModel::forward(const at::Tensor& images) {
  return at::addmm(bias_, images.flatten(1).to(at::kDouble), weight_.t());
}

at::Tensor MaskedLinearModel::forward(const at::Tensor& images) {
  const at::Tensor x = images.flatten(1).to(at::kDouble);
  return at::addmm(bias_, x / 3 + (2 * x / 3).detach(), weight_.t());
}

void expect_error(const std::function<void()>& action, const std::string& fragment) {
  try {
    action();
    ADD_FAILURE() << "no error; expected one mentioning '" << fragment << "'";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << error.what();
  }
}

void write_idx_dataset(const std::string& directory, const Dataset& train, const Dataset& test) {
  write_idx_images(directory + "/train-images-idx3-ubyte.gz", train.images, true);
  write_idx_labels(directory + "/train-labels-idx1-ubyte.gz", train.labels, true);
  write_idx_images(directory + "/t10k-images-idx3-ubyte.gz", test.images, true);
  write_idx_labels(directory + "/t10k-labels-idx1-ubyte.gz", test.labels, true);
}

void save_linear_torchscript(const std::string& path, const at::Tensor& weight, const at::Tensor& bias,
                             bool with_latent) {
  torch::jit::Module module("LinearClassifier");
  module.register_parameter("weight", weight.clone(), false);
  module.register_parameter("bias", bias.clone(), false);
  module.define(R"(
def forward(self, x):
    return x.flatten(1).matmul(self.weight.t()) + self.bias
)");
  if (with_latent) {
    module.define(R"(
def latent(self, x):
    return x.flatten(1)
)");
  }
  module.save(path);
}

void save_torchscript(const std::string& path, const std::string& forward_body) {
  torch::jit::Module module("Custom");
  module.define("def forward(self, x):\n    " + forward_body + "\n");
  module.save(path);
}

CommandResult run_cli(const std::string& arguments) {
  return run_shell(std::string(ROBUSTLENS_CLI_PATH) + " " + arguments + " 2>&1");
}

CommandResult run_shell(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  std::string output;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

int exited_process_id() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  return child;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

int rewrite_archive(const std::string& from, const std::string& to,
                    const std::function<void(const std::string& name, std::string& record)>& edit) {
  caffe2::serialize::PyTorchStreamReader reader(from);
  caffe2::serialize::PyTorchStreamWriter writer(to);
  int changed = 0;
  for (const std::string& name : reader.getAllRecords()) {
    const auto [data, size] = reader.getRecord(name);
    const std::string original(static_cast<const char*>(data.get()), size);
    std::string record = original;
    edit(name, record);
    changed += record != original;
    writer.writeRecord(name, record.data(), record.size());
  }
  writer.writeEndOfFile();
  return changed;
}

void expect_minimum_consistent_with_robust_accuracy(const nlohmann::json& attack_record) {
  const nlohmann::json& within = attack_record.at("minimal_perturbation").at("share_within_eps");
  const nlohmann::json& ensemble = attack_record.at("minimal_perturbation").at("robust_accuracy");
  const nlohmann::json& robust = attack_record.at("robust_accuracy");
  ASSERT_EQ(within.size(), robust.size());
  ASSERT_EQ(ensemble.size(), robust.size());
  for (std::size_t i = 0; i < robust.size(); ++i) {
    const double pgd = robust[i].at("robust_accuracy").get<double>(), share = within[i].at("share").get<double>();
    // The ensemble's norms alone (re-checked adversarials) agree with the attack's own verdicts up to ties.
    EXPECT_GE(share, 1 - pgd - 0.02) << "eps " << robust[i].at("eps");
    // Robust to the ensemble: robust to the attack and to every member's checked perturbation.
    const double under_ensemble = ensemble[i].at("robust_accuracy").get<double>();
    EXPECT_LE(under_ensemble, pgd) << "eps " << robust[i].at("eps");
    EXPECT_LE(under_ensemble, 1 - share + 1e-12) << "eps " << robust[i].at("eps");
    EXPECT_GE(under_ensemble, 1 - share - 0.02)
        << "eps " << robust[i].at("eps");  // the attack's verdict adds only ties
  }
}

}  // namespace robustlens::testing
