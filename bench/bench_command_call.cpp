// The in-process C++ side of bench/bench_python.py: runs one robustlens subcommand in this process as the Python
// module does (cli::run_command, the same option declarations), `--repeats` times, and prints each call's seconds,
// so that the Python call's overhead is the difference.
//
//   bench_command_call --repeats 3 -- eval --model M --data fashion-mnist --samples 1000 --out DIR
#include "commands.h"

#include "robustlens/core/error.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  int repeats = 3;
  int first = 1;
  if (argc > 3 && std::string(argv[1]) == "--repeats") {
    repeats = std::atoi(argv[2]);
    first = 3;
  }
  if (first >= argc || std::string(argv[first]) != "--" || repeats < 1) {
    std::fprintf(stderr, "usage: bench_command_call [--repeats N] -- SUBCOMMAND [OPTIONS]\n");
    return 2;
  }
  const std::vector<std::string> command(argv + first + 1, argv + argc);
  try {
    for (int r = 0; r < repeats; ++r) {
      CLI::App app{"robustlens"};
      robustlens::cli::make_app(app);
      const auto start = std::chrono::steady_clock::now();
      robustlens::cli::run_command(app, command);
      std::printf("seconds %.6f\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      std::fflush(stdout);
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "error: %s\n", error.what());
    return 2;
  }
  return 0;
}
