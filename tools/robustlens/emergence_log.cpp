#include "emergence_log.h"

#include "common.h"

#include "robustlens/core/console.h"
#include "robustlens/core/files.h"
#include "robustlens/report/chart.h"

#include <algorithm>
#include <filesystem>

namespace robustlens::cli {
namespace {

std::string epoch_or_never(std::int64_t epoch) { return epoch < 0 ? "never" : "epoch " + std::to_string(epoch); }

LineChart emergence_chart(const std::vector<LatentSnapshot>& snapshots) {
  LineChart chart{"Emergence of the latent code", "epoch", "fraction", {}};
  const auto series = [&](const std::string& name, double LatentSnapshot::*value, bool dashed) {
    ChartSeries line;
    line.name = name;
    line.dashed = dashed;
    for (const LatentSnapshot& s : snapshots) {
      line.x.push_back(static_cast<double>(s.epoch));
      line.y.push_back(s.*value);
    }
    chart.series.push_back(line);
  };
  series("same-encoding fraction (probe)", &LatentSnapshot::same_encoding_fraction, false);
  series("training accuracy", &LatentSnapshot::train_accuracy, true);
  series("test accuracy", &LatentSnapshot::test_accuracy, true);
  chart.note = "training accuracy 100%: " +
               epoch_or_never(first_epoch_reaching(snapshots, &LatentSnapshot::train_accuracy, 1.0)) +
               "; same encoding ≥ 0.9: " +
               epoch_or_never(first_epoch_reaching(snapshots, &LatentSnapshot::same_encoding_fraction, 0.9));
  return chart;
}

}  // namespace

EmergenceLog::EmergenceLog(std::int64_t every, std::int64_t epochs, const Dataset& train, std::int64_t probe_images,
                           const std::string& out, bool restart)
    : every_(every), epochs_(epochs), out_(out) {
  if (every_ == 0) return;
  std::vector<std::int64_t> first(static_cast<std::size_t>(std::min(probe_images, train.size())));
  for (std::size_t i = 0; i < first.size(); ++i) first[i] = static_cast<std::int64_t>(i);
  probe_ = train.subset(first);
  const std::filesystem::path earlier = std::filesystem::path(out) / "latent_log.json";
  if (restart || !std::filesystem::exists(earlier)) return;
  for (const nlohmann::json& record : read_json_file(earlier.string()).at("snapshots")) {
    snapshots_.push_back(LatentSnapshot::from_json(record));
  }
}

void EmergenceLog::after_epoch(Model& model, const EpochRecord& record) {
  if (every_ == 0 || (record.epoch % every_ != 0 && record.epoch != epochs_)) return;
  if (first_) {  // a resumed run trains these epochs again: their earlier snapshots go
    snapshots_.erase(std::remove_if(snapshots_.begin(), snapshots_.end(),
                                    [&](const LatentSnapshot& s) { return s.epoch >= record.epoch; }),
                     snapshots_.end());
    first_ = false;
  }
  LatentSnapshot snapshot = latent_snapshot(model, probe_, LatentOptions());
  snapshot.epoch = record.epoch;
  snapshot.train_accuracy = record.train_accuracy;
  snapshot.test_accuracy = record.test_accuracy;
  snapshots_.push_back(snapshot);
  console::print("  latent code after epoch %lld: same encoding %.3f (%lld codes), separation median %.2f, NC1 %.3g\n",
                 static_cast<long long>(snapshot.epoch), snapshot.same_encoding_fraction,
                 static_cast<long long>(snapshot.distinct_codes), snapshot.separation_median, snapshot.nc1);
  write();
}

void EmergenceLog::write() const {
  nlohmann::json snapshots = nlohmann::json::array();
  for (const LatentSnapshot& s : snapshots_) snapshots.push_back(s.to_json());
  const nlohmann::json log = {{"every", every_},
                              {"probe", probe_.summary()},
                              {"probe_is", "the first images of the training set, with the model's predicted labels"},
                              {"snapshots", snapshots}};
  const std::filesystem::path out(out_);
  write_json_file((out / "latent_log.json").string(), log);
  write_svg((out / "emergence.svg").string(), emergence_chart(snapshots_));
}

}  // namespace robustlens::cli
