// A labelled image dataset in memory: images float32 N×C×H×W in [0,1], labels
// int64 N, class names. Readers (idx.h, cifar10.h, image_folder.h) produce it;
// dataset_source.h maps a --data spec to the right reader.
#pragma once

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace robustlens {

enum class Split { train, test };
Split parse_split(const std::string& name);
std::string to_string(Split split);

struct Dataset {
  std::string name;  ///< e.g. "fashion-mnist:test"
  at::Tensor images;
  at::Tensor labels;
  std::vector<std::string> class_names;
  /// N×1×H×W, 1 on the pixels that carry the item and 0 elsewhere, for data
  /// whose signal region is known (the distractor data, data/distractor.h);
  /// undefined for ordinary datasets.
  at::Tensor signal_mask;

  std::int64_t size() const { return images.defined() ? images.size(0) : 0; }
  std::int64_t num_classes() const { return static_cast<std::int64_t>(class_names.size()); }
  /// C, H, W.
  std::vector<std::int64_t> image_shape() const;
  /// Rows by index (bounds checked).
  Dataset subset(const std::vector<std::int64_t>& indices) const;
  /// The images of every class but `excluded` (class indices, each in range), labels renumbered 0, 1, ... in
  /// the order of the classes kept, which keep their names; the name says what was left out.
  Dataset without_classes(const std::vector<std::int64_t>& excluded) const;
  /// The images of the `excluded` classes alone, with their labels and class names as they are here (what a
  /// model trained without them has never seen).
  Dataset only_classes(const std::vector<std::int64_t>& excluded) const;
  /// Shapes, dtypes, finite pixels in [0,1], labels in range; errors name the dataset.
  void validate() const;
  nlohmann::json summary() const;
  /// Name, size and checksum of images and labels: what a training checkpoint must have been trained on.
  nlohmann::json fingerprint() const;
};

/// Checks that every pixel of `images` is finite and in [0,1]; `who` names them in the message.
void check_pixels(const at::Tensor& images, const std::string& who);

/// Class names "0", "1", ... for readers whose files carry none.
std::vector<std::string> numbered_class_names(std::int64_t count);

}  // namespace robustlens
