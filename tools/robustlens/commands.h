// One function per subcommand: each declares its options on `app` and the
// action to run when it is chosen.
#pragma once

#include <CLI/CLI.hpp>

namespace robustlens::cli {

void add_train_command(CLI::App& app);
void add_train_vae_command(CLI::App& app);
void add_train_denoiser_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_info_command(CLI::App& app);
void add_attack_command(CLI::App& app);
void add_explain_command(CLI::App& app);
void add_margins_command(CLI::App& app);
void add_spectral_command(CLI::App& app);
void add_upi_command(CLI::App& app);
void add_manifold_command(CLI::App& app);
void add_align_command(CLI::App& app);
void add_sweep_command(CLI::App& app);
void add_latent_command(CLI::App& app);
void add_audit_command(CLI::App& app);

/// Every subcommand above, in the order --help lists them.
void add_all_commands(CLI::App& app);

}  // namespace robustlens::cli
