// Datasets held in this process under a name, read by the dataset spec memory:NAME: how the Python module
// (python/) hands its tensors to the commands without writing files. The command-line tool holds none, so there
// memory:NAME is an error that says so.
#pragma once

#include "robustlens/data/dataset.h"

#include <string>

namespace robustlens {

/// Holds `dataset` as split `split` of memory:NAME until released (replacing what was held there).
void hold_dataset(const std::string& name, Split split, Dataset dataset);
/// Forgets both splits of memory:NAME.
void release_held_dataset(const std::string& name);
/// A copy of split `split` of memory:NAME (the tensors shared); an Error when nothing is held there.
Dataset held_dataset(const std::string& name, Split split);

}  // namespace robustlens
