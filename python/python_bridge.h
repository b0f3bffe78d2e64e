// What the C++ core needs of Python: Ctrl-C checks, a progress callable as a ProgressCallback, and a Python callable
// as a robustlens Model.
//
// PythonModel: a Python callable as a robustlens Model: a torch.nn.Module (a ScriptModule is one) or any function from images
// N×C×H×W to logits N×K, run eagerly, so nothing is traced. The library functions of the Python module
// (library_bindings.cpp) hand it to the attacks and attributions. Each forward pass takes the GIL for the call into
// Python and checks for Ctrl-C; everything else runs without it. Construct and destroy it with the GIL held.
#pragma once

#include "robustlens/core/model.h"
#include "robustlens/core/progress.h"

#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <vector>

namespace robustlens::python {

/// With the GIL held: throws Interrupted (core/error.h; the module raises KeyboardInterrupt for it) when Ctrl-C was
/// pressed. Interrupted is no std::exception, so that no handler on the way (an audit step's) takes it for a failure.
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
  /// Puts a module into evaluation mode (as the command line runs models) until this is destroyed.
  explicit PythonModel(pybind11::object callable);
  ~PythonModel() override;
  PythonModel(const PythonModel&) = delete;
  PythonModel& operator=(const PythonModel&) = delete;

  /// Calls the model; its logits are checked to be N×K. A Python exception raised by it propagates as it is.
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
  bool was_training_ = false;
  at::Device device_;
};

}  // namespace robustlens::python
