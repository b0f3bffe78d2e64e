#include "commands.h"

namespace robustlens::cli {

void add_all_commands(CLI::App& app) {
  add_train_command(app);
  add_train_vae_command(app);
  add_train_denoiser_command(app);
  add_eval_command(app);
  add_attack_command(app);
  add_explain_command(app);
  add_margins_command(app);
  add_spectral_command(app);
  add_upi_command(app);
  add_manifold_command(app);
  add_align_command(app);
  add_sweep_command(app);
  add_latent_command(app);
  add_audit_command(app);
  add_info_command(app);
}

}  // namespace robustlens::cli
