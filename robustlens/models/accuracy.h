// Clean accuracy of a model on a dataset: the first number of every audit.
#pragma once

#include "robustlens/core/model.h"
#include "robustlens/core/options.h"
#include "robustlens/core/progress.h"
#include "robustlens/data/dataset.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

namespace robustlens {

struct AccuracyOptions {
  std::int64_t batch_size = 500;
  RL_SETTER(batch_size)
  nlohmann::json to_json() const { return {{"batch_size", batch_size}}; }
};

struct AccuracyResult {
  double accuracy = 0;
  double mean_loss = 0;  ///< mean cross-entropy
  std::vector<double> per_class_accuracy;
  at::Tensor logits;       ///< N×K, CPU float32
  at::Tensor predictions;  ///< N, int64
  /// Numbers only (no logits); the caller adds options, seed and versions.
  nlohmann::json to_json(const std::vector<std::string>& class_names) const;
};

/// Model in evaluation mode, no autograd, batched.
AccuracyResult evaluate_accuracy(Model& model, const Dataset& dataset, const AccuracyOptions& options,
                                 const ProgressCallback& progress = {});

/// The images of `dataset` the model classifies correctly.
Dataset correctly_classified(Model& model, const Dataset& dataset, std::int64_t batch_size);

}  // namespace robustlens
