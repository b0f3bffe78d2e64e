#include "robustlens/data/dataset_source.h"

#include "robustlens/data/held_datasets.h"

#include "robustlens/core/error.h"
#include "robustlens/core/limits.h"
#include "robustlens/core/parsing.h"
#include "robustlens/core/random.h"
#include "robustlens/data/cifar10.h"
#include "robustlens/data/corruptions.h"
#include "robustlens/data/distractor.h"
#include "robustlens/data/idx.h"
#include "robustlens/data/image_folder.h"
#include "robustlens/data/synthetic_subspace.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace robustlens {
namespace fs = std::filesystem;
namespace {

const std::vector<std::string> kFashionClassNames = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                     "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/// DIR/NAME or DIR/NAME.gz, whichever exists.
std::string find_idx_file(const fs::path& directory, const std::string& name) {
  for (const std::string& candidate : {name, name + ".gz"}) {
    if (fs::is_regular_file(directory / candidate)) return (directory / candidate).string();
  }
  RL_CHECK(false, "idx dataset folder '", directory.string(), "' has no ", name, " (or ", name, ".gz)");
  return {};
}

Dataset load_idx(const fs::path& directory, Split split, std::vector<std::string> class_names) {
  RL_CHECK(fs::is_directory(directory), "idx dataset folder '", directory.string(), "' does not exist");
  const std::string prefix = split == Split::train ? "train" : "t10k";
  Dataset dataset;
  dataset.images = read_idx_images(find_idx_file(directory, prefix + "-images-idx3-ubyte"));
  dataset.labels = read_idx_labels(find_idx_file(directory, prefix + "-labels-idx1-ubyte"));
  RL_CHECK(dataset.images.size(0) == dataset.labels.size(0), "idx dataset '", directory.string(),
           "': ", dataset.images.size(0), " images but ", dataset.labels.size(0), " labels in the ", to_string(split),
           " split");
  if (class_names.empty()) {
    std::ifstream names_file(directory / "classes.txt");
    for (std::string line; std::getline(names_file, line);) {
      if (!line.empty()) class_names.push_back(line);
    }
  }
  if (class_names.empty()) {
    class_names = numbered_class_names(std::max<std::int64_t>(2, dataset.labels.max().item<std::int64_t>() + 1));
  }
  dataset.class_names = std::move(class_names);
  return dataset;
}

Dataset load_cifar10(fs::path directory, Split split) {
  if (fs::is_directory(directory / "cifar-10-batches-bin")) directory /= "cifar-10-batches-bin";
  RL_CHECK(fs::is_directory(directory), "CIFAR-10 folder '", directory.string(), "' does not exist");
  std::vector<std::string> files;
  if (split == Split::test) {
    files.push_back("test_batch.bin");
  } else {
    for (int i = 1; i <= 5; ++i) files.push_back("data_batch_" + std::to_string(i) + ".bin");
  }
  std::vector<at::Tensor> images, labels;
  for (const std::string& file : files) {
    RL_CHECK(fs::is_regular_file(directory / file), "CIFAR-10 folder '", directory.string(), "' has no ", file);
    auto [batch_images, batch_labels] = read_cifar10_batch((directory / file).string());
    images.push_back(batch_images);
    labels.push_back(batch_labels);
  }
  return {"", at::cat(images), at::cat(labels), cifar10_class_names(directory.string()), {}};
}

}  // namespace

std::string default_fashion_mnist_directory() {
  const char* override_dir = std::getenv("ROBUSTLENS_FASHION_MNIST_DIR");
  return override_dir != nullptr && *override_dir != '\0' ? override_dir : "/usr/share/datasets/fashion-mnist";
}

DatasetSpec parse_dataset_spec(const std::string& spec) {
  const std::string distractor_prefix = "distractor:", corruption_marker = "+corrupt:";
  DatasetSpec parsed;
  parsed.base = spec;
  if (const auto marker = spec.rfind(corruption_marker); marker != std::string::npos) {
    parsed.base = spec.substr(0, marker);
    parsed.corruption = spec.substr(marker + corruption_marker.size());
    RL_CHECK(parsed.base.find(corruption_marker) == std::string::npos, "dataset spec '", spec.substr(0, 200),
             "': one corruption per dataset (expected SPEC+corrupt:NAME:SEVERITY once)");
    try {
      parse_corruption(parsed.corruption);
    } catch (const Error& error) {
      throw Error("dataset spec '" + spec.substr(0, 200) + "': " + error.what());
    }
  }
  std::string base = parsed.base;
  if (base.rfind(distractor_prefix, 0) == 0) {
    parsed.distractor = true;
    base = base.substr(distractor_prefix.size());
    RL_CHECK(base.rfind(distractor_prefix, 0) != 0, "dataset spec '", spec.substr(0, 200),
             "': distractor data cannot be nested (expected distractor:KIND[:DIR] with another kind)");
  }
  const auto colon = base.find(':');
  parsed.kind = base.substr(0, colon);
  parsed.directory = colon == std::string::npos ? "" : base.substr(colon + 1);
  const bool known = parsed.kind == "fashion-mnist" || parsed.kind == "mnist" || parsed.kind == "idx" ||
                     parsed.kind == "cifar10" || parsed.kind == "folder" || parsed.kind == "synthetic-subspace" ||
                     parsed.kind == "glyphs" || parsed.kind == "memory";
  RL_CHECK(known, "dataset spec '", spec.substr(0, 200), "': unknown dataset kind '", parsed.kind.substr(0, 100),
           "' (expected fashion-mnist, mnist, idx, cifar10, folder, synthetic-subspace, glyphs or distractor)");
  RL_CHECK(parsed.kind == "fashion-mnist" || parsed.kind == "glyphs" || !parsed.directory.empty(), "dataset spec '",
           spec.substr(0, 200),
           "': expected fashion-mnist, synthetic-subspace:START, or KIND:DIR with KIND one of fashion-mnist, mnist, "
           "idx, cifar10, folder, distractor");
  if (parsed.kind == "synthetic-subspace" || (parsed.kind == "glyphs" && !parsed.directory.empty())) {
    try {
      if (parsed.kind == "glyphs") {
        parse_image_shape(parsed.directory);
      } else {
        parse_synthetic_subspace_spec(parsed.directory);
      }
    } catch (const Error& error) {
      throw Error("dataset spec '" + spec.substr(0, 200) + "': " + error.what());
    }
  }
  return parsed;
}

