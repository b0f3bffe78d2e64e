#include "robustlens/data/dataset.h"

#include "robustlens/core/checksum.h"
#include "robustlens/core/error.h"

#include <algorithm>
#include <set>

namespace robustlens {

Split parse_split(const std::string& name) {
  RL_CHECK(name == "train" || name == "test", "split: expected train or test, got '", name, "'");
  return name == "train" ? Split::train : Split::test;
}

std::string to_string(Split split) { return split == Split::train ? "train" : "test"; }

std::vector<std::int64_t> Dataset::image_shape() const {
  RL_CHECK(images.defined() && images.dim() == 4, "dataset '", name, "' holds no N×C×H×W images");
  return {images.size(1), images.size(2), images.size(3)};
}

Dataset Dataset::subset(const std::vector<std::int64_t>& indices) const {
  for (const std::int64_t i : indices) {
    RL_CHECK(i >= 0 && i < size(), "sample index ", i, " is out of range for dataset '", name, "' of ", size(),
             " images (valid: 0..", size() - 1, ")");
  }
  const at::Tensor index = at::tensor(indices, at::kLong);
  return {name, images.index_select(0, index), labels.index_select(0, index), class_names,
          signal_mask.defined() ? signal_mask.index_select(0, index) : at::Tensor()};
}

namespace {

/// Rows whose label is (or, with keep false, is not) among `classes`, after checking the class indices.
std::vector<std::int64_t> rows_of_classes(const Dataset& dataset, const std::vector<std::int64_t>& classes, bool keep) {
  for (const std::int64_t k : classes) {
    RL_CHECK(k >= 0 && k < dataset.num_classes(), "class ", k, " is out of range for dataset '", dataset.name, "' of ",
             dataset.num_classes(), " classes (valid: 0..", dataset.num_classes() - 1, ")");
  }
  at::Tensor chosen = at::zeros({dataset.num_classes()}, at::kBool);
  for (const std::int64_t k : classes) chosen[k] = true;
  const at::Tensor rows = (chosen.index_select(0, dataset.labels) == keep).nonzero().flatten().contiguous();
  return {rows.data_ptr<std::int64_t>(), rows.data_ptr<std::int64_t>() + rows.numel()};
}

std::string class_list(const std::vector<std::int64_t>& classes) {
  std::string list;
  for (const std::int64_t k : classes) list += (list.empty() ? "" : ",") + std::to_string(k);
  return list;
}

}  // namespace

Dataset Dataset::without_classes(const std::vector<std::int64_t>& excluded) const {
  Dataset kept = subset(rows_of_classes(*this, excluded, false));
  RL_CHECK(
      num_classes() - static_cast<std::int64_t>(std::set<std::int64_t>(excluded.begin(), excluded.end()).size()) >= 2,
      "dataset '", name, "': excluding classes ", class_list(excluded), " leaves fewer than 2 of its ", num_classes(),
      " classes");
  at::Tensor new_label = at::full({num_classes()}, -1, at::kLong);
  std::vector<std::string> names;
  for (std::int64_t k = 0; k < num_classes(); ++k) {
    if (std::find(excluded.begin(), excluded.end(), k) != excluded.end()) continue;
    new_label[k] = static_cast<std::int64_t>(names.size());
    names.push_back(class_names[static_cast<std::size_t>(k)]);
  }
  kept.labels = new_label.index_select(0, kept.labels);
  kept.class_names = names;
  kept.name = name + " without classes " + class_list(excluded);
  return kept;
}

Dataset Dataset::only_classes(const std::vector<std::int64_t>& excluded) const {
  Dataset held_out = subset(rows_of_classes(*this, excluded, true));
  held_out.name = name + " classes " + class_list(excluded);
  return held_out;
}

void check_pixels(const at::Tensor& images, const std::string& who) {
  RL_CHECK(at::isfinite(images).all().item<bool>(), who, " has NaN or infinite pixels");
  const float low = images.min().item<float>(), high = images.max().item<float>();
  RL_CHECK(low >= 0.0f && high <= 1.0f, who, ": pixels must lie in [0,1], found [", low, ", ", high, "]");
}

void Dataset::validate() const {
  RL_CHECK(images.defined() && images.dim() == 4 && images.scalar_type() == at::kFloat, "dataset '", name,
           "': images must be float32 N×C×H×W");
  RL_CHECK(
      labels.defined() && labels.dim() == 1 && labels.scalar_type() == at::kLong && labels.size(0) == images.size(0),
      "dataset '", name, "': labels must be int64 with one per image (", images.size(0), "), got ",
      labels.defined() ? labels.sizes() : at::IntArrayRef{});
  RL_CHECK(size() > 0, "dataset '", name, "' is empty");
  check_pixels(images, "dataset '" + name + "'");
  RL_CHECK(!signal_mask.defined() ||
               (signal_mask.dim() == 4 && signal_mask.size(0) == images.size(0) && signal_mask.size(1) == 1 &&
                signal_mask.size(2) == images.size(2) && signal_mask.size(3) == images.size(3)),
           "dataset '", name, "': the signal mask must be N×1×H×W matching the images ", images.sizes(), ", got ",
           signal_mask.sizes());
  const std::int64_t min_label = labels.min().item<std::int64_t>(), max_label = labels.max().item<std::int64_t>();
  RL_CHECK(min_label >= 0 && max_label < num_classes(), "dataset '", name, "': labels must lie in [0, ",
           num_classes() - 1, "], found [", min_label, ", ", max_label, "]");
}

nlohmann::json Dataset::summary() const {
  nlohmann::json counts = nlohmann::json::array();
  const at::Tensor histogram = at::bincount(labels, {}, num_classes());
  for (std::int64_t k = 0; k < num_classes(); ++k) counts.push_back(histogram[k].item<std::int64_t>());
  return {{"name", name},
          {"size", size()},
          {"image_shape", image_shape()},
          {"class_names", class_names},
          {"images_per_class", counts}};
}

nlohmann::json Dataset::fingerprint() const {
  return {{"name", name}, {"size", size()}, {"checksum", data_checksum(images, labels)}};
}

std::vector<std::string> numbered_class_names(std::int64_t count) {
  std::vector<std::string> names;
  for (std::int64_t k = 0; k < count; ++k) names.push_back(std::to_string(k));
  return names;
}

}  // namespace robustlens
