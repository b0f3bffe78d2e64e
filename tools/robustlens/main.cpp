// robustlens <subcommand> [options]: see --help. Errors print one line
// ("error: ...") and exit with status 2; option-parsing errors exit non-zero
// through CLI11 with its message.
#include "commands.h"

#include "robustlens/core/error.h"

#include <c10/util/Exception.h>

#include <cstdio>

int main(int argc, char** argv) {
  CLI::App app{"robustlens: audits image classifiers for robustness and interpretability"};
  app.require_subcommand(1);
  app.set_version_flag("--version", ROBUSTLENS_VERSION);
  robustlens::cli::add_all_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  } catch (const robustlens::Error& error) {
    std::fprintf(stderr, "error: %s\n", error.what());
    return 2;
  } catch (const c10::Error& error) {
    std::fprintf(stderr, "error: LibTorch: %s\n", robustlens::first_line(error.what()).c_str());
    return 2;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "error: %s\n", error.what());
    return 2;
  }
  return 0;
}
