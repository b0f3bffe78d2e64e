#include "robustlens/data/held_datasets.h"

#include "robustlens/core/error.h"

#include <map>
#include <mutex>
#include <utility>

namespace robustlens {
namespace {

struct Held {
  std::mutex mutex;
  std::map<std::pair<std::string, Split>, Dataset> datasets;
};

Held& held() {
  static Held instance;
  return instance;
}

}  // namespace

void hold_dataset(const std::string& name, Split split, Dataset dataset) {
  Held& h = held();
  const std::lock_guard<std::mutex> lock(h.mutex);
  h.datasets[{name, split}] = std::move(dataset);
}

void release_held_dataset(const std::string& name) {
  Held& h = held();
  const std::lock_guard<std::mutex> lock(h.mutex);
  h.datasets.erase({name, Split::train});
  h.datasets.erase({name, Split::test});
}

Dataset held_dataset(const std::string& name, Split split) {
  Held& h = held();
  const std::lock_guard<std::mutex> lock(h.mutex);
  const auto found = h.datasets.find({name, split});
  RL_CHECK(found != h.datasets.end(), "dataset spec 'memory:", name, "': no ", to_string(split),
           " split is held under that name (memory: datasets are tensors given to the Python module)");
  return found->second;
}

}  // namespace robustlens
