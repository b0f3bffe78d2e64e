// train --log-latent-every N: after every Nth epoch (and the last) the latent snapshot of
// analyses/latent_emergence.h on a fixed probe of training images, kept in OUT/latent_log.json and drawn in
// OUT/emergence.svg. A resumed run keeps the snapshots of the epochs it does not train again.
#pragma once

#include "robustlens/analyses/latent_emergence.h"
#include "robustlens/core/model.h"
#include "robustlens/data/dataset.h"
#include "robustlens/train/trainer.h"

#include <cstdint>
#include <string>
#include <vector>

namespace robustlens::cli {

class EmergenceLog {
 public:
  /// `every` 0: records nothing. The probe: the first `probe_images` images of `train`.
  EmergenceLog(std::int64_t every, std::int64_t epochs, const Dataset& train, std::int64_t probe_images,
               const std::string& out, bool restart);
  /// After an epoch: a snapshot when it is due, written at once.
  void after_epoch(Model& model, const EpochRecord& record);

 private:
  void write() const;
  std::int64_t every_, epochs_;
  Dataset probe_;
  std::string out_;
  std::vector<LatentSnapshot> snapshots_;
  bool first_ = true;
};

}  // namespace robustlens::cli
