// What the C++ core needs of Python: Ctrl-C checks, a progress callable as a ProgressCallback, and a Python callable
// as a robustlens Model.
//
// PythonModel: a Python callable as a robustlens Model: a torch.nn.Module (a ScriptModule is one) or any function from
// images N×C×H×W to logits N×K, run eagerly, so nothing is traced. The library functions of the Python module
// (library_bindings.cpp) hand it to the attacks and attributions. Each forward pass takes the GIL for the call into
// Python and checks for Ctrl-C; everything else runs without it. Construct and destroy it with the GIL held.
#pragma once

#include "robustlens/core/error.h"
#include "robustlens/core/model.h"
#include "robustlens/core/progress.h"

#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace robustlens::python {

/// A Python exception on its way through C++: no std::exception, so that no handler on the way (an audit step's)
/// takes it for a failure of its own; the module's translator raises it again as it was.
struct PythonError {
  pybind11::error_already_set error;
};

/// With the GIL held: runs `call`, which calls into Python, and turns a Python exception into Interrupted
/// (core/error.h; the module raises KeyboardInterrupt for it) or a PythonError.
template <typename Call>
auto calling_python(Call call) {
  try {
    return call();
  } catch (pybind11::error_already_set& error) {
    if (error.matches(PyExc_KeyboardInterrupt)) throw Interrupted{};
    throw PythonError{std::move(error)};
  }
}

/// With the GIL held: runs Python's signal handlers; Ctrl-C throws Interrupted, another handler's exception a
/// PythonError.
void check_for_interrupt();

/// A ProgressCallback that calls `callback(task, done, total, status)` with the GIL and checks for Ctrl-C. It borrows
/// the callable: the caller keeps it alive while the callback is in use.
ProgressCallback python_progress(PyObject* callback);

/// A model that runs in C++ (a model file), checking for Ctrl-C before each forward pass: the only moment a
/// library function without progress reports comes back to Python's signals.
class InterruptibleModel : public Model {
 public:
  explicit InterruptibleModel(std::unique_ptr<Model> inner);

  at::Tensor forward(const at::Tensor& images) override;
  at::Tensor latent(const at::Tensor& images) override { return inner_->latent(images); }
  bool has_latent() const override { return inner_->has_latent(); }
  void to(const at::Device& device) override { inner_->to(device); }
  at::Device device() const override { return inner_->device(); }
  void set_training(bool training) override { inner_->set_training(training); }
  std::vector<at::Tensor> parameters() override { return inner_->parameters(); }

 private:
  std::unique_ptr<Model> inner_;
};

class PythonModel : public Model {
 public:
  /// Puts a module and each of its submodules into evaluation mode (as the command line runs models) until this is
  /// destroyed, which gives each its own mode back. The model's device is that of its first parameter or buffer;
  /// for a function or a module without either, `otherwise` (the images' device).
  PythonModel(pybind11::object callable, const at::Device& otherwise);
  ~PythonModel() override;
  PythonModel(const PythonModel&) = delete;
  PythonModel& operator=(const PythonModel&) = delete;

  /// Calls the model; its logits are checked to be N×K. A Python exception raised by it reaches the caller as it is.
  at::Tensor forward(const at::Tensor& images) override;
  at::Tensor latent(const at::Tensor& images) override;
  bool has_latent() const override { return false; }
  /// Models stay where the caller put them: the images go to the model's device instead.
  void to(const at::Device& device) override;
  at::Device device() const override { return device_; }
  void set_training(bool training) override;
  std::vector<at::Tensor> parameters() override;

 private:
  pybind11::object callable_;
  bool is_module_;
  /// Each submodule (the module itself first) and the mode it came in.
  std::vector<std::pair<pybind11::object, bool>> modes_;
  at::Device device_;
};

}  // namespace robustlens::python
