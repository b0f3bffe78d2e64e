// The architecture and training options of `train`, declared once so that
// `sweep` (which trains one model per strength) offers the same ones.
#pragma once

#include "robustlens/models/architectures.h"
#include "robustlens/train/trainer.h"

#include <CLI/CLI.hpp>

namespace robustlens::cli {

/// --arch, --width, --depth, --activation, the optimiser and schedule options,
/// and with `with_objective` --objective with its parameters (--eps, --sigma, ...).
void add_training_options(CLI::App& command, ArchitectureSpec& architecture, TrainOptions& training,
                          bool with_objective);

/// One line per finished epoch on stdout (flushed: runs are long).
void print_epoch(const EpochRecord& record);

}  // namespace robustlens::cli
