// The emergence of the binary code over training (Sbailò & Ghiringhelli, arXiv 2310.08224: the code collapses
// onto hypercube vertices in the terminal phase, once training accuracy reaches 100%): the latent measures of
// latent.h taken on a fixed probe set of training images after chosen epochs, so that a run shows when the code
// appears relative to when the training accuracy saturates. `train --log-latent-every N` records them.
#pragma once

#include "robustlens/analyses/latent.h"
#include "robustlens/core/model.h"
#include "robustlens/data/dataset.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

namespace robustlens {

struct LatentSnapshot {
  std::int64_t epoch = 0;
  /// From the epoch's training record: accuracy on the training batches as they were trained, and on the test set.
  double train_accuracy = 0, test_accuracy = 0;
  /// On the probe images, with the model's predicted labels.
  double probe_accuracy = 0, same_encoding_fraction = 0, separation_median = 0, nc1 = 0, within_class_variance = 0;
  std::int64_t distinct_codes = 0;
  nlohmann::json to_json() const;
  static LatentSnapshot from_json(const nlohmann::json& record);
};

/// The measures on `probe` (the epoch and the epoch record's accuracies are the caller's to fill).
LatentSnapshot latent_snapshot(Model& model, const Dataset& probe, const LatentOptions& options);

/// The first snapshot's epoch at which `value` reaches `level`, or -1 when none does.
std::int64_t first_epoch_reaching(const std::vector<LatentSnapshot>& snapshots, double LatentSnapshot::*value,
                                  double level);

}  // namespace robustlens
