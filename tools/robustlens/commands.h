// One function per subcommand: each declares its options on `app` and the
// action to run when it is chosen. The analyses the audit runs are reached
// through their rows of analysis_registry.h.
#pragma once

#include <CLI/CLI.hpp>

namespace robustlens::cli {

void add_train_command(CLI::App& app);
void add_info_command(CLI::App& app);
void add_sweep_command(CLI::App& app);
void add_corruptions_command(CLI::App& app);
void add_audit_command(CLI::App& app);

/// Every subcommand above, in the order --help lists them: train, the analyses of analysis_registry.h, sweep,
/// audit, info.
void add_all_commands(CLI::App& app);

}  // namespace robustlens::cli
