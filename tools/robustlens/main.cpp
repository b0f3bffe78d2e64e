// robustlens <subcommand> [options]: see --help. Bad input prints one line
// ("error: ...", or CLI11's message for an option) and exits with status 2;
// an internal error prints "internal error: ..." and exits with status 1.
// A command's outputs under --out appear only when it succeeds (robustlens/core/run_folder.h).
#include "commands.h"
#include "common.h"

#include "robustlens/core/distributed.h"
#include "robustlens/core/error.h"

#include <c10/util/Exception.h>

#include <cstdio>

int main(int argc, char** argv) {
  CLI::App app{"robustlens: audits image classifiers for robustness and interpretability"};
  robustlens::cli::make_app(app);
  // Exit status: 0 done, 2 bad input (a robustlens::Error or an option CLI11 refuses), 1 anything
  // else: an internal error (a LibTorch failure, memory), which is a bug to report, not the user's input.
  try {
    robustlens::cli::run_command(app, argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error) == 0 ? 0 : 2;  // --help and --version are ParseErrors with status 0
  } catch (const robustlens::distributed::SharedError& error) {
    // Every rank of a data-parallel run raised it together: the main process reports it once.
    if (robustlens::distributed::is_main_process()) {
      std::fprintf(stderr, "error: %s\n", robustlens::cli::in_cli_terms(error.what()).c_str());
    }
    return 2;
  } catch (const robustlens::Error& error) {
    std::fprintf(stderr, "error: %s\n", robustlens::cli::in_cli_terms(error.what()).c_str());
    return 2;
  } catch (const c10::Error& error) {
    std::fprintf(stderr, "internal error: LibTorch: %s\n", robustlens::first_line(error.what()).c_str());
    return 1;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "internal error: %s\n", robustlens::first_line(error.what()).c_str());
    return 1;
  }
  return 0;
}