std::vector<std::int64_t> parse_image_shape(const std::string& text) {
  std::vector<std::int64_t> shape;
  std::stringstream stream(text);
  for (std::string part; shape.size() <= 3 && std::getline(stream, part, ',');) {
    const auto value = parse_int64(part);
    RL_CHECK(value && *value > 0, "image shape spec: '", part.substr(0, 100),
             "' is not a positive integer (expected C,H,W)");
    shape.push_back(*value);
  }
  RL_CHECK(shape.size() == 3, "image shape spec: expected three numbers C,H,W, got '", text.substr(0, 200), "'");
  RL_CHECK(shape[0] == 1 || shape[0] == 3, "image shape spec: C must be 1 (grey) or 3 (RGB), got ", shape[0]);
  RL_CHECK(shape[1] <= kMaxImageSide && shape[2] <= kMaxImageSide, "image shape spec: H and W must be at most ",
           kMaxImageSide, ", got ", shape[1], "×", shape[2]);
  return shape;
}

std::uint64_t corruption_seed(Split split, const std::string& corruption) {
  return derive_seed(split == Split::train ? 0xc0220001 : 0xc0220002, parse_corruption(corruption).stream());
}

Dataset load_dataset(const std::string& spec, Split split, const std::vector<std::int64_t>& image_shape) {
  const DatasetSpec parsed = parse_dataset_spec(spec);
  if (!parsed.corruption.empty()) {
    Dataset dataset = load_dataset(parsed.base, split, image_shape);
    dataset.images = corrupt(dataset.images, parse_corruption(parsed.corruption),
                             make_generator(corruption_seed(split, parsed.corruption)));
    dataset.name = spec + " (" + to_string(split) + ")";
    dataset.validate();
    return dataset;
  }
  if (parsed.distractor) {
    Dataset dataset =
        make_distractor_dataset(load_dataset(spec.substr(std::string("distractor:").size()), split, image_shape),
                                distractor_placement_seed(split));
    dataset.name = spec + " (" + to_string(split) + ")";
    dataset.validate();
    return dataset;
  }
  const std::string& kind = parsed.kind;
  const std::string& directory = parsed.directory;
  Dataset dataset;
  if (kind == "fashion-mnist") {
    const std::string where = directory.empty() ? default_fashion_mnist_directory() : directory;
    RL_CHECK(!directory.empty() || fs::is_directory(where), "Fashion-MNIST was not found in ", where,
             ": install Debian's package with 'sudo apt-get install dataset-fashion-mnist' "
             "(or give dataset spec fashion-mnist:DIR for a folder of idx files)");
    dataset = load_idx(where, split, kFashionClassNames);
  } else if (kind == "mnist") {
    dataset = load_idx(directory, split, numbered_class_names(10));
  } else if (kind == "idx") {
    dataset = load_idx(directory, split, {});
  } else if (kind == "cifar10") {
    dataset = load_cifar10(directory, split);
  } else if (kind == "glyphs") {
    dataset =
        make_glyph_dataset(directory.empty() ? std::vector<std::int64_t>{1, 28, 28} : parse_image_shape(directory),
                           split == Split::train ? 10000 : 2000);
  } else if (kind == "synthetic-subspace") {
    dataset = make_synthetic_subspace_dataset(parse_synthetic_subspace_spec(directory), split);
  } else if (kind == "memory") {
    dataset = held_dataset(directory, split);
  } else {  // folder
    const fs::path split_dir = fs::path(directory) / to_string(split);
    const bool has_splits =
        fs::is_directory(fs::path(directory) / "train") && fs::is_directory(fs::path(directory) / "test");
    dataset = read_image_folder(has_splits ? split_dir.string() : directory, image_shape);
  }
  dataset.name = spec + " (" + to_string(split) + ")";
  dataset.validate();
  return dataset;
}

}  // namespace robustlens
