#include "commands.h"

#include "analysis_registry.h"

namespace robustlens::cli {

void add_all_commands(CLI::App& app) {
  add_train_command(app);
  for (const Analysis& analysis : analysis_registry()) analysis.add_command(app);
  add_corruptions_command(app);
  add_sweep_command(app);
  add_audit_command(app);
  add_info_command(app);
}

}  // namespace robustlens::cli
