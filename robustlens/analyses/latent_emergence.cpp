#include "robustlens/analyses/latent_emergence.h"

#include "robustlens/core/json_fields.h"

namespace robustlens {

nlohmann::json LatentSnapshot::to_json() const {
  return {{"epoch", epoch},
          {"train_accuracy", train_accuracy},
          {"test_accuracy", test_accuracy},
          {"probe_accuracy", probe_accuracy},
          {"same_encoding_fraction", same_encoding_fraction},
          {"distinct_codes", distinct_codes},
          {"separation_median", separation_median},
          {"nc1", nc1},
          {"within_class_variance", within_class_variance}};
}

LatentSnapshot LatentSnapshot::from_json(const nlohmann::json& record) {
  LatentSnapshot s;
  s.epoch = record.at("epoch").get<std::int64_t>();
  s.train_accuracy = number_or_nan(record.at("train_accuracy"));
  s.test_accuracy = number_or_nan(record.at("test_accuracy"));
  s.probe_accuracy = number_or_nan(record.at("probe_accuracy"));
  s.same_encoding_fraction = number_or_nan(record.at("same_encoding_fraction"));
  s.distinct_codes = record.at("distinct_codes").get<std::int64_t>();
  s.separation_median = number_or_nan(record.at("separation_median"));
  s.nc1 = number_or_nan(record.at("nc1"));
  s.within_class_variance = number_or_nan(record.at("within_class_variance"));
  return s;
}

LatentSnapshot latent_snapshot(Model& model, const Dataset& probe, const LatentOptions& options) {
  model.set_training(false);
  const LatentPass pass = latent_pass(model, probe, options.batch_size, "latent snapshot");
  const at::Tensor predicted = pass.logits.argmax(1);
  LatentSnapshot snapshot;
  snapshot.probe_accuracy = (predicted == probe.labels).to(at::kDouble).mean().item<double>();
  const EncodingResult encoding = same_encoding(pass.latent, predicted);
  snapshot.same_encoding_fraction = encoding.same_encoding_fraction;
  snapshot.distinct_codes = encoding.distinct_codes;
  snapshot.separation_median = latent_binarity(pass.latent, options).separation_median;
  const CollapseResult collapse = neural_collapse(pass.latent, predicted);
  snapshot.nc1 = collapse.nc1;
  snapshot.within_class_variance = collapse.within_class_variance;
  return snapshot;
}

std::int64_t first_epoch_reaching(const std::vector<LatentSnapshot>& snapshots, double LatentSnapshot::*value,
                                  double level) {
  for (const LatentSnapshot& snapshot : snapshots) {
    if (snapshot.*value >= level) return snapshot.epoch;
  }
  return -1;
}

}  // namespace robustlens
