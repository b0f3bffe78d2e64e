// _robustlens: the C++ side of `import robustlens` (python/robustlens/__init__.py is the rest). It runs the
// command-line tool's subcommands in this process, through the same option declarations (tools/robustlens), on
// tensors the Python side holds as memory:NAME datasets (data/held_datasets.h), and describes those declarations so
// that the Python functions take the same options with the same defaults. Computation runs without the GIL; the
// progress callback takes it to update the Python bar and to check for Ctrl-C (python_bridge.h). The library's
// attacks and attributions are functions of their own (library_bindings.cpp).
#include "analysis_registry.h"
#include "commands.h"
#include "common.h"
#include "library_bindings.h"
#include "python_bridge.h"

#include "robustlens/core/console.h"
#include "robustlens/core/error.h"
#include "robustlens/core/progress.h"
#include "robustlens/data/held_datasets.h"

#include <c10/util/Exception.h>
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <torch/csrc/utils/pybind.h>

#include <regex>
#include <string>
#include <vector>

namespace py = pybind11;

namespace robustlens::python {
namespace {

/// Every subcommand's options as declared for the command line, as JSON: {name: {"description", "result_file",
/// "options": [{"flag", "default", "takes_value", "description", "group"}]}}.
std::string describe_commands() {
  CLI::App app{"robustlens"};
  cli::make_app(app);
  nlohmann::json commands = nlohmann::json::object();
  for (const CLI::App* command : app.get_subcommands([](const CLI::App*) { return true; })) {
    nlohmann::json options = nlohmann::json::array();
    for (const CLI::Option* option : command->get_options()) {
      if (option->get_lnames().empty() || option->get_lnames().front() == "help") continue;
      options.push_back({{"flag", "--" + option->get_lnames().front()},
                         {"default", option->get_default_str()},
                         {"takes_value", option->get_expected_max() != 0},  // 0 for a flag
                         {"description", option->get_description()},
                         {"group", option->get_group()}});
    }
    std::string result_file;
    for (const cli::Analysis& analysis : cli::analysis_registry()) {
      if (analysis.name == command->get_name()) result_file = analysis.result_file;
    }
    commands[command->get_name()] = {
        {"description", command->get_description()}, {"result_file", result_file}, {"options", options}};
  }
  return commands.dump();
}

/// A dataset the Python side hands over: (name, split, images N×C×H×W, labels N, class names).
using HeldSplit = std::tuple<std::string, std::string, at::Tensor, at::Tensor, std::vector<std::string>>;

/// Releases the held datasets and the progress sink however the command ends.
class CommandScope {
 public:
  CommandScope(const std::vector<HeldSplit>& datasets, const py::object& progress, const py::object& output) {
    for (const auto& [name, split, images, labels, class_names] : datasets) {
      names_.push_back(name);
      hold_dataset(name, parse_split(split), Dataset{"memory:" + name, images, labels, class_names, {}});
    }
    // Copies of a py::object would count references without the GIL: the callbacks borrow the caller's.
    if (!output.is_none()) {
      PyObject* write = output.ptr();
      console::set_sink([write](const std::string& text) {
        const py::gil_scoped_acquire gil;
        check_for_interrupt();
        const py::handle write_text(write);
        calling_python([&] { return write_text(text); });
      });
    }
    if (progress.is_none()) return;
    PyObject* callback = progress.ptr();
    set_progress_sink([callback] { return python_progress(callback); });
  }
  ~CommandScope() {
    console::set_sink({});
    set_progress_sink({});
    for (const std::string& name : names_) release_held_dataset(name);
  }
  CommandScope(const CommandScope&) = delete;
  CommandScope& operator=(const CommandScope&) = delete;

 private:
  std::vector<std::string> names_;
};

/// Runs `robustlens ARGS...` in this process; bad input raises ValueError with the command line's message. What the
/// command prints goes to `output(text)` (None: the process's stdout), its progress to `progress`.
void run(const std::vector<std::string>& arguments, const std::vector<HeldSplit>& datasets,
         const py::object& progress, const py::object& output) {
  const CommandScope scope(datasets, progress, output);
  const py::gil_scoped_release no_gil;
  CLI::App app{"robustlens"};
  cli::make_app(app);
  try {
    cli::run_command(app, arguments);
  } catch (const CLI::ParseError& error) {
    throw py::value_error(error.what());
  } catch (const Error& error) {
    throw py::value_error(cli::in_cli_terms(error.what()));
  }
}

}  // namespace
}  // namespace robustlens::python

PYBIND11_MODULE(_robustlens, module) {
  module.doc() = "robustlens' C++ core: runs its subcommands in this process (use the robustlens package)";
  module.attr("__version__") = ROBUSTLENS_VERSION;
  module.def("describe_commands", &robustlens::python::describe_commands);
  module.def("run", &robustlens::python::run, py::arg("arguments"), py::arg("datasets"), py::arg("progress"),
             py::arg("output"));
  robustlens::python::bind_library(module);
  // Local: a global translator would also rewrite the errors of torch's own pybind11 functions.
  py::register_local_exception_translator([](std::exception_ptr thrown) {
    try {
      if (thrown) std::rethrow_exception(thrown);
    } catch (const robustlens::Interrupted&) {
      PyErr_SetNone(PyExc_KeyboardInterrupt);
    } catch (robustlens::python::PythonError& error) {
      error.error.restore();
    } catch (const robustlens::Error& error) {
      // Only the library functions' errors come here (run() words its own): their Options fields are keywords.
      static const std::regex option_field(R"(\b[A-Z]\w*(?:Options|Spec)\.([a-z]\w*))");
      PyErr_SetString(PyExc_ValueError, std::regex_replace(error.what(), option_field, "$1").c_str());
    } catch (const c10::Error& error) {
      PyErr_SetString(PyExc_RuntimeError, ("internal error: LibTorch: " + robustlens::first_line(error.what())).c_str());
    }
  });
}
