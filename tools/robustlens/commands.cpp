#include "commands.h"

#include "analysis_registry.h"

#include "robustlens/core/run_folder.h"

namespace robustlens::cli {

void add_all_commands(CLI::App& app) {
  add_train_command(app);
  for (const Analysis& analysis : analysis_registry()) analysis.add_command(app);
  add_corruptions_command(app);
  add_sweep_command(app);
  add_audit_command(app);
  add_info_command(app);
}

void make_app(CLI::App& app) {
  app.require_subcommand(1);
  app.set_version_flag("--version", ROBUSTLENS_VERSION);
  add_all_commands(app);
}

void run_command(CLI::App& app, int argc, const char* const* argv) {
  RunScope runs;  // a command's outputs appear when it returns, or not at all (core/run_folder.h)
  app.parse(argc, argv);
  runs.commit();
}

void run_command(CLI::App& app, const std::vector<std::string>& arguments) {
  std::vector<const char*> argv{"robustlens"};
  for (const std::string& argument : arguments) argv.push_back(argument.c_str());
  run_command(app, static_cast<int>(argv.size()), argv.data());
}

}  // namespace robustlens::cli
