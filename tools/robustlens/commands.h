// One function per subcommand: each declares its options on `app` and the
// action to run when it is chosen. The analyses the audit runs are reached
// through their rows of analysis_registry.h.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace robustlens::cli {

void add_train_command(CLI::App& app);
void add_info_command(CLI::App& app);
void add_sweep_command(CLI::App& app);
void add_corruptions_command(CLI::App& app);
void add_audit_command(CLI::App& app);

/// Every subcommand above, in the order --help lists them: train, the analyses of analysis_registry.h, sweep,
/// audit, info.
void add_all_commands(CLI::App& app);

/// The robustlens application: every subcommand, one of them required, and --version.
void make_app(CLI::App& app);

/// Parses `argv` (argv[0] the program) with `app` (make_app) and runs the chosen subcommand; its outputs under
/// --out appear when it returns, or none of them when it throws (robustlens::Error for bad input, CLI::ParseError
/// for an option CLI11 refuses). The command-line tool's main() and the Python module (python/) both run commands
/// through it.
void run_command(CLI::App& app, int argc, const char* const* argv);
/// The same for `arguments` (the subcommand first, no program name): an audit's steps, the Python module.
void run_command(CLI::App& app, const std::vector<std::string>& arguments);

}  // namespace robustlens::cli
